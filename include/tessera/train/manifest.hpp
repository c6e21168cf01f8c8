// tessera/train/manifest.hpp — a checkpoint's manifest.json, read and validated as a whole.
//
// The manifest is outside data: whatever wrote (or damaged) it, `parse_manifest` checks every field it
// returns before anything indexes with it — JSON types and keys (through json_in), shard file names (a
// plain name inside the checkpoint directory), every slice's kind, file, start and shape (two integers
// each, the slice inside its tensor), every element count with overflow checks. A field that is wrong
// is named with its path and value:
//
//   checkpoint ck/step_00000008/manifest.json: tensors.wte.slices[2].start is [], expected 2 integers
//
// What the checkpoint writes besides (data-loader and RNG state, the optimizer's hyper-parameters) is
// kept as JSON for the log; the parts resume acts on are typed.
#pragma once
#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tessera/core/checked.hpp"
#include "tessera/core/error.hpp"
#include "tessera/train/json_in.hpp"

namespace tessera {

inline constexpr int checkpoint_version = 1;
inline constexpr const char* checkpoint_format = "tessera-checkpoint";
/// The three kinds of every tensor: the (master) parameter and AdamW's two moments.
inline constexpr std::array<const char*, 3> checkpoint_kinds = {"param", "exp_avg", "exp_avg_sq"};

struct manifest_file {
  std::uint64_t bytes = 0;
  std::uint32_t crc32 = 0;
};
/// Rows [row, row + rows) × cols [col, col + cols) of a tensor, stored in `file` under `key`.
struct manifest_slice {
  int kind = 0;  ///< index into checkpoint_kinds
  std::string file, key;
  std::int64_t row = 0, col = 0, rows = 0, cols = 0;
};
struct manifest_tensor {
  std::int64_t rows = 0, cols = 0;
  std::vector<manifest_slice> slices;
};
/// The loader's order of windows when the checkpoint was written.
struct manifest_data_order {
  bool shuffle = false;
  std::uint64_t seed = 0;
};

struct checkpoint_manifest {
  int step = 0;
  std::int64_t adam_step = 0;
  int world = 1;
  nlohmann::json plan;    ///< the plan that wrote it (model an object; mesh, schedule.kind, zero checked)
  std::string saved_by;   ///< "mesh {...}, schedule 1f1b, zero 1"
  std::optional<manifest_data_order> order;  ///< absent in a manifest without data-loader state
  std::map<std::string, manifest_file> files;
  std::map<std::string, manifest_tensor> tensors;
};

namespace manifest_detail {
inline constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();

inline std::string plan_summary(const json_in& plan) {
  const json_in mesh = plan.at("mesh");
  for (const char* a : {"dp", "pp", "tp"}) mesh.at(a).integer(1, 1 << 20);
  const std::string kind = plan.at("schedule").at("kind").text();
  const std::int64_t zero = plan.at("zero").integer(0, 3);
  if (!plan.at("model").is_object()) plan.at("model").fail(cat("is ", plan.at("model").shown(), ", expected an object"));
  return cat("mesh ", mesh.raw().dump(), ", schedule ", kind, ", zero ", zero);
}

inline manifest_file parse_file(const std::string& name, const json_in& f) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos || name.find('\0') != std::string::npos)
    f.fail("names a file outside the checkpoint directory (a shard is a plain file name)");
  return {f.at("bytes").unsigned_integer(), static_cast<std::uint32_t>(f.at("crc32").unsigned_integer(0xffffffffu))};
}

inline manifest_slice parse_slice(const json_in& s, const manifest_tensor& t,
                                  const std::map<std::string, manifest_file>& files) {
  manifest_slice out;
  const std::string kind = s.at("kind").text();
  out.kind = -1;
  for (std::size_t k = 0; k < checkpoint_kinds.size(); ++k)
    if (kind == checkpoint_kinds[k]) out.kind = static_cast<int>(k);
  if (out.kind < 0) s.at("kind").fail(cat("is ", s.at("kind").shown(), ", expected param, exp_avg or exp_avg_sq"));
  out.file = s.at("file").text();
  if (!files.count(out.file)) s.at("file").fail(cat("is ", s.at("file").shown(), ", a file the manifest's files do not list"));
  out.key = s.at("key").text();
  const auto start = s.at("start").integers(2, 0, int64_max);
  const auto shape = s.at("shape").integers(2, 1, int64_max);
  out.row = start[0];
  out.col = start[1];
  out.rows = shape[0];
  out.cols = shape[1];
  if (out.row > t.rows || out.rows > t.rows - out.row || out.col > t.cols || out.cols > t.cols - out.col)
    s.fail(cat("(start ", s.at("start").shown(), ", shape ", s.at("shape").shown(), ") reaches outside the tensor's shape [",
               t.rows, ", ", t.cols, "]"));
  return out;
}

inline manifest_tensor parse_tensor(const json_in& t, const std::map<std::string, manifest_file>& files) {
  manifest_tensor out;
  const auto shape = t.at("shape").integers(2, 0, int64_max);
  out.rows = shape[0];
  out.cols = shape[1];
  if (!checked_mul(out.rows, out.cols)) t.at("shape").fail(cat("is ", t.at("shape").shown(), ": its size overflows 64 bits"));
  if (t.has("dtype") && t.at("dtype").text() != "F32")
    t.at("dtype").fail(cat("is ", t.at("dtype").shown(), ", expected \"F32\""));
  const json_in slices = t.at("slices");
  for (std::size_t i = 0; i < slices.size(); ++i) out.slices.push_back(parse_slice(slices.at(i), out, files));
  return out;
}
}  // namespace manifest_detail

/// The manifest `doc` (named `name` in errors, e.g. "checkpoint DIR/manifest.json"), validated.
/// Throws usage_error naming the field and its value at the first thing wrong.
inline checkpoint_manifest parse_manifest(const nlohmann::json& doc, const std::string& name) {
  using namespace manifest_detail;
  const json_in man(doc, name);
  if (!man.is_object()) man.fail(cat("is ", man.shown(), ", expected an object"));
  const std::string format = man.at("format").text();
  if (format != checkpoint_format)
    throw usage_error(cat(name, ": format \"", format, "\" (expected \"", checkpoint_format, "\")"));
  const std::int64_t version = man.at("version").integer();
  if (version != checkpoint_version)
    throw usage_error(cat(name, ": format version ", version, " (this build reads version ", checkpoint_version, ")"));
  checkpoint_manifest out;
  out.step = static_cast<int>(man.at("step").integer(0, std::numeric_limits<int>::max()));
  out.adam_step = man.at("adam_step").integer(0, int64_max);
  out.world = static_cast<int>(man.at("world").integer(1, std::numeric_limits<int>::max()));
  out.plan = man.at("plan").raw();
  out.saved_by = plan_summary(man.at("plan"));
  if (man.has("data") && man.at("data").has("shuffle"))
    out.order = manifest_data_order{man.at("data").at("shuffle").boolean(),
                                    man.at("data").at("shuffle_seed").unsigned_integer()};
  man.at("files").members([&](const std::string& f, const json_in& v) { out.files[f] = parse_file(f, v); });
  man.at("tensors").members(
      [&](const std::string& t, const json_in& v) { out.tensors[t] = parse_tensor(v, out.files); });
  return out;
}

}  // namespace tessera
