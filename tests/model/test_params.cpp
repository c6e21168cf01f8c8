// tests/model: for_each_element, the one iteration over a slot's pieces of global tensors, against a
// brute-force enumeration over every coordinate of the tensor, for boxes anywhere in a slot and every
// window of global rows and columns.
#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "tessera/model/params.hpp"

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
