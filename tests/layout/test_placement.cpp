// Placements, shard shapes and the transition table.
#include <doctest/doctest.h>

#include <vector>

#include "meshes.hpp"
#include "tessera/layout/shard_shape.hpp"
#include "tessera/layout/requirements.hpp"
#include "tessera/layout/transition.hpp"

namespace ts = tessera;

// The table, as stated in the issue, usable in static_assert.
using R = ts::replicate;
using P = ts::partial;
static_assert(ts::transition(P::value, R::value) == ts::collective::all_reduce);
static_assert(ts::transition(P::value, ts::shard<0>::value) == ts::collective::reduce_scatter);
static_assert(ts::transition(ts::shard<1>::value, R::value) == ts::collective::all_gather);
static_assert(ts::transition(ts::shard<0>::value, ts::shard<1>::value) == ts::collective::all_to_all);
static_assert(ts::transition(ts::shard<1>::value, ts::shard<1>::value) == ts::collective::none);
static_assert(ts::transition(R::value, ts::shard<0>::value) == ts::collective::local_slice);
static_assert(ts::transition(R::value, P::value) == ts::collective::local_scale);
static_assert(ts::transition(ts::shard<0>::value, P::value) == ts::collective::local_pad);
// backward = transpose
static_assert(ts::transition_with_backward(P::value, R::value).backward == ts::collective::all_reduce);
static_assert(ts::transition_with_backward(P::value, ts::shard<0>::value).backward == ts::collective::all_gather);
static_assert(ts::transition_with_backward(ts::shard<0>::value, R::value).backward == ts::collective::reduce_scatter);
static_assert(ts::transition_with_backward(R::value, ts::shard<0>::value).backward == ts::collective::local_pad);
static_assert(ts::transition_with_backward(R::value, P::value).backward == ts::collective::local_scale);
// type-level sharding
using spec = ts::placements<ts::on<ts::axis::tp, ts::shard<1>>, ts::on<ts::axis::dp, P>>;
static_assert(spec::value[ts::axis::tp] == ts::placement::make_shard(1));
static_assert(spec::value[ts::axis::dp].is_partial() && spec::value[ts::axis::pp].is_replicate());
// shard shapes at compile time: 10 rows over tp4 → 3,3,3,1 (padded to 3)
constexpr auto m4 = ts::mesh_desc::make({{ts::axis::tp, 4}});
constexpr ts::sharding row_split = ts::sharding{}.with(ts::axis::tp, ts::placement::make_shard(0));
static_assert(ts::local_box_of(m4, row_split, {10, 2}, {0, 0, 3}).padded[0] == 3);
static_assert(ts::local_box_of(m4, row_split, {10, 2}, {0, 0, 3}).valid[0] == 1);
static_assert(ts::local_box_of(m4, row_split, {10, 2}, {0, 0, 3}).offset[0] == 9);
static_assert(ts::local_box_of(m4, row_split, {2, 2}, {0, 0, 3}).valid[0] == 0);  // more ranks than rows

TEST_CASE("shard shapes: the valid boxes of every mesh tile every global tensor exactly once") {
  const ts::placement ps[] = {ts::placement::make_replicate(), ts::placement::make_shard(0),
                              ts::placement::make_shard(1), ts::placement::make_shard(2)};
  const ts::extents shapes[] = {{8, 6, 4}, {7, 5, 3}, {1, 9, 2}, {3, 2, 11}};
  long tiles = 0;
  for (const ts::mesh_desc& m : ts::testing::meshes_up_to(8))
    for (int sp = 0; sp < 64; ++sp) {
      ts::sharding s;
      s.on = {ps[sp % 4], ps[(sp / 4) % 4], ps[sp / 16]};
      for (const ts::extents& g : shapes) {
        // count, per global element, how many ranks hold it among the ranks with coordinate 0 on the
        // replicated axes: must be exactly one
        std::vector<int> hits(static_cast<std::size_t>(g.numel()), 0);
        for (int r = 0; r < m.world(); ++r) {
          const auto c = m.coords(r);
          bool rep_zero = true;
          for (ts::axis a : ts::all_axes)
            if (!s[a].is_shard() && c[ts::index(a)] != 0) rep_zero = false;
          const ts::local_box b = ts::local_box_of(m, s, g, c);
          for (int d = 0; d < 3; ++d) {
            CHECK(b.valid[d] <= b.padded[d]);
            CHECK((b.valid[d] == 0 || b.offset[d] + b.valid[d] <= g[d]));
          }
          // every rank of a group stores the same padded shape
          CHECK(b.padded == ts::local_box_of(m, s, g, m.coords(0)).padded);
          if (!rep_zero) continue;
          for (std::int64_t i = 0; i < b.valid[0]; ++i)
            for (std::int64_t j = 0; j < b.valid[1]; ++j)
              for (std::int64_t k = 0; k < b.valid[2]; ++k)
                ++hits[static_cast<std::size_t>(((b.offset[0] + i) * g[1] + b.offset[1] + j) * g[2] + b.offset[2] + k)];
        }
        bool once = true;
        for (int h : hits) once = once && h == 1;
        CHECK_MESSAGE(once, "mesh dp", m.size[0], " pp", m.size[1], " tp", m.size[2], " ", ts::to_string(s), " ",
                      ts::to_string(g));
        ++tiles;
      }
    }
  CHECK(tiles > 10000);
}


TEST_CASE("requirements: divisibility, at compile time and at run time") {
  using m = ts::mesh<ts::dp<2>, ts::tp<4>>;
  static_assert(ts::require_divisible<ts::quantity::heads, 8, m, ts::axis::tp>());
  ts::check_divisible(ts::quantity::heads, 8, m::desc, ts::axis::tp);
  CHECK_THROWS_WITH_AS(ts::check_divisible(ts::quantity::heads, 6, m::desc, ts::axis::tp),
                       "tessera: heads (6) not divisible by tp (4)", ts::usage_error);
}
