// tessera/layout/shard_shape.hpp — the local piece of a global tensor on each rank.
//
// Rule for sizes that do not divide: PAD. Along a dimension of global extent n split over an axis of
// k ranks, every rank stores p = ceil(n/k) rows; rank c holds global rows [c·p, c·p + p) and the rows
// past n are zero padding. When several mesh axes shard the same dimension, they split it in mesh
// order (outer axis first), each axis splitting its parent's padded extent. So every rank of a group
// stores the same shape (collectives move equal blocks), `valid` tells how many rows carry data, and the
// padding is always zero (every tessera operation keeps it so).
//
// Contract (tested over every coordinate of every mesh up to 8 ranks): the valid boxes of a group tile
// the parent box exactly once; padded ≥ valid; offset + valid ≤ global where valid > 0 (an empty piece
// may start past the end).
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "tessera/core/error.hpp"
#include "tessera/layout/mesh.hpp"
#include "tessera/layout/placement.hpp"

namespace tessera {

inline constexpr int max_tensor_rank = 4;

struct extents {
  std::array<std::int64_t, max_tensor_rank> e{1, 1, 1, 1};
  int rank = 0;

  constexpr extents() = default;
  constexpr extents(std::initializer_list<std::int64_t> l) {
    for (std::int64_t v : l) e[rank++] = v;
  }
  constexpr std::int64_t operator[](int d) const { return e[d]; }
  constexpr std::int64_t& operator[](int d) { return e[d]; }
  constexpr std::int64_t numel() const {
    std::int64_t n = 1;
    for (int d = 0; d < rank; ++d) n *= e[d];
    return n;
  }
  friend constexpr bool operator==(const extents& a, const extents& b) {
    if (a.rank != b.rank) return false;
    for (int d = 0; d < a.rank; ++d)
      if (a.e[d] != b.e[d]) return false;
    return true;
  }
};

inline std::string to_string(const extents& x) {
  std::string r = "[";
  for (int d = 0; d < x.rank; ++d) {
    if (d) r += ',';
    r += std::to_string(x.e[d]);
  }
  r += ']';
  return r;
}

constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

/// One rank's piece of a global tensor.
struct local_box {
  extents padded;  // stored shape
  extents valid;   // leading rows that carry data along each dimension (the rest is zero padding)
  std::array<std::int64_t, max_tensor_rank> offset{0, 0, 0, 0};  // global index of local element 0
};

/// Padded extent along `dim` before `stop` splits it: the split by axes outer to `stop` (in mesh order).
/// With stop = none (num_axes), the full split.
constexpr std::int64_t split_extent(const mesh_desc& m, const sharding& s, std::int64_t n, int dim,
                                    int stop_order_pos = num_axes) {
  for (int i = 0; i < stop_order_pos; ++i) {
    const axis a = m.order[i];
    if (s[a].is_shard() && s[a].dim == dim) n = ceil_div(n, m.size_of(a));
  }
  return n;
}

/// Position of axis a in the mesh order (0 = outermost).
constexpr int order_pos(const mesh_desc& m, axis a) {
  for (int i = 0; i < num_axes; ++i)
    if (m.order[i] == a) return i;
  return num_axes;
}

constexpr local_box local_box_of(const mesh_desc& m, const sharding& s, const extents& global,
                                 const std::array<int, num_axes>& coords) {
  local_box b;
  b.padded = global;
  b.valid = global;
  for (int d = 0; d < global.rank; ++d) {
    std::int64_t n = global[d], valid = global[d], off = 0;
    for (int i = 0; i < num_axes; ++i) {
      const axis a = m.order[i];
      if (!(s[a].is_shard() && s[a].dim == d)) continue;
      const std::int64_t p = ceil_div(n, m.size_of(a));
      const std::int64_t start = coords[index(a)] * p;
      const std::int64_t left = valid - start;  // rows of the parent's data from my start on
      valid = left < 0 ? 0 : (left < p ? left : p);
      off += start;
      n = p;
    }
    b.padded[d] = n;
    b.offset[d] = off;
    b.valid[d] = valid;
  }
  return b;
}

/// Checks that a sharding can place a tensor of this shape; throws usage_error naming what is wrong.
inline void check_sharding(const sharding& s, const extents& global, const char* what = "tensor") {
  check(global.rank >= 0 && global.rank <= max_tensor_rank, what, ": rank ", global.rank,
        " is outside 0..", max_tensor_rank);
  for (int d = 0; d < global.rank; ++d)
    check(global[d] >= 0, what, ": extent of dim ", d, " is negative (", global[d], ")");
  for (axis a : all_axes) {
    const placement p = s[a];
    if (p.is_shard())
      check(p.dim >= 0 && p.dim < global.rank, what, " ", to_string(global), ": axis ", axis_name(a),
            " shards dim ", p.dim, " but the tensor has ", global.rank, " dims");
  }
}

}  // namespace tessera
