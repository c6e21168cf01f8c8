// tessera/schedule/generators.hpp — one constexpr generator per schedule. Value-based: loops over
// ints, no recursive templates. Each appends, rank after rank, the rank's ordered compute actions.
//
// The orders are those of the reference implementations (tests compare them with the P = 4 reference
// file and check structural properties for many P, M, V):
//   gpipe        all F, then all B in microbatch order.
//   1f1b         PipeDream-Flush: rank r warms up with min(P−1−r, M) forwards, then F/B pairs, then the
//                remaining backwards.
//   interleaved  Megatron-LM forward_backward_pipelining_with_interleaving: virtual microbatch k maps to
//                (chunk, mb) by get_schedule_table(M, V, group = P); warmup
//                min(2(P−1−r) + (V−1)P, MV); forward k on stage chunk·P + r; backward k on the mirrored
//                chunk V−1−chunk.
//   zb_h1        zero-bubble H1 (sail-sg handcrafted; identical to torch's ZB1P with one stage per rank):
//                the 1F1B order with B split into I and W; the W of backward b is issued right after I(b)
//                only once b ≥ r (rank r delays its W's by r), the rest at the end.
//   zbv          torch ScheduleZBVZeroBubble._calculate_single_rank_operations (M ≥ 2P, so no padding).
//   dualpipe_v   torch ScheduleDualPipeV._calculate_single_rank_operations, with OVERLAP_F_B slots.
//   chimera      Li & Hoefler's own generator (AutoGeneratePipelineRank, github.com/Shigangli/Chimera):
//                two pipelines in opposite directions (down: stages 0…P−1 on ranks 0…P−1; up: stage P+j
//                on rank P−1−j), each with P/2 microbatches per unit, on a unit-time grid (gen_chimera);
//                for M > P unit u starts 2P·u steps later, as the generator chains its units (without
//                the stored generator's loss of microbatches for P = 2 or P ≥ 6 with M > 2P).
#pragma once
#include <stdexcept>

#include "tessera/schedule/program.hpp"

namespace tessera {

namespace sched_detail {

template <class S>
constexpr void gen_grad_accumulation(S& out) {
  const int M = out.shape.microbatches;
  out.start_rank();
  for (int m = 0; m < M; ++m) {
    out.push(make_action(op::F, 0, m));
    out.push(make_action(op::B, 0, m));
  }
}

template <class S>
constexpr void gen_gpipe(S& out) {
  const int P = out.shape.ranks, M = out.shape.microbatches;
  for (int r = 0; r < P; ++r) {
    out.start_rank();
    for (int m = 0; m < M; ++m) out.push(make_action(op::F, r, m));
    for (int m = 0; m < M; ++m) out.push(make_action(op::B, r, m));
  }
}

// 1F1B, and with split = true ZB-H1 (W of backward b right after I(b) once b ≥ r).
template <class S>
constexpr void gen_1f1b(S& out, bool split) {
  const int P = out.shape.ranks, M = out.shape.microbatches;
  for (int r = 0; r < P; ++r) {
    out.start_rank();
    const int warmup = (P - 1 - r) < M ? (P - 1 - r) : M;
    for (int m = 0; m < warmup; ++m) out.push(make_action(op::F, r, m));
    int next_w = 0;
    for (int b = 0; b < M; ++b) {
      if (b < M - warmup) out.push(make_action(op::F, r, warmup + b));
      out.push(make_action(split ? op::I : op::B, r, b));
      if (split && b >= r) out.push(make_action(op::W, r, next_w++));
    }
    if (split)
      while (next_w < M) out.push(make_action(op::W, r, next_w++));
  }
}

template <class S>
constexpr void gen_interleaved(S& out) {
  const int P = out.shape.ranks, M = out.shape.microbatches, V = out.shape.chunks;
  const int total = M * V;
  // Megatron get_schedule_table with microbatch_group_size_per_vp_stage = P (M % P == 0: full groups).
  auto chunk_of = [&](int k) { return (k % (P * V)) / P; };
  auto mb_of = [&](int k) { return (k / (P * V)) * P + (k % (P * V)) % P; };
  for (int r = 0; r < P; ++r) {
    out.start_rank();
    int warmup = 2 * (P - 1 - r) + (V - 1) * P;
    if (warmup > total) warmup = total;
    auto fwd = [&](int k) { return make_action(op::F, chunk_of(k) * P + r, mb_of(k)); };
    auto bwd = [&](int k) { return make_action(op::B, (V - 1 - chunk_of(k)) * P + r, mb_of(k)); };
    for (int k = 0; k < warmup; ++k) out.push(fwd(k));
    for (int i = 0; i < total - warmup; ++i) {
      out.push(fwd(warmup + i));
      out.push(bwd(i));
    }
    for (int i = total - warmup; i < total; ++i) out.push(bwd(i));
  }
}

template <class S>
constexpr void gen_zbv(S& out) {
  const int P = out.shape.ranks, M = out.shape.microbatches;
  for (int r = 0; r < P; ++r) {
    out.start_rank();
    const int c0 = r, c1 = 2 * P - 1 - r;
    int f0 = 0, f1 = 0, b0 = 0, b1 = 0;
    for (int i = 0; i < 2 * (P - r) - 1; ++i) out.push(make_action(op::F, c0, f0++));
    for (int i = 0; i < r; ++i) {
      out.push(make_action(op::F, c1, f1++));
      out.push(make_action(op::F, c0, f0++));
    }
    for (int i = 0; i < P - r; ++i) {
      out.push(make_action(op::F, c1, f1++));
      out.push(make_action(op::I, c1, b1));
      out.push(make_action(op::W, c1, b1++));
    }
    while (f1 < f0 || f0 < M) {
      if (f0 < M) out.push(make_action(op::F, c0, f0++));
      out.push(make_action(op::I, c0, b0));
      out.push(make_action(op::W, c0, b0++));
      out.push(make_action(op::F, c1, f1++));
      out.push(make_action(op::I, c1, b1));
      out.push(make_action(op::W, c1, b1++));
    }
    int w0 = b0, w1 = b1;
    for (int i = 0; i < r; ++i) {
      out.push(make_action(op::I, c0, b0++));
      out.push(make_action(op::I, c1, b1++));
    }
    for (int i = 0; i < P - r; ++i) {
      out.push(make_action(op::I, c0, b0++));
      out.push(make_action(op::W, c0, w0++));
    }
    while (w1 < b1) out.push(make_action(op::W, c1, w1++));
    while (w0 < b0) out.push(make_action(op::W, c0, w0++));
  }
}

template <class S>
constexpr void gen_dualpipe_v(S& out) {
  using ivec = typename S::template vec<int>;
  const int P = out.shape.ranks, M = out.shape.microbatches;
  for (int r = 0; r < P; ++r) {
    out.start_rank();
    const int st[2] = {r, 2 * P - 1 - r};
    // Counters as in torch: next forward / next input-gradient microbatch per local chunk.
    int fcount[2] = {0, 0}, icount[2] = {0, 0};
    ivec wq_stage{}, wq_mb{};  // FIFO of pending weight gradients (from I actions only)
    int wq_head = 0;
    auto add = [&](int c, op o) {
      if (o == op::F) {
        out.push(make_action(op::F, st[c], fcount[c]++));
      } else if (o == op::B) {
        out.push(make_action(op::B, st[c], icount[c]++));
      } else {  // I
        out.push(make_action(op::I, st[c], icount[c]));
        wq_stage.push_back(st[c]);
        wq_mb.push_back(icount[c]);
        ++icount[c];
      }
    };
    auto overlap = [&](int fc, int bc) { out.push(make_overlap(st[fc], fcount[fc]++, st[bc], icount[bc]++)); };
    auto add_w = [&]() {
      if (wq_head < static_cast<int>(wq_stage.size())) {
        out.push(make_action(op::W, wq_stage[wq_head], wq_mb[wq_head]));
        ++wq_head;
      }
    };
    for (int i = 0; i < (P - r - 1) * 2; ++i) add(0, op::F);             // step 1: F0
    for (int i = 0; i < r + 1; ++i) { add(0, op::F); add(1, op::F); }   // step 2: F0 F1
    for (int i = 0; i < P - r - 1; ++i) { add(1, op::I); add_w(); add(1, op::F); }  // step 3: I1 W F1
    for (int i = 0; i < M - 2 * P + r + 1; ++i) {                       // step 4: F0B1 / F1B0
      if (i == 0 && r == P - 1) {
        add(0, op::F);
        add(1, op::B);
      } else {
        overlap(0, 1);
      }
      overlap(1, 0);
    }
    for (int i = 0; i < P - r - 1; ++i) { add(1, op::B); overlap(1, 0); }  // step 5: B1, F1B0
    const int n6 = r + 1;                                                   // step 6: B1 B0 → I
    bool zb = false;
    for (int i = 0; i < n6; ++i) {
      if (i == n6 / 2 && r % 2 == 1) zb = true;
      add(1, zb ? op::I : op::B);
      if (i == n6 / 2 && r % 2 == 0) zb = true;
      add(0, zb ? op::I : op::B);
    }
    for (int i = 0; i < P - r - 1; ++i) { add_w(); add(0, zb ? op::I : op::B); }  // step 7: W B0
    for (int i = 0; i < r + 1; ++i) add_w();                                        // step 8: W
  }
}

// Chimera, as Li & Hoefler's generator (AutoGeneratePipelineRank) lays it out on a unit-time grid. A unit
// of a pipeline holds P/2 microbatches, injected at its first stage every 2 steps; a microbatch moves one
// stage per step, runs F at the last stage, B there on the next step, and B back down one stage per step.
// Both pipelines start at step 0, and unit u of each starts 2P·u steps later (when unit u−1's first
// microbatch finishes). So on rank d, microbatch j = u·P/2 + a of a pipeline runs at step 2P·u + 2a +
//   down F (stage d): d          up F (stage 2P−1−d): P−1−d
//   up B:             P + d      down B:               2P−1−d
// and the rank runs its actions in step order. No two share a step: the down F and the up B of a rank
// fall on steps of d's parity and would meet only if a ≥ P/2; likewise the up F and the down B.
//
// The microbatch a rank's pipeline runs at step t, given the pipeline's offset on that rank; −1 if none.
constexpr int chimera_mb_at(int t, int offset, int P, int per_pipeline) {
  if (t < offset || (t - offset) % 2 != 0) return -1;
  const int k = (t - offset) / 2, unit = k / P, a = k % P;
  if (a >= P / 2) return -1;
  const int j = unit * (P / 2) + a;
  return j < per_pipeline ? j : -1;
}

template <class S>
constexpr void gen_chimera(S& out) {
  const int P = out.shape.ranks, M = out.shape.microbatches;
  const int per_pipeline = M / 2, units = M / P;
  const int steps = 2 * P * units + 2 * P;  // past the last unit's last backward
  for (int d = 0; d < P; ++d) {
    out.start_rank();
    const int down = d, up = 2 * P - 1 - d;  // this rank's global stages
    const struct { op o; int stage, offset; } kinds[4] = {
        {op::F, down, d}, {op::F, up, P - 1 - d}, {op::B, up, P + d}, {op::B, down, 2 * P - 1 - d}};
    for (int t = 0; t < steps; ++t)
      for (const auto& k : kinds) {
        const int j = chimera_mb_at(t, k.offset, P, per_pipeline);
        if (j >= 0) out.push(make_action(k.o, k.stage, j));
      }
  }
}

}  // namespace sched_detail

/// Builds the schedule of a valid shape (precondition: validate(shape) == schedule_error::none;
/// otherwise throws std::invalid_argument, which is a compile error in a constant expression).
template <class Storage>
constexpr basic_schedule<Storage> make_schedule(const schedule_shape& shape) {
  if (validate(shape) != schedule_error::none)
    throw std::invalid_argument("tessera::make_schedule: invalid schedule shape (see validate())");
  basic_schedule<Storage> s{};
  s.shape = shape;
  if (shape.kind != schedule_kind::interleaved) s.shape.chunks = (num_stages(shape) / shape.ranks);
  if (shape.ranks == 1) {
    s.shape.chunks = shape.kind == schedule_kind::interleaved ? shape.chunks : 1;
    sched_detail::gen_grad_accumulation(s);
  } else {
    switch (shape.kind) {
      case schedule_kind::gpipe: sched_detail::gen_gpipe(s); break;
      case schedule_kind::one_f_one_b: sched_detail::gen_1f1b(s, false); break;
      case schedule_kind::zb_h1: sched_detail::gen_1f1b(s, true); break;
      case schedule_kind::interleaved: sched_detail::gen_interleaved(s); break;
      case schedule_kind::zbv: sched_detail::gen_zbv(s); break;
      case schedule_kind::dualpipe_v: sched_detail::gen_dualpipe_v(s); break;
      case schedule_kind::chimera: sched_detail::gen_chimera(s); break;
    }
  }
  s.finish();
  return s;
}

/// The run-time form (any P, M, V), used by show_schedule and the tests.
inline dynamic_schedule make_dynamic_schedule(const schedule_shape& shape) {
  return make_schedule<dynamic_storage>(shape);
}

}  // namespace tessera
