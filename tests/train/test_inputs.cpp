// tests/train: outside data is validated before it is used — the JSON reader (json_in), the safetensors
// header, the checkpoint manifest and the token-file reader — with the cases that once crashed or were
// accepted silently (issue "Bad input never crashes"), each pinned to its message.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tessera/train/data.hpp"
#include "tessera/train/json_in.hpp"
#include "tessera/train/manifest.hpp"
#include "tessera/train/safetensors.hpp"

#include "input_files.hpp"

namespace ts = tessera;
using nlohmann::json;

namespace {
using tessera_test::error_of;
std::string tmp_path(const std::string& name) { return tessera_test::tmp_path("tessera_inputs", name); }
using tessera_test::write_bytes;
/// A safetensors file: the 8-byte length, `header` as is, then `data`.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}
std::string st_error(const std::string& header, const std::string& data = std::string(16, '\0')) {
  const std::string p = tmp_path("t.safetensors");
  write_bytes(p, safetensors_bytes(header, data));
  return error_of([&] { ts::safetensors_reader r(p); });
}
/// A valid manifest of one 4 x 2 tensor "w" in two row slices per kind.
json good_manifest() {
  json slices = json::array();
  for (const char* k : {"param", "exp_avg", "exp_avg_sq"})
    for (int r : {0, 2})
      slices.push_back({{"kind", k}, {"file", "shard_00000.safetensors"}, {"key", std::string(k) + "/w@" + std::to_string(r)},
                        {"start", {r, 0}}, {"shape", {2, 2}}});
  return {{"format", "tessera-checkpoint"}, {"version", 1}, {"step", 8}, {"adam_step", 8}, {"world", 2},
          {"plan", {{"model", {{"family", "gpt"}}}, {"mesh", {{"dp", 2}, {"pp", 1}, {"tp", 1}}},
                    {"schedule", {{"kind", "gpipe"}}}, {"zero", 1}}},
          {"data", {{"shuffle", false}, {"shuffle_seed", 1234}}},
          {"files", {{"shard_00000.safetensors", {{"bytes", 1000}, {"crc32", 7}}}}},
          {"tensors", {{"w", {{"shape", {4, 2}}, {"dtype", "F32"}, {"slices", slices}}}}}};
}
std::string manifest_error(const json& m) {
  return error_of([&] { ts::parse_manifest(m, "checkpoint ck/step_00000008/manifest.json"); });
}
int mappings_of(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  int n = 0;
  for (std::string line; std::getline(maps, line);) n += line.find(path) != std::string::npos;
  return n;
}
}  // namespace

TEST_CASE("json_in: every read checks the type and names the document, the path and the value") {
  const json doc = json::parse(R"({"a": {"b": [1, "x", 3.5, -2, 18446744073709551615]}, "t": true})");
  const ts::json_in in(doc, "file f.json");
  CHECK(in.at("a").at("b").at(std::size_t{0}).integer() == 1);
  CHECK(in.at("t").boolean());
  CHECK(error_of([&] { in.at("a").at("c"); }) == "file f.json: a.c is missing");
  CHECK(error_of([&] { in.at("a").at("b").at(std::size_t{1}).integer(); }) ==
        "file f.json: a.b[1] is \"x\", expected an integer");
  CHECK(error_of([&] { in.at("a").at("b").at(std::size_t{2}).integer(); }) ==
        "file f.json: a.b[2] is 3.5, expected an integer");
  CHECK(error_of([&] { in.at("a").at("b").at(std::size_t{3}).integer(0, 10); }) ==
        "file f.json: a.b[3] is -2, expected an integer in [0, 10]");
  CHECK(error_of([&] { in.at("a").at("b").at(std::size_t{4}).integer(); }).find("is 18446744073709551615, expected an integer in") !=
        std::string::npos);
  CHECK(in.at("a").at("b").at(std::size_t{4}).unsigned_integer() == 18446744073709551615ull);
  CHECK(error_of([&] { in.at("a").at("b").at(std::size_t{9}); }) == "file f.json: a.b has 5 elements, element 9 was expected");
  CHECK(error_of([&] { in.at("a").at("b").at("k"); }).find("a.b is [1,\"x\",3.5,-2,18446744073709551615], expected an object") !=
        std::string::npos);
  CHECK(error_of([&] { in.at("t").text(); }) == "file f.json: t is true, expected a string");
  CHECK(error_of([&] { in.at("a").integers(2, 0, 1); }).find("expected an array") != std::string::npos);
}

TEST_CASE("safetensors: a header that is not an object of well-formed entries is refused by name") {
  CHECK(st_error("[1,2]").find(".safetensors: header is [1,2], expected an object of tensors") != std::string::npos);
  CHECK(st_error("\"shape\"").find("is \"shape\", expected an object of tensors") != std::string::npos);
  CHECK(st_error(R"({"w": 5})").find(": header.w is 5, expected an object") != std::string::npos);
  CHECK(st_error(R"({"w": {"dtype": "F32", "shape": 4, "data_offsets": [0, 16]}})").find("w.shape is 4, expected an array") !=
        std::string::npos);
  CHECK(st_error(R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 16]}})").find("w.shape[0] is -1") !=
        std::string::npos);
  CHECK(st_error(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [16, 0]}})").find("begin after end") !=
        std::string::npos);
  CHECK(st_error(R"({"w": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}})").find("run past the end of the data") !=
        std::string::npos);
  CHECK(st_error(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 18446744073709551615]}})")
            .find("run past the end of the data") != std::string::npos);
  // element counts that wrap around to the real size: [2^62, 4] x 4 bytes, [2^62 + 8, 256]
  CHECK(st_error(R"({"w": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 16]}})")
            .find("tensor w has shape [4611686018427387904,4]: its size overflows 64 bits") != std::string::npos);
  CHECK(st_error(R"({"w": {"dtype": "F32", "shape": [4611686018427387912, 256], "data_offsets": [0, 16]}})")
            .find("overflows 64 bits") != std::string::npos);
  CHECK(st_error(R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})").find("holds 12 bytes but F32") !=
        std::string::npos);
  CHECK(st_error(R"({"__metadata__": {"format": 1}})").find("__metadata__.format is 1, expected a string") !=
        std::string::npos);
  // and a good one reads back
  CHECK(st_error(R"({"__metadata__": {"format": "pt"}, "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}})") ==
        "");
}

TEST_CASE("manifest: the damaged manifests that once crashed or loaded garbage are refused by field") {
  CHECK(manifest_error(good_manifest()) == "");
  const ts::checkpoint_manifest m = ts::parse_manifest(good_manifest(), "m");
  CHECK(m.tensors.at("w").slices.size() == 6);
  CHECK(m.saved_by == "mesh {\"dp\":2,\"pp\":1,\"tp\":1}, schedule gpipe, zero 1");
  CHECK((m.order && !m.order->shuffle && m.order->seed == 1234));

  auto with = [](auto edit) {
    json m = good_manifest();
    edit(m);
    return manifest_error(m);
  };
  const std::string at = "checkpoint ck/step_00000008/manifest.json: ";
  CHECK(with([](json& m) { m["data"]["shuffle"] = "yes"; }) == at + "data.shuffle is \"yes\", expected true or false");
  CHECK(with([](json& m) { m["plan"].erase("zero"); }) == at + "plan.zero is missing");
  CHECK(with([](json& m) { m["tensors"]["w"]["slices"][0]["start"] = json::array(); }) ==
        at + "tensors.w.slices[0].start is [], expected 2 integers");
  CHECK(with([](json& m) { m["tensors"]["w"]["slices"][0]["shape"] = {32}; }) ==
        at + "tensors.w.slices[0].shape is [32], expected 2 integers");
  CHECK(with([](json& m) { m["tensors"]["w"]["slices"][0]["start"] = {18446744073709551615ull, 0}; })
            .find("tensors.w.slices[0].start[0] is 18446744073709551615, expected an integer in [0, ") != std::string::npos);
  CHECK(with([](json& m) { m["tensors"]["w"]["slices"][0]["shape"] = {(1LL << 62) + 8, 256}; }) ==
        at + "tensors.w.slices[0] (start [0,0], shape [4611686018427387912,256]) reaches outside the tensor's shape [4, 2]");
  CHECK(with([](json& m) { m["tensors"]["w"]["shape"] = {1LL << 62, 4}; }) ==
        at + "tensors.w.shape is [4611686018427387904,4]: its size overflows 64 bits");
  CHECK(with([](json& m) { m["files"]["../../etc/passwd"] = {{"bytes", 1}, {"crc32", 1}}; })
            .find("files.../../etc/passwd names a file outside the checkpoint directory") != std::string::npos);
  CHECK(with([](json& m) { m["tensors"]["w"]["slices"][1]["file"] = "other.safetensors"; }) ==
        at + "tensors.w.slices[1].file is \"other.safetensors\", a file the manifest's files do not list");
  CHECK(with([](json& m) { m["tensors"]["w"]["slices"][2]["kind"] = "grad"; })
            .find("slices[2].kind is \"grad\", expected param, exp_avg or exp_avg_sq") != std::string::npos);
  CHECK(with([](json& m) { m["files"]["shard_00000.safetensors"]["crc32"] = 1LL << 33; }).find("crc32 is 8589934592") !=
        std::string::npos);
  CHECK(with([](json& m) { m["plan"]["mesh"]["tp"] = 0; }) == at + "plan.mesh.tp is 0, expected an integer in [1, 1048576]");
  CHECK(with([](json& m) { m["step"] = -3; }).find("step is -3") != std::string::npos);
  CHECK(with([](json& m) { m = json::array(); }) == at + "(the top level) is [], expected an object");
  CHECK(with([](json& m) { m["version"] = 2; }) == at.substr(0, at.size() - 2) + ": format version 2 (this build reads version 1)");
}

TEST_CASE("token_data: a file rejected after it was mapped is unmapped again") {
  const std::string p = tmp_path("v2.bin");
  std::string bytes(1024 + 64, '\0');
  const std::int32_t head[3] = {ts::llmc_magic, 2, 32};  // version 2: refused after the mapping
  std::memcpy(bytes.data(), head, sizeof head);
  write_bytes(p, bytes);
  for (int i = 0; i < 50; ++i)
    CHECK(error_of([&] { ts::token_data d(p, 65536, 8); }).find("llm.c token shard version 2 (expected 1)") !=
          std::string::npos);
  CHECK(mappings_of(p) == 0);
  const std::string good = tmp_path("ok.txt");
  write_bytes(good, std::string(100, 'a'));
  {
    const ts::token_data ok(good, 256, 8);
    CHECK(ok.windows() == 12);
    CHECK(mappings_of(good) == 1);
  }
  CHECK(mappings_of(good) == 0);
}
