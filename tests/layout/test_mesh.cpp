// Mesh contract, over every rank of every mesh up to 8 ranks (all axis orders, all factorizations).
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "meshes.hpp"
#include "tessera/layout/mesh.hpp"

namespace ts = tessera;

// Compile-time: the contract's example mesh.
using m3d = ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>;
static_assert(m3d::world == 8);
static_assert(m3d::stride(ts::axis::tp) == 1 && m3d::stride(ts::axis::pp) == 2 && m3d::stride(ts::axis::dp) == 4);
static_assert(m3d::coords(5) == std::array<int, 3>{1, 0, 1});
static_assert(m3d::group(5, ts::axes::tp).size() == 2 && m3d::group(5, ts::axes::tp)[0] == 4 &&
              m3d::group(5, ts::axes::tp)[1] == 5);
static_assert(m3d::group(5, ts::axes::dp)[0] == 1 && m3d::group(5, ts::axes::dp)[1] == 5);
static_assert(m3d::group(5, ts::axis::dp | ts::axis::tp).size() == 4);
using m_tp_first = ts::mesh<ts::tp<4>, ts::dp<2>>;  // tp outermost: tp ranks are 2 apart
static_assert(m_tp_first::stride(ts::axis::tp) == 2 && m_tp_first::size(ts::axis::pp) == 1);
static_assert(m_tp_first::group(3, ts::axes::tp)[0] == 1 && m_tp_first::group(3, ts::axes::tp)[3] == 7);
using m_empty = ts::mesh<>;
static_assert(m_empty::world == 1 && m_empty::group(0, ts::axes::all).size() == 1);

using tessera::testing::meshes_with_world;

TEST_CASE("mesh: rank <-> coordinates and groups, every mesh up to 8 ranks") {
  int checked = 0;
  for (int world = 1; world <= 8; ++world)
    for (const ts::mesh_desc& m : meshes_with_world(world)) {
      REQUIRE(m.world() == world);
      for (int r = 0; r < world; ++r) {
        CHECK(m.rank_of(m.coords(r)) == r);
        for (ts::axis a : ts::all_axes) CHECK((m.coord(r, a) >= 0 && m.coord(r, a) < m.size_of(a)));
        for (unsigned bits = 0; bits < 8; ++bits) {
          const ts::axis_set s = ts::axis_set::from_bits(bits);
          const int n = m.group_size(s);
          std::vector<int> g;
          for (int i = 0; i < n; ++i) g.push_back(m.group_member(r, s, i));
          // ascending, contains r at group_index, shares coordinates off S, same color exactly within the group
          CHECK(std::is_sorted(g.begin(), g.end()));
          CHECK(g[m.group_index(r, s)] == r);
          for (int q = 0; q < world; ++q) {
            bool same_off_s = true;
            for (ts::axis a : ts::all_axes)
              if (!s.contains(a) && m.coord(q, a) != m.coord(r, a)) same_off_s = false;
            const bool in_g = std::find(g.begin(), g.end(), q) != g.end();
            CHECK(in_g == same_off_s);
            CHECK((m.group_color(q, s) == m.group_color(r, s)) == same_off_s);
          }
          ++checked;
        }
      }
    }
  CHECK(checked > 1000);
}

TEST_CASE("mesh: the last listed axis varies fastest") {
  const auto m = ts::mesh_desc::make({{ts::axis::dp, 2}, {ts::axis::pp, 2}, {ts::axis::tp, 2}});
  for (int r = 0; r < 8; ++r) {
    CHECK(m.coord(r, ts::axis::tp) == r % 2);
    CHECK(m.coord(r, ts::axis::pp) == (r / 2) % 2);
    CHECK(m.coord(r, ts::axis::dp) == r / 4);
  }
}
