// tessera/schedule/types.hpp — the schedule types of a plan and their compile-time tables.
//
//   ts::gpipe<M>  ts::one_f_one_b<M>  ts::interleaved_1f1b<M, V>  ts::chimera<M>  ts::zb_h1<M>
//   ts::zbv<M>    ts::dualpipe_v<M>
//
// A schedule type knows M (and V) but not P: P comes from the mesh. `ts::schedule_table<S, P>` (also
// `S::template table<P>()`) binds P and holds, as static constexpr members,
//   schedule         the per-rank compute actions (generators.hpp), a literal fixed-capacity table
//   comm             the derived program with SEND/RECV actions (verify.hpp: derive_comm)
//   stage_to_rank(s), peak_activations(r), bubble(costs), makespan(costs), parameter_copies, ...
// and static_asserts, when P is bound, that the shape is valid (a readable message; the numbers appear in
// the diag:: template named in the compiler's note), that every (stage, microbatch, kind) occurs exactly
// once on the right rank, that the schedule is deadlock-free with all dependencies respected, and that
// the derived communication program terminates under blocking rendezvous p2p.
//
// Template parameters are ints only (class-type template arguments break nvcc 13 in .cu files).
// Constexpr cost (g++ 12, measured): one bound type with all its verification takes ~0.6–1 s at P = 8,
// M = 32 and ~4 s at P = 16, M = 64 (zbv). P = 32, M = 128 exceeds GCC's default -fconstexpr-ops-limit
// (2^25); it compiles with -fconstexpr-ops-limit=2000000000 (~27 s, ~2.3 GB). The run-time generators
// (make_dynamic_schedule) have no such limit.
#pragma once
#include <cstddef>

#include "tessera/schedule/generators.hpp"
#include "tessera/schedule/metrics.hpp"
#include "tessera/schedule/program.hpp"
#include "tessera/schedule/verify.hpp"

namespace tessera {

namespace diag {
// Compile-time diagnostics: the template arguments carry the numbers into the compiler's note
// "'tessera::diag::...<M, P>::value' evaluates to false".
template <int M>
struct schedule_microbatches_at_least_1 { static constexpr bool value = M >= 1; };
template <int V>
struct interleaved_chunks_at_least_2 { static constexpr bool value = V >= 2; };
template <int Microbatches, int Ranks>
struct interleaved_microbatches_multiple_of_ranks {
  static constexpr bool value = Ranks <= 1 || Microbatches % Ranks == 0;
};
template <int Microbatches, int Ranks>
struct chimera_microbatches_multiple_of_ranks {
  static constexpr bool value = Ranks <= 1 || Microbatches % Ranks == 0;
};
template <int Ranks>
struct chimera_ranks_even { static constexpr bool value = Ranks <= 1 || Ranks % 2 == 0; };
template <int Microbatches, int Ranks>
struct zbv_microbatches_at_least_twice_ranks {
  static constexpr bool value = Ranks <= 1 || Microbatches >= 2 * Ranks;
};
template <int Microbatches, int Ranks>
struct dualpipe_v_microbatches_at_least_twice_ranks {
  static constexpr bool value = Ranks <= 1 || Microbatches >= 2 * Ranks;
};
template <int Ranks>
struct pipeline_ranks_at_least_1 { static constexpr bool value = Ranks >= 1; };
}  // namespace diag

template <class Schedule, int P>
struct schedule_table;

namespace sched_detail {
template <schedule_kind K, int M, int V>
struct schedule_base {
  static_assert(diag::schedule_microbatches_at_least_1<M>::value,
                "tessera schedule: needs at least 1 microbatch (M is named below)");
  static constexpr schedule_kind kind = K;
  static constexpr int microbatches = M;
  static constexpr int chunks = V;
};
}  // namespace sched_detail

/// GPipe: all forwards, then all backwards. Any M ≥ 1.
template <int M>
struct gpipe : sched_detail::schedule_base<schedule_kind::gpipe, M, 1> {
  template <int P> static constexpr schedule_table<gpipe, P> table() { return {}; }
};
/// 1F1B (PipeDream-Flush). Any M ≥ 1.
template <int M>
struct one_f_one_b : sched_detail::schedule_base<schedule_kind::one_f_one_b, M, 1> {
  template <int P> static constexpr schedule_table<one_f_one_b, P> table() { return {}; }
};
/// Interleaved 1F1B (Megatron-LM order), V ≥ 2 chunks per rank, M % P == 0.
template <int M, int V>
struct interleaved_1f1b : sched_detail::schedule_base<schedule_kind::interleaved, M, V> {
  static_assert(diag::interleaved_chunks_at_least_2<V>::value,
                "tessera interleaved_1f1b<M, V>: needs V >= 2 model chunks per rank (V is named below)");
  template <int P> static constexpr schedule_table<interleaved_1f1b, P> table() { return {}; }
};
/// Chimera (bidirectional: two pipelines in opposite directions). P even, M % P == 0.
template <int M>
struct chimera : sched_detail::schedule_base<schedule_kind::chimera, M, 2> {
  template <int P> static constexpr schedule_table<chimera, P> table() { return {}; }
};
/// Zero-bubble H1. Any M ≥ 1.
template <int M>
struct zb_h1 : sched_detail::schedule_base<schedule_kind::zb_h1, M, 1> {
  template <int P> static constexpr schedule_table<zb_h1, P> table() { return {}; }
};
/// Zero-bubble V (torch ScheduleZBVZeroBubble). Any P (odd too, as torch), M ≥ 2P.
template <int M>
struct zbv : sched_detail::schedule_base<schedule_kind::zbv, M, 2> {
  template <int P> static constexpr schedule_table<zbv, P> table() { return {}; }
};
/// DualPipeV (torch ScheduleDualPipeV). Any P (odd too, as torch), M ≥ 2P.
template <int M>
struct dualpipe_v : sched_detail::schedule_base<schedule_kind::dualpipe_v, M, 2> {
  template <int P> static constexpr schedule_table<dualpipe_v, P> table() { return {}; }
};

template <class T> inline constexpr bool is_schedule_v = false;
template <int M> inline constexpr bool is_schedule_v<gpipe<M>> = true;
template <int M> inline constexpr bool is_schedule_v<one_f_one_b<M>> = true;
template <int M, int V> inline constexpr bool is_schedule_v<interleaved_1f1b<M, V>> = true;
template <int M> inline constexpr bool is_schedule_v<chimera<M>> = true;
template <int M> inline constexpr bool is_schedule_v<zb_h1<M>> = true;
template <int M> inline constexpr bool is_schedule_v<zbv<M>> = true;
template <int M> inline constexpr bool is_schedule_v<dualpipe_v<M>> = true;

/// A schedule bound to P pipeline ranks: the verified compile-time tables and the metrics.
template <class Schedule, int P>
struct schedule_table {
  static_assert(is_schedule_v<Schedule>, "tessera schedule_table<S, P>: S must be a tessera schedule type");
  static constexpr schedule_kind kind = Schedule::kind;
  static constexpr int M = Schedule::microbatches;
  static constexpr int V = Schedule::chunks;

  // ---- validity, with the numbers in the diagnostic ----
  static_assert(diag::pipeline_ranks_at_least_1<P>::value, "tessera schedule: needs P >= 1 pipeline ranks");
  static_assert(kind != schedule_kind::interleaved || diag::interleaved_microbatches_multiple_of_ranks<M, P>::value,
                "tessera interleaved_1f1b<M, V> at P pipeline ranks: needs M % P == 0 (M and P are named below)");
  static_assert(kind != schedule_kind::chimera || diag::chimera_ranks_even<P>::value,
                "tessera chimera<M> at P pipeline ranks: needs an even P (P is named below)");
  static_assert(kind != schedule_kind::chimera || diag::chimera_microbatches_multiple_of_ranks<M, P>::value,
                "tessera chimera<M> at P pipeline ranks: needs M % P == 0 (M and P are named below)");
  static_assert(kind != schedule_kind::zbv || diag::zbv_microbatches_at_least_twice_ranks<M, P>::value,
                "tessera zbv<M> at P pipeline ranks: needs M >= 2*P microbatches (M and P are named below)");
  static_assert(kind != schedule_kind::dualpipe_v || diag::dualpipe_v_microbatches_at_least_twice_ranks<M, P>::value,
                "tessera dualpipe_v<M> at P pipeline ranks: needs M >= 2*P microbatches (M and P are named below)");

  static constexpr schedule_shape shape{kind, P, M, V};
  static constexpr bool valid = validate(shape) == schedule_error::none;
  static constexpr std::size_t capacity = valid ? compute_capacity(shape) : 1;
  using storage = fixed_storage<capacity>;
  using comm_storage = fixed_storage<valid ? comm_capacity(shape) : 1>;

  /// The per-rank compute actions.
  static constexpr basic_schedule<storage> schedule =
      valid ? make_schedule<storage>(shape) : basic_schedule<storage>{};

  // ---- verification ----
  static constexpr verify_result coverage = valid ? check_coverage(schedule) : verify_result{};
  static_assert(coverage.ok(), "tessera schedule: a (stage, microbatch, kind) is missing, duplicated or on the wrong rank");
  static constexpr verify_result execution = valid ? simulate_compute(schedule) : verify_result{};
  static_assert(execution.ok(), "tessera schedule: dependencies violated or deadlock under blocking p2p");

  /// The program with communication (SEND_F/RECV_F/SEND_B/RECV_B) in a deadlock-free order.
  static constexpr basic_schedule<comm_storage> comm =
      valid ? derive_comm<comm_storage>(schedule) : basic_schedule<comm_storage>{};
  static constexpr verify_result comm_execution = valid ? check_comm(comm, schedule.total()) : verify_result{};
  static_assert(comm_execution.ok(), "tessera schedule: the derived send/recv program does not terminate");

  // ---- queries and metrics ----
  static constexpr int ranks = P;
  static constexpr int stages = num_stages(shape);
  static constexpr int microbatches_per_stage = tessera::microbatches_per_stage(shape);
  static constexpr int stages_per_rank = tessera::stages_per_rank(shape);
  static constexpr int parameter_copies = tessera::parameter_copies(shape);
  static constexpr int stage_to_rank(int s) { return stage_rank(shape, s); }
  static constexpr int actions_of(int r) { return schedule.size(r); }
  static constexpr action action_at(int r, int i) { return schedule.at(r, i); }
  static constexpr int peak_activations(int r) { return tessera::peak_activations(schedule, r); }
  static constexpr double makespan(const schedule_costs& c = {}) { return simulate_timeline(schedule, c).makespan; }
  static constexpr double bubble(const schedule_costs& c = {}) { return simulate_timeline(schedule, c).bubble(); }
  static constexpr double bubble_fraction_of_ideal(const schedule_costs& c = {}) {
    return simulate_timeline(schedule, c).bubble_fraction_of_ideal();
  }
  static constexpr double bubble_fraction_of_total(const schedule_costs& c = {}) {
    return simulate_timeline(schedule, c).bubble_fraction_of_total();
  }
};

}  // namespace tessera
