// tessera/train/checkpoint.hpp — sharded checkpoints that reshard on load (docs/formats.md, docs/reliability.md).
//
// Layout-free by construction: what is stored are the model's *global* tensors (params.hpp), each as
// rectangular slices, so a checkpoint written by one layout can be read by any other.
//
//   DIR/step_<8 digits>/manifest.json           format, version, step, plan, data-loader and RNG state,
//                                                every shard file's size and CRC-32, every tensor's
//                                                global shape and which slice each shard file holds
//   DIR/step_<8 digits>/shard_<world rank>.safetensors
//
// Writers: the ranks of dp coordinate 0. Each writes the slices it owns under the one-owner rule of the
// gradient norm and of --export (tp rank 0 for tp-replicated slots, the first pipeline holder of a
// shared stage), so every element of every tensor is stored exactly once. Three kinds per tensor, all
// fp32: "param" (the fp32 master copy under bf16), "exp_avg", "exp_avg_sq" (AdamW moments; ZeRO-1's dp
// shards are gathered to dp rank 0 bucket by bucket first). Vocabulary padding is never stored.
//
// Atomic: everything is written under DIR/.step_<8 digits>.tmp, each file fsynced, the manifest last,
// then the directory is renamed into place and DIR fsynced. A crash mid-save leaves a .tmp directory
// that --resume ignores (and the next save of that step replaces); older checkpoints are never touched.
//
// Resume: rank 0 takes the newest step directory with a manifest (directories without one are
// incomplete saves and are skipped, with a note), checks that every shard file exists with the size
// and CRC-32 the manifest records, and fails with the file's name otherwise — a damaged checkpoint is
// never loaded, and never silently replaced by an older one. Every rank then fills its own slots
// through their boxes from whichever slices intersect them (any dp/tp/pp, schedule, ZeRO stage).
//
// Collective operations go through the communicator concept (any `communicator` C; mpi_comm in a job).
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tessera/comm/consensus.hpp"
#include "tessera/core/crc32.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/host_mirror.hpp"
#include "tessera/model/params.hpp"
#include "tessera/ops/math.hpp"
#include "tessera/train/manifest.hpp"
#include "tessera/train/plan.hpp"
#include "tessera/train/safetensors.hpp"

namespace tessera {

/// "step_00000042"
inline std::string step_dir_name(int step) {
  char b[32];
  std::snprintf(b, sizeof b, "step_%08d", step);
  return b;
}
/// Whether a directory name is a step directory: "step_" and 8 digits.
inline bool is_step_dir_name(const std::string& name) {
  if (name.size() != 13 || name.rfind("step_", 0) != 0) return false;
  return std::all_of(name.begin() + 5, name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

/// The plan as JSON (the "plan" of the log's start line and of a manifest).
inline nlohmann::json plan_to_json(const plan_desc& pd) {
  const model_desc& m = pd.model;
  nlohmann::json j;
  j["model"] = {{"family", m.family_name()}, {"vocab", m.vocab}, {"seq", m.seq}, {"layers", m.layers},
                {"hidden", m.hidden}, {"heads", m.heads}, {"kv_heads", m.kv_heads}, {"ffn", m.ffn},
                {"norm", m.norm == norm::layernorm ? "layernorm" : "rmsnorm"},
                {"mlp", m.mlp == mlp::gelu ? "gelu" : "swiglu"},
                {"position", m.position == position::learned ? "learned" : "rope"},
                {"tied_embeddings", m.tied_embeddings}, {"bias", m.bias}, {"norm_eps", m.norm_eps},
                {"rope_theta", m.rope_theta}};
  j["mesh"] = {{"dp", pd.dp}, {"pp", pd.pp}, {"tp", pd.tp}};
  j["schedule"] = {{"kind", std::string(schedule_kind_name(pd.schedule.kind))},
                   {"microbatches", pd.schedule.microbatches}, {"chunks", pd.schedule.chunks}};
  std::vector<int> split;
  for (int s = 0; s < pd.model_stages; ++s) split.push_back(pd.layers_of(s));
  j["stage_layers"] = split;
  j["zero"] = pd.policy.zero;
  j["precision"] = pd.policy.precision == precision_kind::bf16 ? "bf16" : "fp32";
  j["recompute"] = pd.policy.recompute == recompute_kind::full        ? "full"
                   : pd.policy.recompute == recompute_kind::selective ? "selective"
                                                                      : "none";
  j["sequence_parallel"] = pd.policy.sequence_parallel;
  return j;
}

/// What a loaded checkpoint says besides its tensors.
struct checkpoint_info {
  std::string path;             ///< DIR/step_XXXXXXXX
  int step = 0;                 ///< optimizer steps completed
  std::int64_t adam_step = 0;   ///< AdamW's step counter (skipped steps do not count)
  std::optional<manifest_data_order> order;  ///< the data loader's order of windows, when recorded
  std::string saved_by;         ///< the layout that saved it ("mesh {...}, schedule 1f1b, zero 1")
};

namespace ckpt_detail {
/// Every rank throws the error of the lowest rank that has one (so all fail together, with one reason).
template <communicator C>
void agree(const std::string& err, C& world) {
  const std::string first = first_error(world, err);
  if (!first.empty()) throw usage_error(first);
}
/// Rows of global tensor g that are stored (vocabulary padding is not).
inline std::int64_t stored_rows(const global_tensor& g) { return g.valid_rows >= 0 ? g.valid_rows : g.rows; }

inline std::uint32_t file_crc32(const std::string& path, std::uint64_t& size) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> buf(1 << 20);
  std::uint32_t c = 0;
  size = 0;
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = static_cast<std::size_t>(f.gcount());
    c = crc32(buf.data(), got, c);
    size += got;
  }
  return c;
}
inline void write_text_synced(const std::string& path, const std::string& text) {
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) throw usage_error(cat(path, ": cannot open for writing"));
    f << text;
    f.flush();
    if (!f) throw usage_error(cat(path, ": write failed (disk full?)"));
  }
  fsync_path(path);
}
/// The shard file `fp` exists with the size and CRC-32 the manifest of step directory `d` records.
inline void verify_file(const std::string& fp, const manifest_file& want, const std::string& d) {
  if (!std::filesystem::is_regular_file(fp))
    throw usage_error(cat("checkpoint file ", fp, " is missing (listed in ", d, "/manifest.json)"));
  std::uint64_t got = 0;
  const std::uint32_t crc = file_crc32(fp, got);
  if (got != want.bytes)
    throw usage_error(cat("checkpoint file ", fp, " has ", got, " bytes, the manifest says ", want.bytes,
                          " (truncated or damaged)"));
  if (crc != want.crc32) {
    char b[96];
    std::snprintf(b, sizeof b, "CRC-32 0x%08x, the manifest says 0x%08x", crc, want.crc32);
    throw usage_error(cat("checkpoint file ", fp, " is damaged: ", b));
  }
}
/// The entries (param, exp_avg, exp_avg_sq of every stored box) of the slots this rank owns, and their
/// manifest records. @pre tr.gather_state() was called.
template <class Trainer>
void shard_entries(Trainer& tr, const std::string& file, std::vector<st_entry>& entries, nlohmann::json& slices) {
  const auto& ps = tr.store();
  const auto& mt = tr.tensors();
  const auto& owns = tr.owners();
  using S = typename std::remove_cvref_t<decltype(ps)>::system;
  for (std::size_t i = 0; i < ps.slots.size(); ++i) {
    if (!owns[i]) continue;
    const auto& s = ps.slots[i];
    const auto sv = tr.slot_state(i);
    check(sv.m && sv.v, "tessera internal: optimizer state of ", s.layout.name, " not available for the checkpoint");
    using G = std::remove_cvref_t<decltype(*sv.m)>;
    const auto n = static_cast<std::size_t>(s.numel());
    const auto value = mirror_of(s.value, ps.sys);
    const host_mirror<S, const G> m(sv.m, n, ps.sys), v(sv.v, n, ps.sys), master(sv.master, sv.master ? n : 0, ps.sys);
    for (const box& b : s.layout.boxes) {
      const global_tensor& g = mt.tensors[static_cast<std::size_t>(b.tensor)];
      const std::int64_t rows = std::min(b.rows, ckpt_detail::stored_rows(g) - b.g_row);
      if (rows <= 0) continue;  // all padding
      for (int k = 0; k < 3; ++k) {
        st_entry e;
        e.name = cat(checkpoint_kinds[k], "/", g.name, "@", b.g_row, ",", b.g_col);
        e.dtype = st_dtype::f32;
        e.shape = {rows, b.cols};
        e.bytes.resize(static_cast<std::size_t>(rows * b.cols) * 4);
        float* out = reinterpret_cast<float*>(e.bytes.data());
        const global_range stored{b.g_row, b.g_row + rows, b.g_col, b.g_col + b.cols};
        for_each_element(b, s.layout.cols, stored, [&](std::int64_t r, std::int64_t c, std::size_t at) {
          float x;
          if (k == 0) x = sv.master ? static_cast<float>(master[at]) : static_cast<float>(value[at]);
          else x = static_cast<float>(k == 1 ? m[at] : v[at]);
          out[(r - b.g_row) * b.cols + c - b.g_col] = x;
        });
        slices.push_back({{"tensor", g.name}, {"kind", checkpoint_kinds[k]}, {"file", file}, {"key", e.name},
                          {"start", {b.g_row, b.g_col}}, {"shape", {rows, b.cols}}});
        entries.push_back(std::move(e));
      }
    }
  }
}
/// The manifest: what the run says (step, plan, world, `extra`) and every writer's record, checked to
/// store every element of every tensor exactly once.
inline nlohmann::ordered_json manifest_of(int step, std::int64_t adam_step, const nlohmann::json& plan, int world,
                                          const nlohmann::json& extra, const model_tensors& mt,
                                          const std::vector<std::string>& records) {
  nlohmann::ordered_json man;
  man["format"] = checkpoint_format;
  man["version"] = checkpoint_version;
  man["step"] = step;
  man["adam_step"] = adam_step;
  man["plan"] = plan;
  man["world"] = world;
  for (auto it = extra.begin(); it != extra.end(); ++it) man[it.key()] = *it;
  nlohmann::ordered_json files = nlohmann::ordered_json::object(), tensors = nlohmann::ordered_json::object();
  for (const auto& g : mt.tensors)
    tensors[g.name] = {{"shape", {ckpt_detail::stored_rows(g), g.cols}}, {"dtype", "F32"},
                       {"slices", nlohmann::ordered_json::array()}};
  std::map<std::pair<std::string, std::string>, std::int64_t> covered;
  for (const std::string& text : records) {
    if (text.empty()) continue;
    const auto rec = nlohmann::json::parse(text);
    files[rec.at("file").get<std::string>()] = {{"bytes", rec.at("bytes")}, {"crc32", rec.at("crc32")}};
    for (const auto& sl : rec.at("slices")) {
      const std::string t = sl.at("tensor");
      covered[{t, sl.at("kind")}] += sl.at("shape")[0].get<std::int64_t>() * sl.at("shape")[1].get<std::int64_t>();
      nlohmann::ordered_json o = {{"kind", sl.at("kind")}, {"file", sl.at("file")}, {"key", sl.at("key")},
                                  {"start", sl.at("start")}, {"shape", sl.at("shape")}};
      tensors[t]["slices"].push_back(std::move(o));
    }
  }
  for (const auto& g : mt.tensors)  // the one-owner rule stores every element exactly once
    for (const char* k : checkpoint_kinds)
      check(covered[{g.name, k}] == ckpt_detail::stored_rows(g) * g.cols, "tessera internal: checkpoint of ",
            g.name, " (", k, ") holds ", covered[{g.name, k}], " elements, the tensor has ",
            ckpt_detail::stored_rows(g) * g.cols);
  man["files"] = std::move(files);
  man["tensors"] = std::move(tensors);
  return man;
}
/// Renames the finished temporary directory into place (replacing a previous save of the same step only
/// now that the new one is whole) and syncs the parent directory.
inline void publish(const std::string& tmp, const std::string& final_dir, const std::string& dir, int step) {
  namespace fs = std::filesystem;
  fsync_path(tmp, true);
  if (fs::exists(final_dir)) {  // the same step saved before: replace it only now that the new one is whole
    const std::string old = dir + "/." + step_dir_name(step) + ".old";
    fs::remove_all(old);
    fs::rename(final_dir, old);
    fs::rename(tmp, final_dir);
    fs::remove_all(old);
  } else {
    fs::rename(tmp, final_dir);
  }
  fsync_path(dir, true);
}
}  // namespace ckpt_detail

/// Writes DIR/step_<step>/ (collective over `world`). `extra` goes into the manifest as is (data-loader
/// and RNG state). Throws usage_error on every rank if any rank fails; an older checkpoint is never touched.
template <class Trainer, communicator C>
std::string save_checkpoint(const std::string& dir, int step, Trainer& tr, const nlohmann::json& plan,
                            const nlohmann::json& extra, C& world) {
  namespace fs = std::filesystem;
  using ckpt_detail::agree;
  const int rank = world.rank(), size = world.size();
  const std::string final_dir = dir + "/" + step_dir_name(step);
  const std::string tmp = dir + "/." + step_dir_name(step) + ".tmp";
  std::string err;
  if (rank == 0) {
    try {
      fs::create_directories(dir);
      fs::remove_all(tmp);  // a leftover of a crashed save of this step (never a checkpoint)
      fs::create_directory(tmp);
    } catch (const fs::filesystem_error& e) {
      err = cat("--save ", dir, ": ", e.what());
    }
  }
  agree(err, world);

  tr.gather_state();
  const auto& ps = tr.store();
  const auto& mt = tr.tensors();
  const auto& owns = tr.owners();
  bool writer = false;
  if (tr.dp_rank() == 0)
    for (std::size_t i = 0; i < ps.slots.size(); ++i) writer = writer || owns[i];
  nlohmann::json record;
  if (writer) {
    char fname[48];
    std::snprintf(fname, sizeof fname, "shard_%05d.safetensors", rank);
    const std::string file = fname;
    std::vector<st_entry> entries;
    nlohmann::json slices = nlohmann::json::array();
    ckpt_detail::shard_entries(tr, file, entries, slices);
    try {
      const st_written w = write_safetensors(tmp + "/" + file, entries, {{"format", checkpoint_format}});
      record = {{"file", file}, {"bytes", w.bytes}, {"crc32", w.crc32}, {"slices", std::move(slices)}};
    } catch (const usage_error& e) {
      err = cat("--save: ", e.what());
    }
  }
  tr.release_gathered_state();
  agree(err, world);

  // every writer's record to rank 0
  const std::vector<std::string> records = gather_strings(world, writer ? record.dump() : std::string(), 0);

  if (rank == 0) {
    try {
      const nlohmann::ordered_json man = ckpt_detail::manifest_of(step, tr.adam_step(), plan, size, extra, mt, records);
      ckpt_detail::write_text_synced(tmp + "/manifest.json", man.dump(1));
      ckpt_detail::publish(tmp, final_dir, dir, step);
    } catch (const usage_error& e) {
      err = cat("--save: ", e.what());
    } catch (const std::exception& e) {
      err = cat("--save ", final_dir, ": ", e.what());
    }
  }
  agree(err, world);
  return final_dir;
}

/// Rank 0 finds the newest complete checkpoint under `dir` and validates every shard file (size and
/// CRC-32); all ranks get its path and manifest text, or the same usage_error.
template <communicator C>
std::pair<std::string, std::string> find_checkpoint(const std::string& dir, C& world) {
  namespace fs = std::filesystem;
  const int rank = world.rank();
  std::string err, path, text;
  if (rank == 0) {
    try {
      if (!fs::is_directory(dir)) throw usage_error(cat("--resume ", dir, ": no such directory"));
      std::vector<std::string> steps;
      for (const auto& e : fs::directory_iterator(dir))
        if (e.is_directory() && is_step_dir_name(e.path().filename().string()))
          steps.push_back(e.path().filename().string());
      std::sort(steps.rbegin(), steps.rend());
      std::string skipped;
      for (const auto& s : steps) {
        const std::string d = dir + "/" + s;
        if (!fs::exists(d + "/manifest.json")) {
          std::fprintf(stderr, "tessera: --resume: ignoring %s: no manifest.json (an incomplete save)\n", d.c_str());
          skipped += cat(skipped.empty() ? "" : ", ", s, " has no manifest.json");
          continue;
        }
        std::ifstream f(d + "/manifest.json", std::ios::binary);
        text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
        const std::string name = cat("checkpoint ", d, "/manifest.json");
        const checkpoint_manifest man = parse_manifest(parse_json(text, name), name);
        for (const auto& [name, want] : man.files) ckpt_detail::verify_file(d + "/" + name, want, d);
        path = d;
        break;
      }
      if (path.empty())
        throw usage_error(cat("--resume ", dir, ": no complete checkpoint (a step_<8 digits> directory with a manifest.json)",
                              skipped.empty() ? "" : ": ", skipped));
    } catch (const usage_error& e) {
      err = e.what();
    } catch (const std::exception& e) {
      err = cat("--resume ", dir, ": ", e.what());
    }
  }
  ckpt_detail::agree(err, world);
  path = broadcast_string(world, path, 0);
  text = broadcast_string(world, text, 0);
  return {path, text};
}

/// The checkpoint holds the model `plan` describes (the layout may differ): every key of plan.model has
/// the same value in the manifest's plan.model.
inline void check_same_model(const checkpoint_manifest& man, const nlohmann::json& plan, const std::string& path) {
  const auto& want = plan.at("model");
  const auto& have = man.plan.at("model");
  for (auto it = want.begin(); it != want.end(); ++it)
    if (!have.contains(it.key()) || have.at(it.key()) != *it)
      throw usage_error(cat("checkpoint ", path, " holds a different model: ", it.key(), " = ",
                            have.contains(it.key()) ? have.at(it.key()).dump() : std::string("(absent)"),
                            ", this program's model has ", it->dump()));
}

/// Fills every slot of `ps` (values, fp32 masters where the slot has them, both moments) through its
/// boxes from the slices of the validated manifest `man` of step directory `path` that intersect them.
/// Throws usage_error when a tensor is missing or has another shape, a slice's data does not match its
/// manifest entry, or the slices leave an element of a box uncovered.
template <class Store>
void load_slices(const checkpoint_manifest& man, const std::string& path, const model_tensors& mt, Store& ps) {
  const std::string mpath = path + "/manifest.json";
  std::map<std::string, std::unique_ptr<safetensors_reader>> readers;
  std::map<std::string, std::vector<double>> cache;
  auto read = [&](const manifest_slice& sl) -> const std::vector<double>& {
    const std::string id = sl.file + "\n" + sl.key;
    auto it = cache.find(id);
    if (it != cache.end()) return it->second;
    auto& rd = readers[sl.file];
    if (!rd) rd = std::make_unique<safetensors_reader>(path + "/" + sl.file);
    const std::vector<std::int64_t> want{sl.rows, sl.cols};
    if (!rd->has(sl.key) || rd->at(sl.key).shape != want)
      throw usage_error(cat("checkpoint file ", path, "/", sl.file, ": ",
                            rd->has(sl.key) ? cat("tensor ", sl.key, " does not have") : cat("no tensor ", sl.key, " of"),
                            " the shape [", sl.rows, ", ", sl.cols, "] the manifest gives it"));
    return cache.emplace(id, rd->read(sl.key)).first->second;
  };
  for (auto& s : ps.slots) {
    using G = typename std::remove_cvref_t<decltype(s.m)>::value_type;
    using T = std::remove_cvref_t<decltype(*s.value.data())>;
    std::vector<G> param(static_cast<std::size_t>(s.numel()), 0), m(param.size(), 0), v(param.size(), 0);
    for (const box& b : s.layout.boxes) {
      const global_tensor& g = mt.tensors[static_cast<std::size_t>(b.tensor)];
      const auto te = man.tensors.find(g.name);
      if (te == man.tensors.end()) throw usage_error(cat("checkpoint ", mpath, ": no tensor ", g.name));
      const manifest_tensor& t = te->second;
      if (t.rows != ckpt_detail::stored_rows(g) || t.cols != g.cols)
        throw usage_error(cat("checkpoint ", mpath, ": tensor ", g.name, " has shape [", t.rows, ", ", t.cols,
                              "], the model needs [", ckpt_detail::stored_rows(g), ", ", g.cols, "]"));
      const std::int64_t r0 = b.g_row, r1 = std::min(b.g_row + b.rows, ckpt_detail::stored_rows(g));
      const std::int64_t c0 = b.g_col, c1 = b.g_col + b.cols;
      if (r1 <= r0) continue;  // padding only: stays zero
      const std::int64_t box_cols = c1 - c0;
      std::vector<unsigned char> covered;  // per element of the box: filled by a slice already
      for (int k = 0; k < 3; ++k) {
        covered.assign(static_cast<std::size_t>((r1 - r0) * box_cols), 0);
        std::int64_t filled = 0;
        for (const manifest_slice& sl : t.slices) {
          if (sl.kind != k) continue;
          const std::int64_t lo_r = std::max(r0, sl.row), hi_r = std::min(r1, sl.row + sl.rows);
          const std::int64_t lo_c = std::max(c0, sl.col), hi_c = std::min(c1, sl.col + sl.cols);
          if (lo_r >= hi_r || lo_c >= hi_c) continue;
          const std::vector<double>& src = read(sl);
          auto& dst = k == 0 ? param : k == 1 ? m : v;
          for_each_element(b, s.layout.cols, global_range{lo_r, hi_r, lo_c, hi_c},
                           [&](std::int64_t r, std::int64_t c, std::size_t at) {
                             unsigned char& seen = covered[static_cast<std::size_t>((r - r0) * box_cols + c - c0)];
                             if (seen)
                               throw usage_error(cat("checkpoint ", mpath, ": two ",
                                                     checkpoint_kinds[static_cast<std::size_t>(k)], " slices of ",
                                                     g.name, " hold element [", r, ", ", c, "]"));
                             seen = 1;
                             dst[at] = static_cast<G>(src[static_cast<std::size_t>((r - sl.row) * sl.cols + (c - sl.col))]);
                           });
          filled += (hi_r - lo_r) * (hi_c - lo_c);
        }
        if (filled != (r1 - r0) * box_cols)
          throw usage_error(cat("checkpoint ", mpath, ": the ", checkpoint_kinds[static_cast<std::size_t>(k)],
                                " slices of ", g.name, " cover ", filled, " of the ", (r1 - r0) * box_cols,
                                " elements rows [", r0, ", ", r1, ") x cols [", c0, ", ", c1, ") needs"));
      }
    }
    auto value = mirror_of(s.value, ps.sys);
    for (std::size_t j = 0; j < param.size(); ++j) value[j] = ops::store<T>(param[j]);
    value.commit();
    if (!s.master.empty()) ps.sys.from_host(s.master.data(), param.data(), s.numel());
    for (auto [dst, src] : {std::pair{&s.m, &m}, std::pair{&s.v, &v}}) {
      dst->assign(src->size(), 0);
      ps.sys.from_host(dst->data(), src->data(), s.numel());
    }
  }
}

/// Loads the newest complete checkpoint under `dir` into this rank's slots (every slot, whole optimizer
/// state: call before the trainer shards it). Collective; throws usage_error on every rank on failure.
template <class Trainer, communicator C>
checkpoint_info load_checkpoint(const std::string& dir, Trainer& tr, const nlohmann::json& plan, C& world) {
  const std::pair<std::string, std::string> found = find_checkpoint(dir, world);
  const std::string& path = found.first;
  std::string err;
  checkpoint_info info;
  info.path = path;
  try {
    const std::string name = cat("checkpoint ", path, "/manifest.json");
    const checkpoint_manifest man = parse_manifest(parse_json(found.second, name), name);
    info.step = man.step;
    info.adam_step = man.adam_step;
    info.order = man.order;
    info.saved_by = man.saved_by;
    check_same_model(man, plan, path);
    load_slices(man, path, tr.tensors(), tr.store());
    tr.set_adam_step(info.adam_step);
  } catch (const usage_error& e) {
    err = e.what();
  } catch (const std::exception& e) {
    err = cat("checkpoint ", path, "/manifest.json: ", e.what());
  }
  ckpt_detail::agree(err, world);
  return info;
}

}  // namespace tessera
