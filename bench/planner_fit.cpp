// planner_fit — fits the four efficiency numbers of a GPU type (large-GEMM fraction of peak, GEMM
// half-saturation size, attention fraction of peak, memory-bound fraction of bandwidth) on the published
// Megatron-LM runs of that GPU (tessera/plan/published.hpp), minimising worst + mean |error| of the
// predicted iteration time: a seeded random search, then a local one around the best point.
//
//   planner_fit a100-80g|h100-sxm [--samples N] [--memory-efficiency X]
//
// Prints the fitted numbers and every row's error; the numbers go into tessera/plan/hardware.hpp by hand.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "tessera/plan/published.hpp"

namespace ts = tessera;

namespace {
struct score { double worst = 0, mean = 0; };

score evaluate(const std::string& gpu, const ts::device_desc& d, bool print) {
  score s;
  int n = 0;
  for (const auto& run : ts::published_runs) {
    if (gpu != run.gpu) continue;
    const ts::published_check c = ts::check_published(run, d);
    const double e = std::fabs(c.error());
    s.worst = std::max(s.worst, e);
    s.mean += e;
    ++n;
    if (print)
      std::printf("%8.1fB  published %9.3f s  predicted %9.3f s  %+6.1f%%\n", run.params_b, run.iteration_s(),
                  c.found ? c.plan.pred.iteration_s : 0.0, 100 * c.error());
  }
  s.mean /= n;
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: planner_fit a100-80g|h100-sxm [--samples N] [--memory-efficiency X]\n");
    return 2;
  }
  const std::string gpu = argv[1];
  int samples = 1500;
  double fixed_mem = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--samples") samples = std::atoi(argv[i + 1]);
    if (std::string(argv[i]) == "--memory-efficiency") fixed_mem = std::atof(argv[i + 1]);
  }
  ts::device_desc d = gpu == "a100-80g" ? ts::hw::a100_80g::desc : ts::hw::h100_sxm::desc;
  std::mt19937 rng(2021);
  std::uniform_real_distribution<double> u(0, 1);
  ts::device_desc best = d;
  double best_obj = 1e300;
  for (int it = 0; it < 2 * samples; ++it) {
    ts::device_desc x = best;
    if (it < samples) {
      x.gemm_efficiency = 0.4 + 0.55 * u(rng);
      x.gemm_half_size = std::exp(std::log(8.0) + u(rng) * std::log(64.0));
      x.attention_efficiency = 0.1 + 0.8 * u(rng);
      x.memory_efficiency = 0.3 + 0.7 * u(rng);
    } else {
      x.gemm_efficiency = std::clamp(best.gemm_efficiency * (1 + 0.05 * (u(rng) - 0.5)), 0.3, 0.97);
      x.gemm_half_size = best.gemm_half_size * std::exp(0.2 * (u(rng) - 0.5));
      x.attention_efficiency = std::clamp(best.attention_efficiency * (1 + 0.1 * (u(rng) - 0.5)), 0.05, 0.97);
      x.memory_efficiency = std::clamp(best.memory_efficiency * (1 + 0.1 * (u(rng) - 0.5)), 0.2, 1.0);
    }
    if (fixed_mem > 0) x.memory_efficiency = fixed_mem;
    const score s = evaluate(gpu, x, false);
    if (s.worst + s.mean < best_obj) best_obj = s.worst + s.mean, best = x;
  }
  const score s = evaluate(gpu, best, true);
  std::printf("%s: gemm_efficiency %.3f  gemm_half_size %.1f  attention_efficiency %.3f  memory_efficiency %.3f\n",
              gpu.c_str(), best.gemm_efficiency, best.gemm_half_size, best.attention_efficiency, best.memory_efficiency);
  std::printf("mean |error| %.1f%%, worst %.1f%%\n", 100 * s.mean, 100 * s.worst);
  return 0;
}
