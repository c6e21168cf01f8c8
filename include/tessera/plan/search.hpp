// tessera/plan/search.hpp — every plan of a model on a cluster for a global batch, and the best ones.
//
// The space (plan_request::fixed narrows any choice to one value):
//   tp      powers of two up to the GPUs of a node that divide heads, kv_heads and ffn
//   pp      divisors of the GPUs left (layers split evenly over the schedule's stages)
//   dp      the rest; it divides the global batch
//   b       microbatch sizes 1, 2, 4, … ≤ max_microbatch_size dividing the batch of a replica; M follows
//   schedule every kind whose shape is valid for (P, M) (with pp = 1 only gradient accumulation, "1f1b")
//   chunks  interleaved: every V from 2 to max_chunks with layers % (P·V) = 0
//   zero    0–3 (0 only without dp), recompute none | selective | full, sequence parallel (tp > 1)
// Ranking: fitting plans by predicted iteration time, ties by memory.
//   rank_plans (run time): branch and bound, exact — candidates in order of a lower bound on their time
//     (the compute of the busiest device plus the pipeline's fill, (P−1)·F, or (P/2−1)·F for Chimera),
//     each evaluated with the schedule's table, until the bound passes the n-th best time found.
//   best_plan (constexpr, for ts::auto_plan): the `budget` plans with the lowest closed-form estimate
//     (docs/planner.md) evaluated with the table, the best of them returned; tests compare it with
//     rank_plans over many models and clusters.
#pragma once
#include <algorithm>
#include <vector>

#include "tessera/plan/cost_model.hpp"

namespace tessera {

/// The most model chunks per rank the search tries for interleaved 1F1B.
inline constexpr int max_chunks = 32;

/// Choices fixed by the user; 0 / −1 = search.
struct plan_constraints {
  int tp = 0, pp = 0, dp = 0, microbatch_size = 0, chunks = 0;
  int schedules = 0x7f;  ///< allowed schedule kinds: bit k = schedule_kind k
  int zero = -1;
  int recompute = -1;  ///< a recompute_kind as int
  int sequence_parallel = -1;
  bool bf16 = true;
  int max_microbatch_size = 8;
  int max_table_actions = 0;  ///< 0: any; else the schedule table's compute actions at most (see auto_plan)
};

struct plan_request {
  cost_context costs{};
  int global_batch = 1;
  plan_constraints fixed{};
};

struct ranked_plan {
  plan_point point{};
  prediction pred{};
};

namespace search_detail {
constexpr bool allows(int fixed, int value) { return fixed <= 0 || fixed == value; }
constexpr bool allows_choice(int fixed, int value) { return fixed < 0 || fixed == value; }

/// The ZeRO, recompute and sequence-parallel choices of one layout (see for_each_plan).
template <class Visit>
constexpr void visit_policies(const plan_request& r, plan_point p, Visit& visit, bool pruned) {
  const plan_constraints& f = r.fixed;
  const int top_zero = p.dp > 1 ? 3 : 0;
  for (int rc = 0; rc < 3; ++rc) {
    if (!allows_choice(f.recompute, rc)) continue;
    p.recompute = static_cast<recompute_kind>(rc);
    for (int sp = p.tp > 1 ? 1 : 0; sp >= 0; --sp) {
      if (!allows_choice(f.sequence_parallel, sp)) continue;
      p.sequence_parallel = sp == 1;
      for (int z = (pruned && top_zero > 0 ? 1 : 0); z <= top_zero; ++z) {
        if (!allows_choice(f.zero, z)) continue;
        p.zero = z;
        if (!pruned) {
          visit(p);
        } else if (memory_bytes(r.costs, p) <= r.costs.cluster.device.memory_bytes || z == top_zero || f.zero >= 0) {
          visit(p);
          break;
        }
      }
      if (pruned) break;
    }
  }
}

/// Compute actions of the plan's schedule table (what ts::plan builds and verifies at compile time).
constexpr int table_actions(const plan_point& p) {
  if (p.pp <= 1) return 2 * p.microbatches;
  const bool split = p.schedule == schedule_kind::zb_h1 || p.schedule == schedule_kind::zbv || p.schedule == schedule_kind::dualpipe_v;
  return p.stages() * microbatches_per_stage(p.shape()) * (split ? 3 : 2);
}

/// Calls visit(point) for every plan of the space with a valid shape (memory not checked). Pruned (the
/// compile-time search): sequence parallelism whenever tp > 1 (in the model it moves the same bytes as
/// without and cuts memory-bound work and memory), and per recompute choice only the lowest ZeRO stage
/// from 1 up (0 without dp) that fits in memory — ZeRO 1 moves fewer bytes than 0, and each later stage
/// more than the one before while it needs less memory.
template <class Visit>
constexpr void for_each_plan(const plan_request& r, Visit&& visit, bool pruned = false) {
  const model_desc& m = r.costs.model;
  const int gpus = r.costs.cluster.gpus(), node = r.costs.cluster.gpus_per_node;
  const plan_constraints& f = r.fixed;
  for (int tp = 1; tp <= gpus && (tp <= node || tp == f.tp); tp *= 2) {
    if (!allows(f.tp, tp) || m.heads % tp || m.kv_heads % tp || m.ffn % tp || gpus % tp) continue;
    for (int pp = 1; pp <= gpus / tp && pp <= m.layers; ++pp) {
      if (!allows(f.pp, pp) || (gpus / tp) % pp) continue;
      const int dp = gpus / tp / pp;
      if (!allows(f.dp, dp) || r.global_batch % dp) continue;
      const int replica = r.global_batch / dp;
      for (int b = 1; b <= replica && b <= f.max_microbatch_size; b *= 2) {
        if (!allows(f.microbatch_size, b) || replica % b) continue;
        for (int k = 0; k < num_schedule_kinds; ++k) {
          const auto kind = static_cast<schedule_kind>(k);
          if (!(f.schedules >> k & 1)) continue;
          // with pp = 1 every kind is gradient accumulation: one allowed kind stands for all (1F1B if allowed)
          const int one_f_one_b_bit = 1 << static_cast<int>(schedule_kind::one_f_one_b);
          if (pp == 1 && ((f.schedules & one_f_one_b_bit) ? kind != schedule_kind::one_f_one_b : (f.schedules & ((1 << k) - 1)) != 0))
            continue;
          const bool interleaved = kind == schedule_kind::interleaved;
          for (int v = interleaved ? 2 : 1; v <= (interleaved ? max_chunks : 1); ++v) {
            if (interleaved && (m.layers % (pp * v) || !allows(f.chunks, v))) continue;
            plan_point p;
            p.tp = tp, p.pp = pp, p.dp = dp, p.microbatch_size = b, p.microbatches = replica / b;
            p.schedule = kind, p.chunks = v, p.bf16 = f.bf16;
            if (pp > 1 && validate(p.shape()) != schedule_error::none) continue;
            if (m.layers % p.model_stages() || m.layers < p.model_stages()) continue;
            if (f.max_table_actions > 0 && table_actions(p) > f.max_table_actions) continue;
            visit_policies(r, p, visit, pruned);
          }
        }
      }
    }
  }
}

/// Closed-form estimate of the bubble (ordering only; the prediction simulates the table).
constexpr double estimated_bubble(const plan_point& p, const schedule_costs& c) {
  const double P = p.pp, f = c.f, b = c.b, w = c.w;
  if (p.pp <= 1) return 0.0;
  switch (p.schedule) {
    case schedule_kind::gpipe:
    case schedule_kind::one_f_one_b:
    case schedule_kind::interleaved: return (P - 1) * (f + b + w);
    case schedule_kind::zb_h1:
    case schedule_kind::zbv: return (P - 1) * std::max(f, f + b - w);
    case schedule_kind::dualpipe_v: return (P - 1) * std::max(0.0, f + 2 * b - w);
    case schedule_kind::chimera:
      return (P - 2) * (b + w) + (p.microbatches / P - 1.0) * (P - 2) * std::max(0.0, b + w - f);
  }
  return 0.0;
}
/// A lower bound on the pipeline's fill: the last rank waits for the first microbatch's forward.
constexpr double fill_lower_bound(const plan_point& p, const schedule_costs& c) {
  if (p.pp <= 1) return 0.0;
  return (p.schedule == schedule_kind::chimera ? p.pp / 2 - 1 : p.pp - 1) * c.f;
}
constexpr double busy_of(const plan_point& p, const schedule_costs& c) { return pipeline_busy(p, c); }
/// The makespan the compile-time search ranks by: the busy rank plus the closed-form bubble.
constexpr double estimated_makespan(const plan_point& p, const schedule_costs& c) { return busy_of(p, c) + estimated_bubble(p, c); }
constexpr prediction lower_bound(const cost_context& c, const plan_point& p) {
  return predict_with(c, p, [](const plan_point& q, const schedule_costs& sc) { return busy_of(q, sc) + fill_lower_bound(q, sc); });
}
constexpr bool better(const prediction& a, const prediction& b) {
  if (a.iteration_s < b.iteration_s * (1 - 1e-12)) return true;
  if (b.iteration_s < a.iteration_s * (1 - 1e-12)) return false;
  return a.memory_bytes < b.memory_bytes;
}
}  // namespace search_detail

/// The outcome of a compile-time search: the best plan, or why none fits.
struct best_plan_result {
  bool found = false;
  ranked_plan best{};
  int candidates = 0;           ///< plans with a valid shape
  double least_memory = 0;      ///< the smallest memory any candidate needs (when none fits)
  double device_memory = 0;
};

/// The best fitting plan: the `budget` lowest estimates, evaluated with the schedule tables.
template <int Budget = 8>
constexpr best_plan_result best_plan(const plan_request& r) {
  best_plan_result out;
  out.device_memory = r.costs.cluster.device.memory_bytes;
  plan_point keep[Budget + 1]{};  // the lowest estimates so far, ascending (one spare slot)
  double keep_est[Budget + 1]{};
  int kept = 0;
  out.least_memory = 1e300;
  search_detail::for_each_plan(r, [&](const plan_point& p) {
    ++out.candidates;
    const double params = device_params(r.costs.model, p);
    const double mem = memory_bytes(r.costs, p, params);
    if (mem < out.least_memory) out.least_memory = mem;
    if (mem > out.device_memory) return;
    const prediction e = predict_time(r.costs, p, search_detail::estimated_makespan, params);
    keep[kept] = p, keep_est[kept] = e.iteration_s;
    for (int i = kept; i > 0 && keep_est[i] < keep_est[i - 1]; --i) {
      const plan_point tp = keep[i];
      const double te = keep_est[i];
      keep[i] = keep[i - 1], keep_est[i] = keep_est[i - 1];
      keep[i - 1] = tp, keep_est[i - 1] = te;
    }
    if (kept < Budget) ++kept;
  }, true);
  for (int i = 0; i < kept; ++i) {
    const prediction x = predict(r.costs, keep[i]);
    if (!x.fits) continue;
    if (!out.found || search_detail::better(x, out.best.pred)) out.best = {keep[i], x}, out.found = true;
  }
  return out;
}

/// The `top` best fitting plans, best first, each with its exact prediction (branch and bound).
inline std::vector<ranked_plan> rank_plans(const plan_request& r, std::size_t top) {
  struct cand { plan_point p; double bound; };
  std::vector<cand> cands;
  search_detail::for_each_plan(r, [&](const plan_point& p) {
    const prediction lb = search_detail::lower_bound(r.costs, p);
    if (lb.fits) cands.push_back({p, lb.iteration_s});
  });
  std::stable_sort(cands.begin(), cands.end(), [](const cand& a, const cand& b) { return a.bound < b.bound; });
  std::vector<ranked_plan> best;
  auto by_rank = [](const ranked_plan& a, const ranked_plan& b) { return search_detail::better(a.pred, b.pred); };
  for (const cand& c : cands) {
    if (best.size() >= top && c.bound > best.back().pred.iteration_s) break;
    ranked_plan x{c.p, predict(r.costs, c.p)};
    best.insert(std::upper_bound(best.begin(), best.end(), x, by_rank), x);
    if (best.size() > top) best.pop_back();
  }
  return best;
}

}  // namespace tessera
