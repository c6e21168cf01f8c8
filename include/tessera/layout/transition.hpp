// tessera/layout/transition.hpp — THE table: which collective turns one placement into another.
//
// One constexpr 3×3 table, indexed by (source kind, target kind) on one mesh axis:
//
//                 → replicate       → shard            → partial
//   replicate       none              local slice        local scaling (÷ k)
//   shard           all-gather        all-to-all*        local pad (zeros elsewhere)
//   partial         all-reduce        reduce-scatter     none
//
//   * shard(a) → shard(a) is none; shard(a) → shard(b) is all-to-all.
//
// Backward. Each entry is a linear map on the ranks' local buffers; its backward is the transpose
// (adjoint) map, which is again an entry of the table: all-reduce ↔ all-reduce, reduce-scatter ↔
// all-gather, all-to-all(a→b) ↔ all-to-all(b→a), slice ↔ pad, scaling ↔ scaling. Gradients of a
// tensor placed P are placed dual(P): dual(replicate) = partial, dual(partial) = replicate,
// dual(shard d) = shard d — so backward(src→dst) = table(dual(dst) → dual(src)), checked below by
// static_assert and tested numerically (⟨F x, y⟩ = ⟨x, Fᵀ y⟩ over all ranks).
// Megatron's f/g conjugates are the cases where the gradient is known to be replicated instead
// (e.g. g = all-reduce forward, identity backward): a plan states those explicitly.
#pragma once
#include <array>
#include <cstdint>
#include <string_view>

#include "tessera/layout/placement.hpp"

namespace tessera {

enum class collective : std::uint8_t {
  none,
  all_reduce,
  reduce_scatter,
  all_gather,
  all_to_all,
  local_slice,
  local_scale,
  local_pad,
};

constexpr std::string_view collective_name(collective c) {
  switch (c) {
    case collective::none: return "none";
    case collective::all_reduce: return "all-reduce";
    case collective::reduce_scatter: return "reduce-scatter";
    case collective::all_gather: return "all-gather";
    case collective::all_to_all: return "all-to-all";
    case collective::local_slice: return "local slice";
    case collective::local_scale: return "local scaling";
    case collective::local_pad: return "local pad";
  }
  return "?";
}

/// Does it move data between ranks?
constexpr bool communicates(collective c) {
  return c == collective::all_reduce || c == collective::reduce_scatter || c == collective::all_gather ||
         c == collective::all_to_all;
}

/// The table. Rows: source kind; columns: target kind (replicate, shard, partial).
inline constexpr std::array<std::array<collective, 3>, 3> transition_table{{
    /* replicate → */ {collective::none, collective::local_slice, collective::local_scale},
    /* shard     → */ {collective::all_gather, collective::all_to_all, collective::local_pad},
    /* partial   → */ {collective::all_reduce, collective::reduce_scatter, collective::none},
}};

constexpr collective transition(placement src, placement dst) {
  if (src.is_shard() && dst.is_shard() && src.dim == dst.dim) return collective::none;
  return transition_table[static_cast<int>(src.kind)][static_cast<int>(dst.kind)];
}

/// The adjoint of each collective.
constexpr collective transpose(collective c) {
  switch (c) {
    case collective::none: return collective::none;
    case collective::all_reduce: return collective::all_reduce;
    case collective::reduce_scatter: return collective::all_gather;
    case collective::all_gather: return collective::reduce_scatter;
    case collective::all_to_all: return collective::all_to_all;
    case collective::local_slice: return collective::local_pad;
    case collective::local_scale: return collective::local_scale;
    case collective::local_pad: return collective::local_slice;
  }
  return collective::none;
}

/// The placement a gradient has when its tensor has placement p.
constexpr placement dual(placement p) {
  if (p.is_replicate()) return placement::make_partial();
  if (p.is_partial()) return placement::make_replicate();
  return p;
}

/// Forward and backward of one placement change on one axis.
struct transition_pair {
  collective forward;
  collective backward;
};
constexpr transition_pair transition_with_backward(placement src, placement dst) {
  return {transition(src, dst), transition(dual(dst), dual(src))};
}

namespace detail {
constexpr bool table_is_closed_under_transpose() {
  const placement ps[] = {placement::make_replicate(), placement::make_shard(0), placement::make_shard(1),
                          placement::make_partial()};
  for (placement s : ps)
    for (placement d : ps) {
      const transition_pair t = transition_with_backward(s, d);
      if (t.backward != transpose(t.forward)) return false;
    }
  return true;
}
static_assert(table_is_closed_under_transpose(),
              "tessera: the transition table's backward must be the transpose of its forward");
}  // namespace detail

}  // namespace tessera
