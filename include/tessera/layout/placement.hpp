// tessera/layout/placement.hpp — where a tensor lives on one mesh axis, in the DTensor/SBP vocabulary.
//
//   shard<D>   the tensor is split along its dimension D over the axis' ranks
//   replicate  every rank of the axis holds the whole tensor
//   partial    every rank holds a summand; the tensor is the sum over the axis' ranks
//
// A `sharding` gives one placement per mesh axis (indexed by axis, not by listing order).
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "tessera/layout/axis.hpp"

namespace tessera {

enum class placement_kind : std::uint8_t { replicate = 0, shard = 1, partial = 2 };

struct placement {
  placement_kind kind = placement_kind::replicate;
  int dim = -1;  // tensor dimension for shard, -1 otherwise

  static constexpr placement make_replicate() { return {placement_kind::replicate, -1}; }
  static constexpr placement make_partial() { return {placement_kind::partial, -1}; }
  static constexpr placement make_shard(int d) { return {placement_kind::shard, d}; }
  constexpr bool is_shard() const { return kind == placement_kind::shard; }
  constexpr bool is_replicate() const { return kind == placement_kind::replicate; }
  constexpr bool is_partial() const { return kind == placement_kind::partial; }
  friend constexpr bool operator==(const placement&, const placement&) = default;
};

inline std::string to_string(placement p) {
  switch (p.kind) {
    case placement_kind::replicate: return "R";
    case placement_kind::partial: return "P";
    case placement_kind::shard: {
      std::string r = "S(";
      r += std::to_string(p.dim);
      r += ')';
      return r;
    }
  }
  return "?";
}

/// Type-level placements, for plans and static_asserts; `::value` is the placement.
template <int D>
struct shard {
  static_assert(D >= 0, "tessera::shard<D>: the tensor dimension D must be >= 0");
  static constexpr placement value = placement::make_shard(D);
};
struct replicate {
  static constexpr placement value = placement::make_replicate();
};
struct partial {
  static constexpr placement value = placement::make_partial();
};

/// One placement per mesh axis (dp, pp, tp); axes not mentioned are replicated.
struct sharding {
  std::array<placement, num_axes> on{};

  constexpr placement operator[](axis a) const { return on[index(a)]; }
  constexpr sharding with(axis a, placement p) const {
    sharding s = *this;
    s.on[index(a)] = p;
    return s;
  }
  friend constexpr bool operator==(const sharding&, const sharding&) = default;
};

inline std::string to_string(const sharding& s) {
  std::string r = "{";
  for (axis a : all_axes) {
    if (a != axis::dp) r += ", ";
    r += axis_name(a);
    r += ':';
    r += to_string(s[a]);
  }
  r += '}';
  return r;
}

/// Type-level sharding: `placements<on<axis::tp, shard<1>>, on<axis::dp, partial>>`.
template <axis A, class P>
struct on {
  static constexpr axis ax = A;
  static constexpr placement value = P::value;
};
template <class... On>
struct placements {
  static constexpr sharding value = [] {
    sharding s;
    ((s.on[index(On::ax)] = On::value), ...);
    return s;
  }();
};

}  // namespace tessera
