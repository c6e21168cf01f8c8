// What the trainer asks of a communicator, on MPI at every world size: non-blocking all-reduce equal to
// the blocking one bit for bit, partitioned reduce-scatter/all-gather (in place and not, blocking and
// not), gathers and reductions to a root, scalar reductions, tagged point-to-point, and the consensus
// helpers; the same operations through staged_comm on a fake device's memory. Values are small integers,
// so every sum is exact and every rank can predict every result.
#include <doctest/doctest.h>
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fake_device_system.hpp"
#include "tessera/comm/consensus.hpp"
#include "tessera/comm/mpi.hpp"
#include "tessera/comm/staged.hpp"

namespace ts = tessera;
/// The same operations through the staged communicator, on a fake device's memory (comm/staged.hpp).
using staged_fake = ts::staged_comm<ts::mpi_comm, tessera_test::fake_device_system>;
static_assert(ts::communicator<staged_fake>);

namespace {
template <class C = ts::mpi_comm>
C world() {
  if constexpr (std::is_same_v<C, ts::mpi_comm>) return ts::mpi_comm::split(MPI_COMM_WORLD, 0, 0);
  else return C(ts::mpi_comm::split(MPI_COMM_WORLD, 0, 0));
}
/// Rank r's contribution to element i.
float value(int r, std::int64_t i) { return static_cast<float>((r + 1) * 3 + i % 7); }
float summed(int size, std::int64_t i) {
  float s = 0;
  for (int r = 0; r < size; ++r) s += value(r, i);
  return s;
}
}  // namespace

TEST_CASE_TEMPLATE("mpi_comm: iall_reduce equals all_reduce bit for bit", T, float, ts::bf16) {
  ts::mpi_comm c = world();
  std::vector<T> a(1000), b(1000);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = b[i] = T(0.1f * static_cast<float>(c.rank() + 1) + 0.37f * i);
  c.all_reduce(a.data(), a.data(), a.size(), ts::reduce_op::sum);
  auto r = c.iall_reduce(b.data(), b.data(), b.size(), ts::reduce_op::sum);
  r.wait();
  r.wait();  // a second wait does nothing
  long bad = 0;
  for (std::size_t i = 0; i < a.size(); ++i) bad += static_cast<float>(a[i]) != static_cast<float>(b[i]);
  CHECK(bad == 0);
}

TEST_CASE_TEMPLATE("mpi_comm and staged_comm: partitioned reduce-scatter and all-gather, in place and not, blocking and not", C, ts::mpi_comm, staged_fake) {
  C c = world<C>();
  const int P = c.size(), me = c.rank();
  for (std::int64_t total : {std::int64_t{0}, std::int64_t{1}, std::int64_t{P - 1}, std::int64_t{37}, std::int64_t{1001}}) {
    CAPTURE(total);
    const auto part = ts::block_partition::near_equal(total, P);
    const std::int64_t at = part.displ(me), n = part.count(me);
    std::vector<float> buf(static_cast<std::size_t>(total));
    auto fill = [&] {
      for (std::int64_t i = 0; i < total; ++i) buf[static_cast<std::size_t>(i)] = value(me, i);
    };
    auto mine_reduced = [&](const float* got) {
      long bad = 0;
      for (std::int64_t i = 0; i < n; ++i) bad += got[i] != summed(P, at + i);
      return bad;
    };
    // in place, non-blocking: the block lands at its own offset when the request completes
    fill();
    auto r = c.ireduce_scatter_v(buf.data(), buf.data() + at, part);
    r.wait();
    CHECK(mine_reduced(buf.data() + at) == 0);
    // in place, blocking
    fill();
    c.reduce_scatter_v(buf.data(), buf.data() + at, part);
    CHECK(mine_reduced(buf.data() + at) == 0);
    // out of place, blocking
    fill();
    std::vector<float> out(static_cast<std::size_t>(n) + 1);
    c.reduce_scatter_v(buf.data(), out.data(), part);
    CHECK(mine_reduced(out.data()) == 0);
    // all-gather of every rank's block: in place non-blocking, then out of place blocking
    std::vector<float> whole(static_cast<std::size_t>(total), -1.0f);
    for (std::int64_t i = 0; i < n; ++i) whole[static_cast<std::size_t>(at + i)] = value(me, at + i);
    c.iall_gather_v(whole.data() + at, whole.data(), part).wait();
    long bad = 0;
    for (int r2 = 0; r2 < P; ++r2)
      for (std::int64_t i = part.displ(r2); i < part.displ(r2) + part.count(r2); ++i)
        bad += whole[static_cast<std::size_t>(i)] != value(r2, i);
    CHECK(bad == 0);
    std::vector<float> mine(static_cast<std::size_t>(n) + 1), again(static_cast<std::size_t>(total) + 1, -1.0f);
    for (std::int64_t i = 0; i < n; ++i) mine[static_cast<std::size_t>(i)] = value(me, at + i);
    c.all_gather_v(mine.data(), again.data(), part);
    bad = 0;
    for (std::int64_t i = 0; i < total; ++i) bad += again[static_cast<std::size_t>(i)] != whole[static_cast<std::size_t>(i)];
    CHECK(bad == 0);
    // gather_v to the last rank
    std::vector<float> at_root(static_cast<std::size_t>(total) + 1, -1.0f);
    c.gather_v(mine.data(), me == P - 1 ? at_root.data() : nullptr, part, P - 1);
    if (me == P - 1) {
      bad = 0;
      for (std::int64_t i = 0; i < total; ++i) bad += at_root[static_cast<std::size_t>(i)] != whole[static_cast<std::size_t>(i)];
      CHECK(bad == 0);
    }
  }
}

TEST_CASE_TEMPLATE("mpi_comm and staged_comm: gather, reduce to a root (in place), scalar reductions", C, ts::mpi_comm, staged_fake) {
  C c = world<C>();
  const int P = c.size(), me = c.rank();
  std::vector<float> row{value(me, 0), value(me, 1)}, all(static_cast<std::size_t>(2 * P));
  c.gather(row.data(), all.data(), 2, 0);
  if (me == 0)
    for (int r = 0; r < P; ++r) {
      CHECK(all[static_cast<std::size_t>(2 * r)] == value(r, 0));
      CHECK(all[static_cast<std::size_t>(2 * r + 1)] == value(r, 1));
    }
  std::vector<float> v(5);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = value(me, static_cast<std::int64_t>(i));
  c.reduce(v.data(), v.data(), v.size(), ts::reduce_op::sum, 0);
  if (me == 0)
    for (std::size_t i = 0; i < v.size(); ++i) CHECK(v[i] == summed(P, static_cast<std::int64_t>(i)));
  CHECK(ts::all_reduce_value(c, std::int32_t{me}, ts::reduce_op::min) == 0);
  CHECK(ts::all_reduce_value(c, std::int64_t{me}, ts::reduce_op::max) == P - 1);
  CHECK(ts::all_reduce_value(c, 0.5, ts::reduce_op::sum) == 0.5 * P);
}

TEST_CASE_TEMPLATE("mpi_comm and staged_comm: tagged point-to-point around a ring, in order per tag", C, ts::mpi_comm, staged_fake) {
  C c = world<C>();
  const int P = c.size(), me = c.rank();
  if (P == 1) return;  // no peer
  const int next = (me + 1) % P, prev = (me + P - 1) % P;
  const std::vector<ts::bf16> first{ts::bf16(float(me)), ts::bf16(1.0f)}, second{ts::bf16(float(me)), ts::bf16(2.0f)};
  std::vector<ts::bf16> got(2);
  if (me % 2 == 0) {
    c.send(first.data(), 2, next, 11);
    c.send(second.data(), 2, next, 11);
  }
  for (int k = 1; k <= 2; ++k) {
    c.recv(got.data(), 2, prev, 11);
    CHECK(static_cast<float>(got[0]) == float(prev));
    CHECK(static_cast<float>(got[1]) == float(k));
  }
  if (me % 2 == 1) {
    c.send(first.data(), 2, next, 11);
    c.send(second.data(), 2, next, 11);
  }
}

TEST_CASE("consensus on MPI: the lowest failing rank's error reaches everyone; strings gather in rank order") {
  ts::mpi_comm c = world();
  const int P = c.size(), me = c.rank();
  CHECK(ts::first_error(c, "") == "");
  const std::string err = me >= P / 2 ? "rank " + std::to_string(me) + " failed" : "";
  CHECK(ts::first_error(c, err) == "rank " + std::to_string(P / 2) + " failed");
  CHECK(ts::broadcast_string(c, me == P - 1 ? "from the last" : "", P - 1) == "from the last");
  const auto all = ts::gather_strings(c, std::string(static_cast<std::size_t>(me), 'x'), 0);
  if (me == 0) {
    REQUIRE(all.size() == static_cast<std::size_t>(P));
    for (int r = 0; r < P; ++r) CHECK(all[static_cast<std::size_t>(r)] == std::string(static_cast<std::size_t>(r), 'x'));
  } else {
    CHECK(all.empty());
  }
}
