// tessera/train/profile_report.hpp — the operator profile of --profile: per-step time, calls and GFLOP/s
// of every profiled scope (core/profile.hpp), each GEMM shape beside its rate when run alone.
#pragma once
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tessera/core/error.hpp"
#include "tessera/core/profile.hpp"
#include "tessera/ops/host/gemm_bench.hpp"

namespace tessera {

/// Rank 0's operator profile per step: a table on stderr and a JSON object for the log.
inline nlohmann::json profile_report(int steps, double step_ms, bool print) {
  const auto rows = prof::sorted();
  nlohmann::json ops = nlohmann::json::array();
  double total = 0, gemm_s = 0, gemm_flops = 0, peak = 0, sustained = 0;
  std::vector<double> alone(rows.size(), 0.0);
  {
    const bool was = prof::enabled();
    prof::enabled() = false;  // the isolated runs are not part of the profile
    std::size_t fastest = rows.size();
    for (std::size_t i = 0; i < rows.size(); ++i)
      if (ops::host::is_gemm_row(rows[i].first)) {
        alone[i] = ops::host::isolated_gemm_gflops(rows[i].first);
        if (alone[i] > peak) peak = alone[i], fastest = i;
      }
    if (fastest < rows.size()) sustained = ops::host::isolated_gemm_gflops(rows[fastest].first, 2.0);
    prof::enabled() = was;
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& [name, e] = rows[i];
    total += e.seconds;
    const bool gemm = ops::host::is_gemm_row(name);
    if (gemm) {
      gemm_s += e.seconds;
      gemm_flops += e.flops;
    }
    nlohmann::json o{{"op", name}, {"calls_per_step", static_cast<double>(e.calls) / steps},
                     {"ms_per_step", 1e3 * e.seconds / steps}, {"share", e.seconds / steps / (step_ms / 1e3)}};
    if (e.flops > 0) o["gflops"] = e.flops / e.seconds / 1e9;
    if (alone[i] > 0) o["alone_gflops"] = alone[i];
    ops.push_back(std::move(o));
  }
  const double gemm_rate = gemm_s > 0 ? gemm_flops / gemm_s / 1e9 : 0;
  nlohmann::json j{{"event", "profile"}, {"steps", steps}, {"step_ms", step_ms}, {"ops", ops},
                   {"profiled_ms_per_step", 1e3 * total / steps},
                   {"gemm", {{"ms_per_step", 1e3 * gemm_s / steps}, {"gflops", gemm_rate}, {"peak_gflops", peak},
                             {"sustained_gflops", sustained},
                             {"fraction_of_peak", peak > 0 ? gemm_rate / peak : 0.0},
                             {"share_of_step", gemm_s / steps / (step_ms / 1e3)}}}};
  if (print) {
    std::fprintf(stderr, "profile (rank 0, %d step%s after one warm-up, per step; a scope's time excludes those inside it)\n",
                 steps, steps == 1 ? "" : "s");
    std::fprintf(stderr, "  %-44s %7s %10s %7s %9s %9s\n", "operator", "calls", "ms", "share", "GFLOP/s", "alone");
    for (const auto& o : ops)
      std::fprintf(stderr, "  %-44s %7.0f %10.2f %6.1f%% %9s %9s\n", o["op"].get<std::string>().c_str(),
                   o["calls_per_step"].get<double>(), o["ms_per_step"].get<double>(), 100 * o["share"].get<double>(),
                   o.contains("gflops") ? cat(static_cast<int>(o["gflops"].get<double>())).c_str() : "",
                   o.contains("alone_gflops") ? cat(static_cast<int>(o["alone_gflops"].get<double>())).c_str() : "");
    std::fprintf(stderr, "  operators %.1f ms of a %.1f ms step (%.1f%%); GEMMs %.1f ms at %.1f GFLOP/s = %.1f%% of the "
                         "measured GEMM peak %.1f GFLOP/s (the fastest of the step's shapes run alone; %.1f GFLOP/s "
                         "when it runs back to back for 2 s)\n",
                 1e3 * total / steps, step_ms, 100 * total / steps / (step_ms / 1e3), 1e3 * gemm_s / steps, gemm_rate,
                 peak > 0 ? 100 * gemm_rate / peak : 0.0, peak, sustained);
  }
  return j;
}
}  // namespace tessera
