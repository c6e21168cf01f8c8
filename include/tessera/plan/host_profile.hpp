// tessera/plan/host_profile.hpp — a host machine as `tessera_calibrate` measured it: the device_desc the
// layout planner's cost model reads, and the raw rates behind it (GEMM rates over a grid of shapes,
// memory-bound rates, the all-reduce and point-to-point α–β fits).
//
//   host_profile p = host_profile_from_json("profile.json");   // written by tessera_calibrate
//   double r = p.gemm_flops_per_s(512, 2304, 768);             // FLOP/s of that sgemm on one rank
//
// The file (JSON, "format": "tessera-host-profile", "version": 1) is outside data: every field is checked
// before it is used, and a wrong one is named with the file, its key path and what was expected
// (usage_error, exit code 2 in the programs):
//
//   host profile p.json: gemm[3].flops_per_s is "fast", expected a number > 0
//   host profile p.json: gemm has no rate for m=64 n=256 k=1024 (the shapes must form a full m × n × k grid)
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "tessera/core/error.hpp"
#include "tessera/plan/hardware.hpp"
#include "tessera/train/json_in.hpp"

namespace tessera {

inline constexpr const char* host_profile_format = "tessera-host-profile";
inline constexpr int host_profile_version = 1;

/// The measured rate of one fp32 GEMM shape (C[m×n] = A[m×k]·B[k×n]), FLOP/s of one rank (2·m·n·k per call).
struct gemm_rate {
  int m = 0, n = 0, k = 0;
  double flops_per_s = 0;
};

/// One host rank as measured, with all ranks of the calibration running at once.
struct host_profile {
  device_desc device{};                  ///< what the planner's cost model reads (name: interned, see below)
  std::vector<gemm_rate> gemm;           ///< a full grid: every (m, n, k) of the measured axis values
  double elementwise_bytes_per_s = 0;    ///< triad rate over activation-sized (1–8 MiB) arrays, per rank
  double allreduce_alpha_s = 0, allreduce_beta_s_per_byte = 0;  ///< MPI_Allreduce(bytes) ≈ α + β·bytes
  double p2p_alpha_s = 0, p2p_beta_s_per_byte = 0;              ///< one-way send of bytes ≈ α + β·bytes
  int threads = 1;          ///< OpenMP / OpenBLAS threads per rank during the measurement
  int ranks_measured = 1;   ///< ranks that ran at once (1: no communication was measured, α = β = 0)
  std::string cpu;          ///< the CPU's brand string

  /// FLOP/s of an m×n×k sgemm on one rank, interpolated over the measured grid:
  ///  - inside the grid, trilinear in log(size) of log(rate) between the 8 surrounding measured shapes
  ///    (exact at measured shapes; monotone along an axis wherever the measured rates are);
  ///  - above the largest measured value of an axis, that value's rate (never extrapolated upwards);
  ///  - below the smallest, that value's rate scaled by size / smallest (the call's time is taken to
  ///    stop falling below the smallest measured size: small GEMMs are overhead-bound);
  ///  - sizes below 1 count as 1; the result never exceeds the best measured rate.
  /// @throws usage_error when the grid is empty or incomplete.
  double gemm_flops_per_s(int m, int n, int k) const;
  /// The best measured GEMM rate (0 without measurements).
  double best_gemm_flops_per_s() const {
    double best = 0;
    for (const gemm_rate& g : gemm) best = std::max(best, g.flops_per_s);
    return best;
  }
};

namespace host_profile_detail {
/// A copy of `s` that lives as long as the program (device_desc::name is a plain pointer; interning
/// keeps it valid however host_profiles are copied).
inline const char* intern(const std::string& s) {
  static std::mutex mu;
  static std::set<std::string> names;
  const std::lock_guard<std::mutex> lock(mu);
  return names.insert(s).first->c_str();
}

/// The sorted distinct values of one axis (0: m, 1: n, 2: k) of the grid.
inline std::vector<int> axis_values(const std::vector<gemm_rate>& g, int axis) {
  std::vector<int> v;
  for (const gemm_rate& r : g) v.push_back(axis == 0 ? r.m : axis == 1 ? r.n : r.k);
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

/// Where x lies on an axis: the two measured values around it (lo, hi: indices), the weight of hi
/// (in log size), and the factor below the smallest value (size / smallest, else 1).
struct bracket {
  int lo = 0, hi = 0;
  double t = 0, scale = 1;
};
inline bracket locate(const std::vector<int>& v, int x) {
  const int last = static_cast<int>(v.size()) - 1;
  if (x <= v[0]) return {0, 0, 0.0, static_cast<double>(x) / v[0]};
  if (x >= v[last]) return {last, last, 0.0, 1.0};
  const int hi = static_cast<int>(std::upper_bound(v.begin(), v.end(), x) - v.begin());
  const double t = std::log(static_cast<double>(x) / v[hi - 1]) / std::log(static_cast<double>(v[hi]) / v[hi - 1]);
  return {hi - 1, hi, t, 1.0};
}

inline const gemm_rate* find(const std::vector<gemm_rate>& g, int m, int n, int k) {
  for (const gemm_rate& r : g)
    if (r.m == m && r.n == n && r.k == k) return &r;
  return nullptr;
}

/// Throws usage_error naming the first (m, n, k) of the axis values' product that has no rate.
inline void check_full_grid(const std::vector<gemm_rate>& g, const std::string& where) {
  check(!g.empty(), where, "gemm has no rates");
  const auto ms = axis_values(g, 0), ns = axis_values(g, 1), ks = axis_values(g, 2);
  for (int m : ms)
    for (int n : ns)
      for (int k : ks)
        check(find(g, m, n, k) != nullptr, where, "gemm has no rate for m=", m, " n=", n, " k=", k,
              " (the shapes must form a full m × n × k grid)");
}

/// A JSON number ≥ 0 (> 0 when `positive`), finite.
inline double number(const json_in& v, bool positive = false) {
  const nlohmann::json& j = v.raw();
  const char* want = positive ? "expected a number > 0" : "expected a number >= 0";
  if (!j.is_number()) v.fail(cat("is ", v.shown(), ", ", want));
  const double x = j.get<double>();
  if (!std::isfinite(x) || x < 0 || (positive && x == 0)) v.fail(cat("is ", v.shown(), ", ", want));
  return x;
}
}  // namespace host_profile_detail

inline double host_profile::gemm_flops_per_s(int m, int n, int k) const {
  namespace d = host_profile_detail;
  d::check_full_grid(gemm, "host_profile: ");
  const int x[3] = {std::max(m, 1), std::max(n, 1), std::max(k, 1)};
  d::bracket b[3];
  std::vector<int> v[3];
  double scale = 1;
  for (int a = 0; a < 3; ++a) {
    v[a] = d::axis_values(gemm, a);
    b[a] = d::locate(v[a], x[a]);
    scale *= b[a].scale;
  }
  double log_rate = 0;
  for (int corner = 0; corner < 8; ++corner) {
    double w = 1;
    int at[3];
    for (int a = 0; a < 3; ++a) {
      const bool upper = (corner >> a) & 1;
      w *= upper ? b[a].t : 1 - b[a].t;
      at[a] = v[a][upper ? b[a].hi : b[a].lo];
    }
    if (w == 0) continue;
    log_rate += w * std::log(d::find(gemm, at[0], at[1], at[2])->flops_per_s);
  }
  return std::min(std::exp(log_rate) * scale, best_gemm_flops_per_s());
}

/// The profile as tessera_calibrate writes it (numbers round-trip exactly).
inline nlohmann::json to_json(const host_profile& p) {
  const device_desc& d = p.device;
  nlohmann::json gemm = nlohmann::json::array();
  for (const gemm_rate& g : p.gemm)
    gemm.push_back({{"m", g.m}, {"n", g.n}, {"k", g.k}, {"flops_per_s", g.flops_per_s}});
  return {{"format", host_profile_format},
          {"version", host_profile_version},
          {"cpu", p.cpu},
          {"threads", p.threads},
          {"ranks_measured", p.ranks_measured},
          {"device",
           {{"name", d.name ? d.name : ""}, {"peak_bf16", d.peak_bf16}, {"peak_fp32", d.peak_fp32},
            {"memory_bytes", d.memory_bytes}, {"memory_bw", d.memory_bw}, {"intra_bw", d.intra_bw},
            {"intra_latency", d.intra_latency}, {"inter_bw", d.inter_bw}, {"inter_latency", d.inter_latency},
            {"gemm_efficiency", d.gemm_efficiency}, {"gemm_half_size", d.gemm_half_size},
            {"attention_efficiency", d.attention_efficiency}, {"memory_efficiency", d.memory_efficiency},
            {"reserved_bytes", d.reserved_bytes}}},
          {"gemm", gemm},
          {"elementwise_bytes_per_s", p.elementwise_bytes_per_s},
          {"allreduce", {{"alpha_s", p.allreduce_alpha_s}, {"beta_s_per_byte", p.allreduce_beta_s_per_byte}}},
          {"p2p", {{"alpha_s", p.p2p_alpha_s}, {"beta_s_per_byte", p.p2p_beta_s_per_byte}}}};
}

/// A profile from its JSON document, every field checked; `name` names the document in errors
/// ("host profile p.json"). Members the reader does not know (the command's "notes", "raw") are ignored.
inline host_profile host_profile_from_json(const nlohmann::json& doc, const std::string& name) {
  namespace d = host_profile_detail;
  const json_in top(doc, name);
  const json_in fmt = top.at("format");
  if (fmt.text() != host_profile_format) fmt.fail(cat("is ", fmt.shown(), ", expected \"", host_profile_format, "\""));
  top.at("version").integer(host_profile_version, host_profile_version);
  host_profile p;
  p.cpu = top.at("cpu").text();
  p.threads = static_cast<int>(top.at("threads").integer(1, 1 << 20));
  p.ranks_measured = static_cast<int>(top.at("ranks_measured").integer(1, 1 << 24));
  const json_in dev = top.at("device");
  device_desc& v = p.device;
  v.name = d::intern(dev.at("name").text());
  double* const fields[] = {&v.peak_bf16, &v.peak_fp32, &v.memory_bytes, &v.memory_bw, &v.intra_bw,
                            &v.intra_latency, &v.inter_bw, &v.inter_latency, &v.gemm_efficiency,
                            &v.gemm_half_size, &v.attention_efficiency, &v.memory_efficiency, &v.reserved_bytes};
  const char* const keys[] = {"peak_bf16", "peak_fp32", "memory_bytes", "memory_bw", "intra_bw",
                              "intra_latency", "inter_bw", "inter_latency", "gemm_efficiency",
                              "gemm_half_size", "attention_efficiency", "memory_efficiency", "reserved_bytes"};
  for (std::size_t i = 0; i < std::size(keys); ++i) *fields[i] = d::number(dev.at(keys[i]));
  const json_in gemm = top.at("gemm");
  for (std::size_t i = 0; i < gemm.size(); ++i) {
    const json_in g = gemm.at(i);
    p.gemm.push_back({static_cast<int>(g.at("m").integer(1, 1 << 30)), static_cast<int>(g.at("n").integer(1, 1 << 30)),
                      static_cast<int>(g.at("k").integer(1, 1 << 30)), d::number(g.at("flops_per_s"), true)});
  }
  d::check_full_grid(p.gemm, name + ": ");
  p.elementwise_bytes_per_s = d::number(top.at("elementwise_bytes_per_s"), true);
  p.allreduce_alpha_s = d::number(top.at("allreduce").at("alpha_s"));
  p.allreduce_beta_s_per_byte = d::number(top.at("allreduce").at("beta_s_per_byte"));
  p.p2p_alpha_s = d::number(top.at("p2p").at("alpha_s"));
  p.p2p_beta_s_per_byte = d::number(top.at("p2p").at("beta_s_per_byte"));
  return p;
}

/// Reads the profile file `path` (written by tessera_calibrate). Errors: usage_error naming
/// "host profile PATH", the key path and what was expected; a missing or unreadable file, invalid JSON.
inline host_profile host_profile_from_json(const std::string& path) {
  const std::string name = "host profile " + path;
  std::ifstream f(path, std::ios::binary);
  check(f.good(), name, ": cannot be opened for reading (does it exist? tessera_calibrate --out writes it)");
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  check(!f.bad(), name, ": read error");
  return host_profile_from_json(parse_json(text, name), name);
}

}  // namespace tessera
