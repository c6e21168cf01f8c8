// tessera/layout/mesh.hpp — the device mesh: ranks laid out over data × pipeline × tensor axes.
//
// `mesh_desc` is the value that does the work (constexpr, usable at run time too); `mesh<Axes...>`
// is the type a plan names. Axes are listed outermost first; the last listed axis varies fastest over
// ranks, so rank = Σ coord(a)·stride(a). Axes that are not listed have size 1 and coordinate 0.
//
// Contract (tested over every rank of every mesh up to 8 ranks):
//   rank_of(coords(r)) == r;  0 <= coord(r, a) < size(a);
//   group(r, S) lists the ranks that share r's coordinates on the axes outside S, in ascending rank
//   order, which is also the order of their linear index over the axes in S (mesh order);
//   group(r, S)[group_index(r, S)] == r;  group_color(r, S) is equal exactly within a group.
#pragma once
#include <array>
#include <cstddef>
#include <initializer_list>
#include <utility>

#include "tessera/core/static_vector.hpp"
#include "tessera/layout/axis.hpp"

namespace tessera {

/// Most ranks a compile-time mesh may hold (bounds the constexpr group arrays).
inline constexpr int max_mesh_ranks = 1 << 16;

struct mesh_desc {
  std::array<int, num_axes> size{1, 1, 1};    // by axis index
  std::array<int, num_axes> stride{1, 1, 1};  // by axis index
  std::array<axis, num_axes> order{axis::dp, axis::pp, axis::tp};  // listed axes first, outermost first
  int listed = 0;                             // number of axes the user listed

  /// Build from axes listed outermost first (the rest get size 1).
  static constexpr mesh_desc make(std::initializer_list<std::pair<axis, int>> listed_axes) {
    mesh_desc m;
    int n = 0;
    bool used[num_axes] = {false, false, false};
    for (auto [a, s] : listed_axes) {
      m.order[n++] = a;
      m.size[index(a)] = s;
      used[index(a)] = true;
    }
    m.listed = n;
    for (axis a : all_axes)
      if (!used[index(a)]) m.order[n++] = a;
    int st = 1;
    for (int i = num_axes - 1; i >= 0; --i) {
      m.stride[index(m.order[i])] = st;
      st *= m.size[index(m.order[i])];
    }
    return m;
  }

  constexpr int world() const { return size[0] * size[1] * size[2]; }
  constexpr int size_of(axis a) const { return size[index(a)]; }
  constexpr int stride_of(axis a) const { return stride[index(a)]; }
  constexpr int coord(int rank, axis a) const { return (rank / stride[index(a)]) % size[index(a)]; }
  constexpr std::array<int, num_axes> coords(int rank) const {
    return {coord(rank, axis::dp), coord(rank, axis::pp), coord(rank, axis::tp)};
  }
  constexpr int rank_of(const std::array<int, num_axes>& c) const {
    return c[0] * stride[0] + c[1] * stride[1] + c[2] * stride[2];
  }
  /// Number of ranks in a group spanning the axes of S.
  constexpr int group_size(axis_set s) const {
    int n = 1;
    for (axis a : all_axes)
      if (s.contains(a)) n *= size[index(a)];
    return n;
  }
  /// Position of `rank` in its group over S: linear index of its S-coordinates in mesh order.
  constexpr int group_index(int rank, axis_set s) const {
    int idx = 0;
    for (int i = 0; i < num_axes; ++i) {
      const axis a = order[i];
      if (s.contains(a)) idx = idx * size[index(a)] + coord(rank, a);
    }
    return idx;
  }
  /// Identifies the group over S that `rank` belongs to: linear index of its coordinates off S.
  constexpr int group_color(int rank, axis_set s) const {
    int idx = 0;
    for (int i = 0; i < num_axes; ++i) {
      const axis a = order[i];
      if (!s.contains(a)) idx = idx * size[index(a)] + coord(rank, a);
    }
    return idx;
  }
  /// The rank at position `i` of `rank`'s group over S.
  constexpr int group_member(int rank, axis_set s, int i) const {
    std::array<int, num_axes> c = coords(rank);
    for (int k = num_axes - 1; k >= 0; --k) {
      const axis a = order[k];
      if (!s.contains(a)) continue;
      c[index(a)] = i % size[index(a)];
      i /= size[index(a)];
    }
    return rank_of(c);
  }
  friend constexpr bool operator==(const mesh_desc&, const mesh_desc&) = default;
};

namespace detail {
template <axis A, class... Axes>
constexpr int count_axis() {
  return ((Axes::kind == A ? 1 : 0) + ... + 0);
}
}  // namespace detail

/// A device mesh type: `mesh<dp<2>, pp<2>, tp<2>>` (outermost first; tp varies fastest).
template <class... Axes>
struct mesh {
  static_assert((is_mesh_axis_v<Axes> && ...),
                "tessera::mesh: every argument must be a mesh axis: ts::dp<N>, ts::pp<N> or ts::tp<N>");
  static_assert(diag::axis_listed_at_most_once<axis::dp, detail::count_axis<axis::dp, Axes...>()>::value,
                "tessera::mesh: axis dp is listed more than once");
  static_assert(diag::axis_listed_at_most_once<axis::pp, detail::count_axis<axis::pp, Axes...>()>::value,
                "tessera::mesh: axis pp is listed more than once");
  static_assert(diag::axis_listed_at_most_once<axis::tp, detail::count_axis<axis::tp, Axes...>()>::value,
                "tessera::mesh: axis tp is listed more than once");

  static constexpr bool well_formed = (is_mesh_axis_v<Axes> && ...) && sizeof...(Axes) <= num_axes &&
                                      detail::count_axis<axis::dp, Axes...>() <= 1 &&
                                      detail::count_axis<axis::pp, Axes...>() <= 1 &&
                                      detail::count_axis<axis::tp, Axes...>() <= 1;
  // (an ill-formed mesh stops at the static_asserts above without follow-on errors)
  static constexpr mesh_desc desc = [] {
    if constexpr (well_formed) return mesh_desc::make({{Axes::kind, Axes::size}...});
    else return mesh_desc{};
  }();
  static constexpr int world = desc.world();
  static_assert(world <= max_mesh_ranks, "tessera::mesh: more ranks than tessera::max_mesh_ranks");

  static constexpr int size(axis a) { return desc.size_of(a); }
  static constexpr int stride(axis a) { return desc.stride_of(a); }
  static constexpr int coord(int rank, axis a) { return desc.coord(rank, a); }
  static constexpr std::array<int, num_axes> coords(int rank) { return desc.coords(rank); }
  static constexpr int rank_of(const std::array<int, num_axes>& c) { return desc.rank_of(c); }
  static constexpr int group_size(axis_set s) { return desc.group_size(s); }
  static constexpr int group_index(int rank, axis_set s) { return desc.group_index(rank, s); }
  /// The ranks of `rank`'s group over S, in group order.
  static constexpr static_vector<int, world> group(int rank, axis_set s) {
    static_vector<int, world> g;
    const int n = desc.group_size(s);
    for (int i = 0; i < n; ++i) g.push_back(desc.group_member(rank, s, i));
    return g;
  }
};

template <class T> inline constexpr bool is_mesh_v = false;
template <class... A> inline constexpr bool is_mesh_v<mesh<A...>> = true;

}  // namespace tessera
