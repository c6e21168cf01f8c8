// tessera/schedule/metrics.hpp — what a schedule costs: a timeline under per-action costs, the bubble,
// peak in-flight activations per rank.
//
// Cost model (per action on one stage; interleaved/zbv/dualpipe_v/chimera stages are the chunks):
//   F = costs.f, I = costs.b (input-gradient part, "B" of the zero-bubble paper), W = costs.w,
//   full B = costs.b + costs.w, overlapped F&B slot = costs.fb. Communication is free.
// The timeline executes each rank's list in order; an action starts when the rank is free and its inputs
// (as in simulate_compute) have finished.
//
// Metrics and their closed forms (tests check each against the simulated timeline):
//   bubble(t)              = makespan − busy time of the busiest rank (all schedules here are balanced)
//   gpipe, 1f1b            bubble / busy = (P−1)/M                     (any f, b, w)
//   interleaved            bubble / busy = (P−1)/(V·M)                 (any f, b, w; M % P == 0)
//   zb_h1                  bubble = (P−1)(F + B − W), B = input part   (tested for W ≤ F and W ≤ B, the
//                                                                      zero-bubble paper's setting)
//   chimera                bubble / makespan = (P−2)/(2M+P−2)          (F = B = full backward costs
//                          equal, W = 0; exact at every even P and M = kP: the authors' grid chains unit
//                          u 2P·u steps after the first, so M microbatches span 2M + P − 2 steps, each
//                          rank busy 2M of them)
//   dualpipe_v             bubble = (P−1)(F&B + B − 3W), B = full backward: DeepSeek's (PP/2−1)(F&B+B−3W)
//                          with PP = 2P stages. Exact in this timeline when F = I, W ≤ F and an F&B slot
//                          costs F + B (no overlap gain); with other costs the measured bubble differs
//                          (both directions), so the form is not asserted there.
//   peak activations       (stage, microbatch) pairs whose F ran and whose B/I has not, maximum over the
//                          rank's order: gpipe M; 1f1b and zb_h1 min(P−r, M); interleaved
//                          min(2(P−1−r) + (V−1)P + 1, V·M) chunk-activations; zbv 2P chunk-activations on every
//                          rank (= 1F1B's P full-stage activations on rank 0).
#pragma once
#include "tessera/schedule/program.hpp"
#include "tessera/schedule/verify.hpp"

namespace tessera {

/// Per-action costs (arbitrary time unit).
struct schedule_costs {
  double f = 1.0;   // forward
  double b = 1.0;   // input-gradient part of the backward (I); full B = b + w
  double w = 1.0;   // weight-gradient part (W)
  double fb = 3.0;  // an overlapped F&B slot (DualPipeV)
  constexpr double full_b() const { return b + w; }
  constexpr double cost(const action& a) const {
    switch (a.kind) {
      case op::F: return f;
      case op::B: return b + w;
      case op::I: return b;
      case op::W: return w;
      case op::FB: return fb;
      default: return 0.0;
    }
  }
};

/// Start and end of every action (same indexing as schedule.actions), makespan and busy times.
template <class Storage>
struct basic_timeline {
  typename Storage::template vec<double> start{}, end{};
  double makespan = 0.0;
  double busy_max = 0.0;
  double busy_min = 0.0;
  bool complete = false;  // false: the schedule deadlocks
  constexpr double bubble() const { return makespan - busy_max; }
  constexpr double bubble_fraction_of_ideal() const { return busy_max > 0 ? bubble() / busy_max : 0.0; }
  constexpr double bubble_fraction_of_total() const { return makespan > 0 ? bubble() / makespan : 0.0; }
};

template <class Storage>
constexpr basic_timeline<Storage> simulate_timeline(const basic_schedule<Storage>& s, const schedule_costs& c) {
  using dvec = typename Storage::template vec<double>;
  using ivec = typename Storage::template vec<int>;
  const int S = s.stages(), Mb = microbatches_per_stage(s.shape), P = s.ranks();
  basic_timeline<Storage> t{};
  t.start.assign(s.total(), 0.0);
  t.end.assign(s.total(), 0.0);
  dvec fin{}, free_at{}, busy{};
  ivec done{}, ptr{};
  fin.assign(S * Mb * 3, 0.0);
  done.assign(S * Mb * 3, 0);
  free_at.assign(P, 0.0);
  busy.assign(P, 0.0);
  ptr.assign(P, 0);
  int remaining = s.total();
  auto fin_of = [&](int stage, int mb, int slot) { return fin[sched_detail::slot_index(S, Mb, stage, mb, slot)]; };
  while (remaining > 0) {
    bool progress = false;
    for (int r = 0; r < P; ++r) {
      while (ptr[r] < s.size(r)) {
        const int idx = s.begin[r] + ptr[r];
        const action& a = s.actions[idx];
        bool ready = true;
        for (int p = 0; p < num_parts(a); ++p) ready = ready && sched_detail::part_ready(s, done, part(a, p));
        if (!ready) break;
        double st = free_at[r];
        for (int p = 0; p < num_parts(a); ++p) {
          const action x = part(a, p);
          double dep = 0.0;
          if (x.kind == op::F) {
            if (!is_first_stage(s.shape, x.stage)) dep = fin_of(x.stage - 1, x.mb, 0);
          } else if (x.kind == op::B || x.kind == op::I) {
            dep = fin_of(x.stage, x.mb, 0);
            if (!is_last_stage(s.shape, x.stage) && fin_of(x.stage + 1, x.mb, 1) > dep) dep = fin_of(x.stage + 1, x.mb, 1);
          } else if (x.kind == op::W) {
            dep = fin_of(x.stage, x.mb, 1);
          }
          if (dep > st) st = dep;
        }
        const double en = st + c.cost(a);
        t.start[idx] = st;
        t.end[idx] = en;
        for (int p = 0; p < num_parts(a); ++p) {
          const action x = part(a, p);
          sched_detail::mark_done(done, S, Mb, x);
          auto set = [&](int slot) { fin[sched_detail::slot_index(S, Mb, x.stage, x.mb, slot)] = en; };
          if (x.kind == op::F) set(0);
          if (x.kind == op::B) { set(1); set(2); }
          if (x.kind == op::I) set(1);
          if (x.kind == op::W) set(2);
        }
        free_at[r] = en;
        busy[r] += c.cost(a);
        ++ptr[r];
        --remaining;
        progress = true;
      }
    }
    if (!progress) return t;  // deadlock: complete stays false
  }
  t.complete = true;
  t.busy_min = busy[0];
  for (int r = 0; r < P; ++r) {
    if (free_at[r] > t.makespan) t.makespan = free_at[r];
    if (busy[r] > t.busy_max) t.busy_max = busy[r];
    if (busy[r] < t.busy_min) t.busy_min = busy[r];
  }
  return t;
}

/// Peak number of (stage, microbatch) activations rank r holds: +1 at a forward, −1 at the first
/// backward part (B or I) of that pair; an FB slot counts its forward before its backward.
template <class Storage>
constexpr int peak_activations(const basic_schedule<Storage>& s, int r) {
  int live = 0, peak = 0;
  for (int i = 0; i < s.size(r); ++i) {
    const action& a = s.at(r, i);
    for (int p = 0; p < num_parts(a); ++p) {
      const action x = part(a, p);
      if (x.kind == op::F) {
        ++live;
        if (live > peak) peak = live;
      } else if (x.kind == op::B || x.kind == op::I) {
        --live;
      }
    }
  }
  return peak;
}

}  // namespace tessera
