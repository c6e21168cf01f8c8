// The comm layer in one process: block_partition's contract over every (total, parts), the loopback
// communicator's operations, and the consensus helpers written against the concept.
#include <doctest/doctest.h>

#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "tessera/comm/consensus.hpp"
#include "tessera/comm/loopback.hpp"
#include "tessera/comm/mesh_comms.hpp"

namespace ts = tessera;

TEST_CASE("block_partition::near_equal: contiguous blocks in rank order, sizes differ by at most one") {
  for (int parts = 1; parts <= 9; ++parts)
    for (std::int64_t total = 0; total <= 40; ++total) {
      const auto p = ts::block_partition::near_equal(total, parts);
      REQUIRE(p.parts() == parts);
      CHECK(p.total() == total);
      CHECK(p.displ(0) == 0);
      int lo = p.count(0), hi = p.count(0);
      for (int r = 0; r < parts; ++r) {
        if (r + 1 < parts) CHECK(p.displ(r + 1) == p.displ(r) + p.count(r));
        CHECK(p.count(r) == total / parts + (r < total % parts ? 1 : 0));  // the first total % parts get one more
        lo = std::min(lo, p.count(r));
        hi = std::max(hi, p.count(r));
      }
      CHECK(hi - lo <= 1);
      CHECK(p.largest() == hi);
    }
  CHECK_THROWS_AS(ts::block_partition::near_equal(5, 0), std::runtime_error);
  CHECK_THROWS_AS(ts::block_partition::near_equal(std::int64_t{1} << 40, 2), std::runtime_error);
}

TEST_CASE("loopback_comm: collectives of one rank are copies, in place is a no-op") {
  ts::loopback_comm c;
  CHECK(c.size() == 1);
  CHECK(c.rank() == 0);
  const std::vector<float> a{1, 2, 3, 4};
  std::vector<float> b(4, 0);
  c.all_reduce(a.data(), b.data(), 4, ts::reduce_op::sum);
  CHECK(b == a);
  std::fill(b.begin(), b.end(), 0.0f);
  ts::all_gather(c, a.data(), b.data(), 4);
  CHECK(b == a);
  std::fill(b.begin(), b.end(), 0.0f);
  auto r = c.iall_reduce(a.data(), b.data(), 4, ts::reduce_op::sum);
  r.wait();
  CHECK(b == a);
  const auto p = ts::block_partition::near_equal(4, 1);
  std::vector<float> d = a;
  c.ireduce_scatter_v(d.data(), d.data(), p).wait();  // in place
  CHECK(d == a);
  std::vector<float> e(4, 0);
  c.all_gather_v(a.data(), e.data(), p);
  CHECK(e == a);
  CHECK_THROWS_AS(c.all_gather_v(a.data(), e.data(), ts::block_partition::near_equal(4, 2)), std::runtime_error);
  CHECK(ts::all_reduce_value(c, 2.5, ts::reduce_op::max) == 2.5);
  CHECK_THROWS_AS(c.broadcast(b.data(), 4, 1), std::runtime_error);
}

TEST_CASE("loopback_comm: tagged messages to itself arrive in order per tag; a receive without a send is an error") {
  ts::loopback_comm c;
  const std::vector<float> x{1, 2}, y{3, 4};
  c.send(x.data(), 2, 0, 5);
  c.send(y.data(), 2, 0, 5);
  c.send(y.data(), 1, 0, 9);
  CHECK(c.unreceived() == 3);
  std::vector<float> got(2);
  c.recv(got.data(), 1, 0, 9);
  CHECK(got[0] == 3);
  c.recv(got.data(), 2, 0, 5);
  CHECK(got == x);
  c.recv(got.data(), 2, 0, 5);
  CHECK(got == y);
  CHECK(c.unreceived() == 0);
  CHECK_THROWS_AS(c.recv(got.data(), 2, 0, 5), std::runtime_error);
  c.send(x.data(), 2, 0, 1);
  CHECK_THROWS_AS(c.recv(got.data(), 1, 0, 1), std::runtime_error);  // size mismatch
  // batched exchange with itself
  std::vector<float> in(2, 0);
  const ts::p2p_op ops[] = {ts::p2p_send(0, y.data(), 2), ts::p2p_recv(0, in.data(), 2)};
  ts::exchange(c, ops);
  CHECK(in == y);
}

TEST_CASE("loopback_comm: split, mesh_comms of a 1-rank mesh, and the consensus helpers") {
  ts::loopback_comm c;
  CHECK(c.split(0, 0).valid());
  CHECK(!c.split(ts::no_color, 0).valid());
  ts::mesh_comms<ts::loopback_comm> mc(c, ts::mesh_desc{});
  CHECK(mc.along(ts::axes::dp).size() == 1);
  CHECK(ts::first_error(c, "") == "");
  CHECK(ts::first_error(c, "disk full") == "disk full");
  CHECK(ts::broadcast_string(c, "hello", 0) == "hello");
  const auto all = ts::gather_strings(c, "record", 0);
  REQUIRE(all.size() == 1);
  CHECK(all[0] == "record");
  std::vector<ts::loopback_request> rs(3);
  ts::wait_all(rs);
  CHECK(rs.empty());
}
