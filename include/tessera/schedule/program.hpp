// tessera/schedule/program.hpp — a schedule as a value: its shape (kind, P ranks, M microbatches,
// V chunks), the stage→rank map, validity, and per-rank ordered action lists.
//
// Storage is a policy so that the same constexpr code builds a table at compile time (fixed capacity,
// std::array underneath: a literal type, no constexpr allocation — nvcc-friendly) and at run time for
// any P, M, V (std::vector underneath, used by show_schedule and the tests):
//
//   fixed_storage<Cap>   vectors of at most Cap elements (exceeding it is a compile error in constexpr)
//   dynamic_storage      std::vector
//
// Contracts (tested in tests/schedule):
//   * num_stages: P for gpipe/1f1b/zb_h1, V·P for interleaved, 2P for chimera/zbv/dualpipe_v; 1 when P = 1.
//   * stage_rank: gpipe/1f1b/zb_h1 s → s; interleaved s → s mod P; zbv/dualpipe_v s < P → s,
//     s ≥ P → 2P−1−s; chimera (down pipeline 0…P−1, up pipeline P…2P−1) s < P → s, s ≥ P → 2P−1−s.
//   * microbatches per stage: M, except chimera: M/2 (each pipeline numbers its own 0…M/2−1).
//   * With P = 1 every kind is plain gradient accumulation: F0 B0 F1 B1 … on stage 0.
#pragma once
#include <array>
#include <cstddef>
#include <stdexcept>
#include <vector>

#include "tessera/schedule/action.hpp"

namespace tessera {

namespace sched_detail {
/// A constexpr vector of at most Cap elements over std::array.
template <class T, std::size_t Cap>
struct fixed_vec {
  std::array<T, Cap> data_{};
  std::size_t size_ = 0;

  constexpr void push_back(const T& v) {
    if (size_ >= Cap) throw std::length_error("tessera schedule: fixed capacity exceeded");
    data_[size_++] = v;
  }
  constexpr void resize(std::size_t n, const T& v = T{}) {
    if (n > Cap) throw std::length_error("tessera schedule: fixed capacity exceeded");
    for (std::size_t i = size_; i < n; ++i) data_[i] = v;
    size_ = n;
  }
  constexpr void assign(std::size_t n, const T& v) {
    size_ = 0;
    resize(n, v);
  }
  constexpr void clear() { size_ = 0; }
  constexpr std::size_t size() const { return size_; }
  constexpr bool empty() const { return size_ == 0; }
  constexpr const T& operator[](std::size_t i) const { return data_[i]; }
  constexpr T& operator[](std::size_t i) { return data_[i]; }
  constexpr T& back() { return data_[size_ - 1]; }
  constexpr const T* begin() const { return data_.data(); }
  constexpr const T* end() const { return data_.data() + size_; }
};
}  // namespace sched_detail

/// Compile-time storage: every vector holds at most Cap elements.
template <std::size_t Cap>
struct fixed_storage {
  static constexpr std::size_t capacity = Cap;
  template <class T>
  using vec = sched_detail::fixed_vec<T, Cap>;
};

/// Run-time storage: std::vector.
struct dynamic_storage {
  template <class T>
  using vec = std::vector<T>;
};

/// What a schedule is built for.
struct schedule_shape {
  schedule_kind kind = schedule_kind::one_f_one_b;
  int ranks = 1;         // P: pipeline ranks
  int microbatches = 1;  // M: microbatches per optimizer step (all pipelines together)
  int chunks = 1;        // V: model chunks per rank (interleaved only; others ignore it)
};

/// Why a shape is not a valid schedule (none = valid).
enum class schedule_error : unsigned char {
  none,
  ranks_below_1,
  microbatches_below_1,
  chunks_below_2,                 // interleaved: V ≥ 2
  microbatches_not_multiple_of_ranks,  // interleaved, chimera: M % P == 0
  odd_ranks,                      // chimera: P even
  microbatches_below_twice_ranks, // zbv, dualpipe_v: M ≥ 2P
};

/// Validity of a shape. P = 1 is plain gradient accumulation for every kind (only M ≥ 1 and, for
/// interleaved, V ≥ 2 are checked then).
constexpr schedule_error validate(const schedule_shape& s) {
  if (s.ranks < 1) return schedule_error::ranks_below_1;
  if (s.microbatches < 1) return schedule_error::microbatches_below_1;
  if (s.kind == schedule_kind::interleaved && s.chunks < 2) return schedule_error::chunks_below_2;
  if (s.ranks == 1) return schedule_error::none;
  switch (s.kind) {
    case schedule_kind::gpipe:
    case schedule_kind::one_f_one_b:
    case schedule_kind::zb_h1: return schedule_error::none;
    case schedule_kind::interleaved:
      return s.microbatches % s.ranks == 0 ? schedule_error::none
                                           : schedule_error::microbatches_not_multiple_of_ranks;
    case schedule_kind::chimera:
      if (s.ranks % 2 != 0) return schedule_error::odd_ranks;
      return s.microbatches % s.ranks == 0 ? schedule_error::none
                                           : schedule_error::microbatches_not_multiple_of_ranks;
    case schedule_kind::zbv:
    case schedule_kind::dualpipe_v:
      return s.microbatches >= 2 * s.ranks ? schedule_error::none
                                           : schedule_error::microbatches_below_twice_ranks;
  }
  return schedule_error::none;
}

/// Global stages of a schedule.
constexpr int num_stages(const schedule_shape& s) {
  if (s.ranks == 1) return 1;
  switch (s.kind) {
    case schedule_kind::interleaved: return s.chunks * s.ranks;
    case schedule_kind::chimera:
    case schedule_kind::zbv:
    case schedule_kind::dualpipe_v: return 2 * s.ranks;
    default: return s.ranks;
  }
}

/// Microbatches each stage processes (chimera: M/2 per pipeline).
constexpr int microbatches_per_stage(const schedule_shape& s) {
  if (s.ranks > 1 && s.kind == schedule_kind::chimera) return s.microbatches / 2;
  return s.microbatches;
}

/// Model chunks (stages) held by each rank.
constexpr int stages_per_rank(const schedule_shape& s) { return num_stages(s) / s.ranks; }

/// Copies of the per-rank parameter share (model/P) a rank holds: 2 for chimera (a stage of each of the
/// two pipelines, each 1/P of the model), 1 otherwise. DualPipeV's two chunks are two *different*
/// halves of a 2P-stage model (1/(2P) each), i.e. one copy — "2×" in DeepSeek's table counts stages.
constexpr int parameter_copies(const schedule_shape& s) {
  return (s.ranks > 1 && s.kind == schedule_kind::chimera) ? 2 : 1;
}

/// The rank that runs global stage `stage`.
constexpr int stage_rank(const schedule_shape& s, int stage) {
  const int P = s.ranks;
  if (P == 1) return 0;
  switch (s.kind) {
    case schedule_kind::interleaved: return stage % P;
    case schedule_kind::chimera:
    case schedule_kind::zbv:
    case schedule_kind::dualpipe_v: return stage < P ? stage : 2 * P - 1 - stage;
    default: return stage;
  }
}

/// Whether `stage` is the first stage of its pipeline (no forward input from another stage).
constexpr bool is_first_stage(const schedule_shape& s, int stage) {
  if (s.ranks > 1 && s.kind == schedule_kind::chimera) return stage == 0 || stage == s.ranks;
  return stage == 0;
}
/// Whether `stage` is the last stage of its pipeline (computes the loss; no gradient input).
constexpr bool is_last_stage(const schedule_shape& s, int stage) {
  if (s.ranks > 1 && s.kind == schedule_kind::chimera) return stage == s.ranks - 1 || stage == 2 * s.ranks - 1;
  return stage == num_stages(s) - 1;
}

/// Upper bound on the compute actions of a schedule (F + I + W for every (stage, microbatch)).
constexpr std::size_t compute_capacity(const schedule_shape& s) {
  return static_cast<std::size_t>(3 * num_stages(s) * microbatches_per_stage(s) + s.ranks + 1 + 4 * s.ranks);
}
/// Upper bound on the actions of the derived program with communication (≤ 3 per compute part).
constexpr std::size_t comm_capacity(const schedule_shape& s) { return 3 * compute_capacity(s); }

/// A schedule: per rank, its ordered actions. Rank r's actions are actions[begin[r] .. begin[r+1]).
template <class Storage>
struct basic_schedule {
  template <class T>
  using vec = typename Storage::template vec<T>;

  schedule_shape shape{};
  vec<action> actions{};
  vec<int> begin{};  // ranks + 1 offsets once complete

  constexpr int ranks() const { return shape.ranks; }
  constexpr int stages() const { return num_stages(shape); }
  constexpr int rank_of(int stage) const { return stage_rank(shape, stage); }
  constexpr int size(int r) const { return begin[r + 1] - begin[r]; }
  constexpr const action& at(int r, int i) const { return actions[begin[r] + i]; }
  constexpr int total() const { return static_cast<int>(actions.size()); }

  // Building, rank after rank: start_rank(0), push..., start_rank(1), push..., finish().
  constexpr void start_rank() { begin.push_back(static_cast<int>(actions.size())); }
  constexpr void push(const action& a) { actions.push_back(a); }
  constexpr void finish() { begin.push_back(static_cast<int>(actions.size())); }
};

using dynamic_schedule = basic_schedule<dynamic_storage>;

}  // namespace tessera
