// tests/model: for_each_element, the one iteration over a slot's pieces of global tensors, against a
// brute-force enumeration over every coordinate of the tensor, for boxes anywhere in a slot and every
// window of global rows and columns; and the tp slots, whose pieces are the layout layer's local_box_of.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <tuple>

#include "tessera/model/params.hpp"

namespace ts = tessera;

TEST_CASE("for_each_element visits exactly the box ∩ window, row by row, at the slot's index") {
  const std::int64_t R = 7, C = 5, slot_cols = 9;
  const tessera::box boxes[] = {{0, 0, 0, R, C, 0, 0}, {0, 2, 1, 3, 4, 4, 5}, {0, 6, 0, 1, 5, 0, 2}, {0, 3, 3, 0, 2, 1, 1}};
  for (const tessera::box& b : boxes)
    for (std::int64_t r0 = -1; r0 <= R; ++r0)
      for (std::int64_t r1 = r0; r1 <= R + 1; r1 += 2)
        for (std::int64_t c0 = 0; c0 <= C; c0 += 2)
          for (std::int64_t c1 = c0; c1 <= C + 1; ++c1) {
            std::map<std::pair<std::int64_t, std::int64_t>, std::size_t> want;
            for (std::int64_t r = 0; r < R; ++r)
              for (std::int64_t c = 0; c < C; ++c)
                if (r >= b.g_row && r < b.g_row + b.rows && c >= b.g_col && c < b.g_col + b.cols && r >= r0 && r < r1 &&
                    c >= c0 && c < c1)
                  want[{r, c}] = static_cast<std::size_t>((b.l_row + r - b.g_row) * slot_cols + b.l_col + c - b.g_col);
            std::map<std::pair<std::int64_t, std::int64_t>, std::size_t> got;
            std::tuple<std::int64_t, std::int64_t> last{-1, -1};
            bool ordered = true;
            tessera::for_each_element(b, slot_cols, tessera::global_range{r0, r1, c0, c1},
                                      [&](std::int64_t r, std::int64_t c, std::size_t at) {
                                        ordered = ordered && std::tuple(r, c) > last;
                                        last = {r, c};
                                        CHECK(got.emplace(std::pair(r, c), at).second);  // once each
                                      });
            CHECK(ordered);
            CHECK(got == want);
          }
  int n = 0;
  tessera::for_each_element(boxes[1], slot_cols, [&](std::int64_t, std::int64_t, std::size_t) { ++n; });
  CHECK(n == 3 * 4);
}

TEST_CASE("Megatron's splits are tp placements: every tensor's pieces over the tp ranks tile it exactly once") {
  using namespace tessera::slot_detail;
  ts::model_desc m;
  m.vocab = 96;
  m.seq = 8;
  m.layers = 1;
  m.hidden = 16;
  m.heads = 4;
  m.kv_heads = 2;
  m.head_dim = 4;
  m.ffn = 32;
  m.bias = true;
  const ts::model_tensors mt = ts::make_model_tensors(m, 96);
  for (int tp : {1, 2, 4}) {
    for (const auto& g : mt.tensors) {
      const int id = mt.find(g.name);
      for (const ts::placement p : {ts::placement::make_shard(0), ts::placement::make_shard(1), ts::placement::make_replicate()}) {
        if (p.is_shard() && (p.dim == 0 ? g.rows : g.cols) % tp != 0) continue;
        std::vector<int> seen(static_cast<std::size_t>(g.rows * g.cols), 0);
        for (int t = 0; t < tp; ++t) {
          const ts::box b = tp_box(mt, id, p, t, tp);
          CHECK(b.tensor == id);
          for (std::int64_t r = b.g_row; r < b.g_row + b.rows; ++r)
            for (std::int64_t c = b.g_col; c < b.g_col + b.cols; ++c) ++seen[static_cast<std::size_t>(r * g.cols + c)];
        }
        const int want = p.is_replicate() ? tp : 1;
        CHECK(std::all_of(seen.begin(), seen.end(), [&](int k) { return k == want; }));
      }
    }
    for (int t = 0; t < tp; ++t) {  // the fused q|k|v slot: each tensor's rows t·n/tp.. stacked in order
      const auto s = row_shards(mt, "qkv", {"layers.0.attn.q.weight", "layers.0.attn.k.weight", "layers.0.attn.v.weight"}, t, tp);
      REQUIRE(s.boxes.size() == 3);
      CHECK(s.boxes[0].g_row == t * 16 / tp);
      CHECK(s.boxes[1].l_row == 16 / tp);
      CHECK(s.boxes[2].l_row == 16 / tp + 8 / tp);
      CHECK(s.rows == (16 + 8 + 8) / tp);
      const auto o = col_shard(mt, "layers.0.attn.o.weight", t, tp);
      CHECK(o.boxes[0].g_col == t * 16 / tp);
      CHECK(o.cols == 16 / tp);
    }
  }
}
