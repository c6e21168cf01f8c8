// tessera/plan/published.hpp — published Megatron-LM runs, the rows the cost model is fitted on and
// judged against, each turned into a planner request with the published layout fixed.
//
//   Narayanan et al. 2021 ("Efficient Large-Scale Language Model Training on GPU Clusters"), Table 1:
//     A100-80GB (Selene), GPT, sequence 2048, vocab 51,200, interleaved 1F1B, full recompute, no
//     sequence parallelism. TFLOP/s per GPU counted with the paper's Eq. 3,
//     96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)), recompute included.
//   Megatron-Core r0.8.0 on H100 (Megatron-LM README, 2024): GPT, sequence 4096, vocab 131,072,
//     TP/DP/PP overlap, selective recompute with sequence parallelism; TFLOP/s counted without recompute,
//     72·B·s·l·h²·(1 + s/(6h) + V/(12·l·h)).
// The published iteration time is that FLOP count over (GPUs · TFLOP/s per GPU). The microbatch size and
// the interleaving depth are not published; the planner chooses them (1F1B where the layers of a rank do
// not split into chunks).
#pragma once
#include <array>

#include "tessera/plan/search.hpp"

namespace tessera {

struct published_run {
  const char* source = "";
  const char* gpu = "";
  double params_b = 0;  ///< billions, as published
  int heads = 0, hidden = 0, layers = 0, tp = 1, pp = 1, dp = 1, gpus = 1, batch = 1;
  double tflops_per_gpu = 0;
  int seq = 2048, vocab = 51200;
  bool megatron_core = false;

  /// The published FLOP count of one iteration (the source's own formula).
  constexpr double flops() const {
    const double B = batch, s = seq, l = layers, h = hidden, V = vocab;
    return megatron_core ? 72.0 * B * s * l * h * h * (1 + s / (6 * h) + V / (12 * l * h))
                         : 96.0 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h));
  }
  constexpr double iteration_s() const { return flops() / (gpus * tflops_per_gpu * 1e12); }
  constexpr model_desc model() const {
    gpt_config g{};
    g.vocab = vocab, g.seq = seq, g.layers = layers, g.hidden = hidden, g.heads = heads;
    return resolve(model_family::gpt, g);
  }
  /// The planner's request for this run: its GPUs, its software, its layout fixed.
  constexpr plan_request request(const device_desc& device) const {
    plan_request r;
    r.costs.model = model();
    r.costs.cluster = {device, gpus < 8 ? gpus : 8, gpus < 8 ? 1 : gpus / 8};
    r.costs.software = megatron_core ? sw::megatron_core : sw::megatron_2021;
    r.global_batch = batch;
    r.fixed.tp = tp, r.fixed.pp = pp, r.fixed.dp = dp;
    r.fixed.schedules = (1 << static_cast<int>(schedule_kind::one_f_one_b)) | (1 << static_cast<int>(schedule_kind::interleaved));
    r.fixed.recompute = static_cast<int>(megatron_core ? recompute_kind::selective : recompute_kind::full);
    r.fixed.sequence_parallel = megatron_core && tp > 1 ? 1 : 0;
    r.fixed.zero = megatron_core ? 1 : 0;  // Megatron-Core's distributed optimizer; 2021: plain all-reduce
    return r;
  }
};

namespace published_detail {
constexpr published_run a100(double p, int a, int h, int l, int t, int pp, int d, int n, int B, double tf) {
  return {"Narayanan 2021 Table 1", "a100-80g", p, a, h, l, t, pp, d, n, B, tf, 2048, 51200, false};
}
constexpr published_run h100(double p, int a, int h, int l, int t, int pp, int d, int n, int B, double tf) {
  return {"Megatron-Core r0.8 README", "h100-sxm", p, a, h, l, t, pp, d, n, B, tf, 4096, 131072, true};
}
}  // namespace published_detail

inline constexpr std::array<published_run, 19> published_runs{
    published_detail::a100(1.7, 24, 2304, 24, 1, 1, 32, 32, 512, 137),
    published_detail::a100(3.6, 32, 3072, 30, 2, 1, 32, 64, 512, 138),
    published_detail::a100(7.5, 32, 4096, 36, 4, 1, 32, 128, 512, 142),
    published_detail::a100(18.4, 48, 6144, 40, 8, 1, 32, 256, 1024, 135),
    published_detail::a100(39.1, 64, 8192, 48, 8, 2, 32, 512, 1536, 138),
    published_detail::a100(76.1, 80, 10240, 60, 8, 4, 32, 1024, 1792, 140),
    published_detail::a100(145.6, 96, 12288, 80, 8, 8, 24, 1536, 2304, 148),
    published_detail::a100(310.1, 128, 16384, 96, 8, 16, 15, 1920, 2160, 155),
    published_detail::a100(529.6, 128, 20480, 105, 8, 35, 9, 2520, 2520, 163),
    published_detail::a100(1008.0, 160, 25600, 128, 8, 64, 6, 3072, 3072, 163),
    published_detail::h100(1.7, 16, 2048, 24, 1, 1, 48, 48, 192, 408.8),
    published_detail::h100(7.1, 32, 4096, 30, 2, 1, 48, 96, 192, 465.9),
    published_detail::h100(16, 48, 6144, 32, 4, 1, 48, 192, 192, 489.1),
    published_detail::h100(32, 56, 7168, 48, 8, 1, 48, 384, 192, 459.6),
    published_detail::h100(70, 64, 8192, 84, 8, 2, 48, 768, 384, 419.7),
    published_detail::h100(119, 80, 10240, 92, 8, 4, 48, 1536, 768, 420.5),
    published_detail::h100(177, 96, 12288, 96, 8, 6, 48, 2304, 1152, 432.8),
    published_detail::h100(314, 128, 16384, 96, 8, 8, 48, 3072, 1536, 474.4),
    published_detail::h100(462, 144, 18432, 112, 8, 16, 48, 6144, 3072, 459.9),
};

/// The planner's best plan for a published run (its layout fixed) on `device`; found = false if none fits.
struct published_check {
  published_run run{};
  bool found = false;
  ranked_plan plan{};
  constexpr double error() const { return found ? (plan.pred.iteration_s - run.iteration_s()) / run.iteration_s() : 1.0; }
};
inline published_check check_published(const published_run& run, const device_desc& device) {
  const auto best = rank_plans(run.request(device), 1);
  published_check c{run, !best.empty(), {}};
  if (c.found) c.plan = best.front();
  return c;
}

/// The planner's own choice for the same model, GPUs, batch and software, within what that software
/// offered: tp, pp, dp, the microbatch size and the interleaving depth free; Megatron-LM 2021 without
/// sequence parallelism, ZeRO or selective recompute (none or full), Megatron-Core with all three
/// (ZeRO 0 or 1: its distributed optimizer).
inline published_check best_for_published(const published_run& run, const device_desc& device) {
  const plan_request base = run.request(device);
  published_check c{run, false, {}};
  for (int zero = 0; zero <= (run.megatron_core ? 1 : 0); ++zero)
    for (int rc = 0; rc < 3; ++rc) {
      if (!run.megatron_core && rc == 1) continue;
      plan_request r = base;
      r.fixed = plan_constraints{};
      r.fixed.schedules = base.fixed.schedules;
      r.fixed.zero = zero, r.fixed.recompute = rc;
      if (!run.megatron_core) r.fixed.sequence_parallel = 0;
      const auto best = rank_plans(r, 1);
      if (!best.empty() && (!c.found || search_detail::better(best.front().pred, c.plan.pred))) c.found = true, c.plan = best.front();
    }
  return c;
}

}  // namespace tessera
