// tests/plan: the host profile tessera_calibrate writes — the GEMM-rate interpolation (exact at measured
// shapes, monotone between them, never above the best measured rate), the JSON round trip, and the
// messages a damaged profile file gets.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tessera/plan/host_profile.hpp"

#include "input_files.hpp"

namespace ts = tessera;
using nlohmann::json;

namespace {
using tessera_test::error_of;
std::string tmp_path(const std::string& name) { return tessera_test::tmp_path("tessera_host_profile", name); }
void write_text(const std::string& path, const std::string& text) { tessera_test::write_bytes(path, text); }

const int sizes[] = {64, 256, 1024, 4096};
/// A rate that grows along every axis (separable: per-axis factors), 1e9 … 1e11 FLOP/s.
double rate_of(int m, int n, int k) {
  auto f = [](int x) { return std::log2(static_cast<double>(x)) / 12.0; };  // 0.5 at 64 … 1 at 4096
  return 1e11 * f(m) * f(n) * f(k);
}

ts::host_profile grid_profile() {
  ts::host_profile p;
  for (int m : sizes)
    for (int n : sizes)
      for (int k : sizes) p.gemm.push_back({m, n, k, rate_of(m, n, k)});
  p.cpu = "Test CPU \"quoted\"";
  p.threads = 3;
  p.ranks_measured = 2;
  p.device = ts::hw::host::desc;
  p.device.name = ts::host_profile_detail::intern("host (" + p.cpu + ")");
  p.device.peak_fp32 = p.device.peak_bf16 = 1.0 / 3.0 * 1e11;
  p.device.gemm_half_size = 49.87654321;
  p.elementwise_bytes_per_s = 1.234567890123e10;
  p.allreduce_alpha_s = 1.5e-6, p.allreduce_beta_s_per_byte = 7e-10;
  p.p2p_alpha_s = 0.7e-6, p.p2p_beta_s_per_byte = 1.3e-10;
  return p;
}
}  // namespace

TEST_CASE("gemm_flops_per_s is exact at every measured shape") {
  const ts::host_profile p = grid_profile();
  for (const ts::gemm_rate& g : p.gemm)
    CHECK(p.gemm_flops_per_s(g.m, g.n, g.k) == doctest::Approx(g.flops_per_s).epsilon(1e-12));
}

TEST_CASE("gemm_flops_per_s is monotone between measured shapes and geometric in log size") {
  const ts::host_profile p = grid_profile();
  for (int axis = 0; axis < 3; ++axis) {
    double last = 0;
    for (double x = 64; x <= 4096; x *= 1.07) {
      int s[3] = {300, 700, 2000};
      s[axis] = static_cast<int>(x);
      const double r = p.gemm_flops_per_s(s[0], s[1], s[2]);
      CHECK(r >= last);
      last = r;
    }
  }
  // Half way in log size between 256 and 1024 (= 512): the geometric mean of the two measured rates.
  CHECK(p.gemm_flops_per_s(512, 64, 64) ==
        doctest::Approx(std::sqrt(rate_of(256, 64, 64) * rate_of(1024, 64, 64))).epsilon(1e-12));
}

TEST_CASE("gemm_flops_per_s never extrapolates upwards and scales down below the grid") {
  const ts::host_profile p = grid_profile();
  const double best = p.best_gemm_flops_per_s();
  CHECK(best == rate_of(4096, 4096, 4096));
  CHECK(p.gemm_flops_per_s(100000, 100000, 100000) == doctest::Approx(best));
  CHECK(p.gemm_flops_per_s(8192, 4096, 300) == doctest::Approx(p.gemm_flops_per_s(4096, 4096, 300)));
  for (int m : {1, 7, 64, 500, 4096, 9000})
    for (int n : {1, 100, 4096, 70000})
      for (int k : {0, 64, 3000, 5000}) CHECK(p.gemm_flops_per_s(m, n, k) <= best);
  // Below the smallest measured size the call's time stops falling: rate ∝ size.
  CHECK(p.gemm_flops_per_s(32, 64, 64) == doctest::Approx(rate_of(64, 64, 64) / 2));
  CHECK(p.gemm_flops_per_s(16, 16, 4096) == doctest::Approx(rate_of(64, 64, 4096) / 16));
  CHECK(p.gemm_flops_per_s(0, 64, 64) == doctest::Approx(rate_of(64, 64, 64) / 64));  // sizes < 1 count as 1
  // A capped outlier: one fast small shape bounds everything.
  ts::host_profile q;
  q.gemm = {{64, 64, 64, 5e10}, {64, 64, 128, 1e10}};
  CHECK(q.gemm_flops_per_s(64, 64, 90) <= 5e10);
  CHECK(q.gemm_flops_per_s(64, 64, 90) >= 1e10);
}

TEST_CASE("gemm_flops_per_s needs a full grid") {
  ts::host_profile p;
  CHECK(error_of([&] { (void)p.gemm_flops_per_s(64, 64, 64); }) == "host_profile: gemm has no rates");
  p.gemm = {{64, 64, 64, 1e10}, {256, 64, 64, 2e10}, {64, 256, 64, 2e10}};
  CHECK(error_of([&] { (void)p.gemm_flops_per_s(100, 100, 64); }) ==
        "host_profile: gemm has no rate for m=256 n=256 k=64 (the shapes must form a full m × n × k grid)");
}

TEST_CASE("a host profile survives its JSON file exactly") {
  const ts::host_profile p = grid_profile();
  const std::string path = tmp_path("roundtrip.json");
  write_text(path, ts::to_json(p).dump(2));
  const ts::host_profile q = ts::host_profile_from_json(path);
  CHECK(std::strcmp(q.device.name, "host (Test CPU \"quoted\")") == 0);
  CHECK(q.cpu == p.cpu);
  CHECK(q.threads == 3);
  CHECK(q.ranks_measured == 2);
  CHECK(ts::to_json(q) == ts::to_json(p));  // every number bit for bit
  CHECK(q.gemm.size() == 64);
  CHECK(q.gemm_flops_per_s(700, 300, 2000) == p.gemm_flops_per_s(700, 300, 2000));
  const ts::host_profile copy = q;  // the name outlives the profile it was read into
  CHECK(std::strcmp(copy.device.name, q.device.name) == 0);
}

TEST_CASE("a damaged host profile file is named with its key path and what was expected") {
  const std::string path = tmp_path("bad.json");
  const std::string name = "host profile " + path;
  auto error_with = [&](auto&& edit) {
    json j = ts::to_json(grid_profile());
    edit(j);
    write_text(path, j.dump());
    return error_of([&] { (void)ts::host_profile_from_json(path); });
  };
  CHECK(error_with([](json& j) { j["gemm"][1]["flops_per_s"] = "fast"; }) ==
        name + ": gemm[1].flops_per_s is \"fast\", expected a number > 0");
  CHECK(error_with([](json& j) { j["gemm"][2]["flops_per_s"] = 0; }) ==
        name + ": gemm[2].flops_per_s is 0, expected a number > 0");
  CHECK(error_with([](json& j) { j["device"].erase("memory_bw"); }) == name + ": device.memory_bw is missing");
  CHECK(error_with([](json& j) { j["device"]["intra_bw"] = -1.0; }) ==
        name + ": device.intra_bw is -1.0, expected a number >= 0");
  CHECK(error_with([](json& j) { j["allreduce"]["alpha_s"] = nullptr; }) ==
        name + ": allreduce.alpha_s is null, expected a number >= 0");
  CHECK(error_with([](json& j) { j["threads"] = 1.5; }) == name + ": threads is 1.5, expected an integer");
  CHECK(error_with([](json& j) { j["gemm"] = json::object(); }) == name + ": gemm is {}, expected an array");
  CHECK(error_with([](json& j) { j["format"] = "tessera-checkpoint"; }) ==
        name + ": format is \"tessera-checkpoint\", expected \"tessera-host-profile\"");
  CHECK(error_with([](json& j) { j["version"] = 2; }) == name + ": version is 2, expected an integer in [1, 1]");
  CHECK(error_with([](json& j) { j["gemm"].erase(5); }) ==
        name + ": gemm has no rate for m=64 n=256 k=256 (the shapes must form a full m × n × k grid)");
  write_text(path, "{\"format\": \"tessera-host-profile\", ");
  CHECK(error_of([&] { (void)ts::host_profile_from_json(path); }).rfind(name + " is damaged: not valid JSON", 0) == 0);
  const std::string missing = tmp_path("no_such_profile.json");
  CHECK(error_of([&] { (void)ts::host_profile_from_json(missing); }) ==
        "host profile " + missing +
            ": cannot be opened for reading (does it exist? tessera_calibrate --out writes it)");
}

TEST_CASE("the cost model reads a profile's measured rates at run time, never in constant evaluation") {
  ts::host_profile p = grid_profile();
  p.attention = {{16, 1e9, 2e9}, {64, 4e9, 8e9}};
  p.sustained_share = 0.5;
  const std::string path = tmp_path("measured.json");
  write_text(path, ts::to_json(p).dump(2));
  const ts::host_profile q = ts::host_profile_from_json(path);
  CHECK(ts::to_json(q) == ts::to_json(p));
  CHECK(q.attention_flops_per_s(32, false) == doctest::Approx(2e9));  // log-linear in the head size
  CHECK(q.attention_flops_per_s(8, true) == 2e9);                      // the nearest measured size outside
  ts::cost_context c{ts::resolve(ts::model_family::gpt, ts::gpt_config{.vocab = 256, .seq = 32, .layers = 8,
                                                                        .hidden = 64, .heads = 4}),
                     {q.device, 2, 1}, ts::sw::tessera_host};
  c.measured = &q;
  const ts::plan_point pt{.bf16 = false};
  CHECK(c.gemm_s(pt, 256, 64, 256) == doctest::Approx(2.0 * 256 * 64 * 256 / (q.gemm_flops_per_s(256, 64, 256) * 0.5)));
  constexpr double formula = [] {  // constant evaluation: the device_desc's formula, measured or not
    ts::cost_context k{};
    k.cluster.device = ts::hw::host::desc;
    return k.gemm_s(ts::plan_point{.bf16 = false}, 256, 64, 256);
  }();
  CHECK(formula > 0);
  json bad = ts::to_json(p);
  bad["cpu_share"] = 1.5;
  write_text(path, bad.dump());
  CHECK(error_of([&] { (void)ts::host_profile_from_json(path); }).find("cpu_share is 1.5, expected a number in (0, 1]") !=
        std::string::npos);
}
