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
#include "tessera/plan/cost_model.hpp"
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

/// The measured rate of the host attention kernel (ops/host/attention.hpp) at one head size, in the cost
/// model's FLOPs: 4·B·H·T²·D forward, twice that backward (causal half included: it is what runs).
struct attention_rate {
  int head_dim = 0;
  double forward_flops_per_s = 0, backward_flops_per_s = 0;
};

/// One host rank as measured, with all ranks of the calibration running at once. As measured_rates it
/// is what the cost model reads instead of the device_desc's formulas (cost_context::measured).
struct host_profile final : measured_rates {
  device_desc device{};                  ///< what the planner's cost model reads (name: interned, see below)
  std::vector<gemm_rate> gemm;           ///< a full grid: every (m, n, k) of the measured axis values
  double elementwise_bytes_per_s = 0;   ///< triad rate over activation-sized (1–8 MiB) arrays, per rank
  double allreduce_alpha_s = 0, allreduce_beta_s_per_byte = 0;  ///< MPI_Allreduce(bytes) ≈ α + β·bytes
  double p2p_alpha_s = 0, p2p_beta_s_per_byte = 0;              ///< one-way send of bytes ≈ α + β·bytes
  std::vector<attention_rate> attention;  ///< by head size (optional in the file: empty, attention_efficiency)
  double sustained_share = 1;  ///< see measured_rates::cpu_share (optional in the file: 1)
  /// The GEMM rate the trainer measures at its start (ops::host::measure_peak_flops: rank 0, an n = 768
  /// sgemm, the other ranks waiting), measured the same way at calibration (optional in the file: 0).
  double reference_peak_flops = 0;
  /// Not in the file: the CPU's speed during the run to predict relative to the calibration, i.e. the
  /// run's own start-up measurement (its log's peak_flops_per_rank) over reference_peak_flops. On a shared
  /// virtual machine a process's speed differs from the next one's by as much as 40% (docs/planner.md);
  /// compute rates (GEMM, attention, memory-bound) are scaled by it, communication is not. 1: unscaled.
  double speed_scale = 1;
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
  // ---- measured_rates ----
  double gemm_flops(double m, double n, double k) const override {
    auto dim = [](double x) { return static_cast<int>(std::clamp(std::lround(x), 1L, 1L << 30)); };
    return speed_scale * gemm_flops_per_s(dim(m), dim(n), dim(k));
  }
  /// Log-linear in log(head size) between measured sizes, the nearest one's rate outside them; without
  /// measurements the device_desc's attention_efficiency × peak.
  double attention_flops_per_s(double head_dim, bool backward) const override;
  double memory_bound_bytes_per_s() const override { return speed_scale * elementwise_bytes_per_s; }
  double cpu_share() const override { return sustained_share; }
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

inline double host_profile::attention_flops_per_s(double head_dim, bool backward) const {
  auto rate = [&](const attention_rate& a) { return speed_scale * (backward ? a.backward_flops_per_s : a.forward_flops_per_s); };
  if (attention.empty()) return speed_scale * device.peak_fp32 * device.attention_efficiency;
  if (head_dim <= attention.front().head_dim) return rate(attention.front());
  for (std::size_t i = 1; i < attention.size(); ++i)
    if (head_dim <= attention[i].head_dim) {
      const attention_rate &lo = attention[i - 1], &hi = attention[i];
      const double t = std::log(head_dim / lo.head_dim) / std::log(1.0 * hi.head_dim / lo.head_dim);
      return std::exp((1 - t) * std::log(rate(lo)) + t * std::log(rate(hi)));
    }
  return rate(attention.back());
}

/// The profile as tessera_calibrate writes it (numbers round-trip exactly).
inline nlohmann::json to_json(const host_profile& p) {
  const device_desc& d = p.device;
  nlohmann::json gemm = nlohmann::json::array();
  for (const gemm_rate& g : p.gemm)
    gemm.push_back({{"m", g.m}, {"n", g.n}, {"k", g.k}, {"flops_per_s", g.flops_per_s}});
  nlohmann::json attention = nlohmann::json::array();
  for (const attention_rate& a : p.attention)
    attention.push_back({{"head_dim", a.head_dim}, {"forward_flops_per_s", a.forward_flops_per_s},
                         {"backward_flops_per_s", a.backward_flops_per_s}});
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
          {"attention", attention},
          {"cpu_share", p.sustained_share},
          {"reference_peak_flops", p.reference_peak_flops},
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
  if (top.raw().contains("attention")) {  // optional (profiles before it have none)
    const json_in att = top.at("attention");
    for (std::size_t i = 0; i < att.size(); ++i) {
      const json_in a = att.at(i);
      const int dim = static_cast<int>(a.at("head_dim").integer(p.attention.empty() ? 1 : p.attention.back().head_dim + 1, 1 << 20));
      p.attention.push_back({dim, d::number(a.at("forward_flops_per_s"), true), d::number(a.at("backward_flops_per_s"), true)});
    }
  }
  if (top.raw().contains("cpu_share")) {
    const json_in share = top.at("cpu_share");
    p.sustained_share = d::number(share, true);
    if (p.sustained_share > 1) share.fail(cat("is ", share.shown(), ", expected a number in (0, 1]"));
  }
  if (top.raw().contains("reference_peak_flops")) p.reference_peak_flops = d::number(top.at("reference_peak_flops"));
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
