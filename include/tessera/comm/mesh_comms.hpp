// tessera/comm/mesh_comms.hpp — one communicator per mesh axis and per combination of axes.
//
// For every axis set S (dp, pp, tp, dp+pp, dp+tp, pp+tp, all, and the empty set) the ranks that share
// their coordinates off S form a group; the group's communicator orders its ranks by group_index, so
// `along(S).rank() == mesh.group_index(rank, S)` and the communicator ranks match `mesh::group`.
// Works for any communicator with `split(color, key)`: mpi_comm, nccl_comm.
#pragma once
#include <array>
#include <string>
#include <utility>

#include "tessera/comm/communicator.hpp"
#include "tessera/core/error.hpp"
#include "tessera/layout/mesh.hpp"

namespace tessera {

template <collective_communicator C>
class mesh_comms {
 public:
  using comm_type = C;
  using system = typename C::system;

  /// Collective over `parent`, whose size must equal the mesh's world size.
  mesh_comms(const C& parent, const mesh_desc& m) : mesh_(m), rank_(parent.rank()) {
    check(parent.size() == m.world(), "tessera: mesh needs ", m.world(), " ranks, communicator has ", parent.size());
    for (unsigned bits = 0; bits < num_axis_sets; ++bits) {
      const axis_set s = axis_set::from_bits(bits);
      comms_[bits] = parent.split(m.group_color(rank_, s), m.group_index(rank_, s));
      if constexpr (requires(C& c) { c.set_label(std::string()); }) comms_[bits].set_label(label_of(s));
    }
  }
  /// "dp", "pp+tp", "world", "self": how the flight recorder names the communicator of S.
  static std::string label_of(axis_set s) {
    if (s == axes::all) return "world";
    if (s.empty()) return "self";
    std::string l;
    for (axis a : all_axes) {
      if (!s.contains(a)) continue;
      if (!l.empty()) l += '+';
      l += axis_name(a);
    }
    return l;
  }

  const mesh_desc& mesh() const { return mesh_; }
  int rank() const { return rank_; }
  std::array<int, num_axes> coords() const { return mesh_.coords(rank_); }
  int coord(axis a) const { return mesh_.coord(rank_, a); }
  C& along(axis_set s) { return comms_[s.bits]; }
  C& world() { return comms_[axes::all.bits]; }
  /// Every group communicator orders itself with `compute` (comm/communicator.hpp's bind_compute).
  template <class System>
  void bind_compute(const System& compute) {
    for (C& c : comms_) tessera::bind_compute(c, compute);
  }

 private:
  mesh_desc mesh_;
  int rank_ = 0;
  std::array<C, num_axis_sets> comms_;
};

}  // namespace tessera
