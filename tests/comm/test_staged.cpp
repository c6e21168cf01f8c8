// The staged communicator (comm/staged.hpp) on a fake device's memory: the whole collectives suite on
// every group of every mesh; results bit for bit those of the host communicator on values that round
// (bf16 and fp32 sums); aliasing kept (in place stays in place); only what an operation reads is copied
// in and only what it writes is copied out; byte messages passed through without staging.
#include <doctest/doctest.h>
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "collective_cases.hpp"
#include "fake_device_system.hpp"
#include "tessera/comm/mpi.hpp"
#include "tessera/comm/staged.hpp"

namespace ts = tessera;
using tessera_test::fake_device_buffer;
using tessera_test::fake_device_system;
using staged = ts::staged_comm<ts::mpi_comm, fake_device_system>;
static_assert(ts::communicator<staged>);
// its copies run on the compute stream: callers need not wait for the device first; MPI reads at once
static_assert(ts::orders_after_compute<staged> && !ts::orders_after_compute<ts::mpi_comm>);

namespace {
struct staged_harness {
  using comm = staged;
  static comm make_comm(MPI_Comm c) { return comm(ts::mpi_comm::split(c, 0, 0)); }
  template <class T>
  static fake_device_buffer<T> to_device(const std::vector<T>& v) {
    fake_device_buffer<T> b(v.size());
    std::copy(v.begin(), v.end(), b.data());
    return b;
  }
  template <class T>
  static std::vector<T> to_host(const fake_device_buffer<T>& b) {
    return std::vector<T>(b.data(), b.data() + b.size());
  }
  template <class T>
  static T* data(fake_device_buffer<T>& b) { return b.data(); }
};

std::int64_t staged_bytes() { return fake_device_system::bytes_to_host + fake_device_system::bytes_from_host; }

/// Values whose sums round (in bf16 and in fp32), different on every rank.
template <class T>
std::vector<T> rounding_values(int rank, std::size_t n) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = T(0.1f * float(rank + 1) + 0.37f * float(i) + 1e-3f * float(i * i % 11));
  return v;
}
template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}
}  // namespace

TEST_CASE_TEMPLATE("staged_comm: the collectives suite on every group communicator of every mesh", T, float, ts::bf16) {
  const std::int64_t before = staged_bytes();
  long bad = 0, meshes = 0;
  ts::testing::for_every_mesh<staged_harness>([&](staged& c, const ts::mesh_desc& m) {
    bad += ts::testing::run_collectives<staged_harness, T>(c, m);
    ++meshes;
  });
  CHECK(bad == 0);
  CHECK(meshes > 0);
  CHECK(staged_bytes() > before);  // the data went through the host copies
}

TEST_CASE_TEMPLATE("staged_comm: the host communicator's results bit for bit, where sums round", T, float, ts::bf16) {
  ts::mpi_comm direct = ts::mpi_comm::split(MPI_COMM_WORLD, 0, 0);
  staged via(ts::mpi_comm::split(MPI_COMM_WORLD, 0, 0));
  const int me = direct.rank(), P = direct.size();
  const std::size_t n = 1001;
  const auto part = ts::block_partition::near_equal(static_cast<std::int64_t>(n), P);
  const std::size_t at = static_cast<std::size_t>(part.displ(me));
  {  // all-reduce: in place and out of place, blocking and not
    auto a = rounding_values<T>(me, n), b = a, c = a;
    std::vector<T> out(n);
    direct.all_reduce(a.data(), a.data(), n, ts::reduce_op::sum);
    via.all_reduce(b.data(), b.data(), n, ts::reduce_op::sum);
    CHECK(same_bits(a, b));
    via.all_reduce(c.data(), out.data(), n, ts::reduce_op::sum);
    CHECK(same_bits(a, out));
    c = rounding_values<T>(me, n);
    auto r = via.iall_reduce(c.data(), c.data(), n, ts::reduce_op::sum);
    r.wait();
    CHECK(same_bits(a, c));
  }
  // partitioned reduce-scatter in place (the ZeRO bucket's pattern), then the all-gather back, blocking and
  // not (Open MPI's non-blocking reduce-scatter adds in another order than its blocking one: compare like
  // with like)
  for (bool nonblocking : {false, true}) {
    CAPTURE(nonblocking);
    auto a = rounding_values<T>(me, n), b = a;
    if (nonblocking) {
      direct.ireduce_scatter_v(a.data(), a.data() + at, part).wait();
      via.ireduce_scatter_v(b.data(), b.data() + at, part).wait();
    } else {
      direct.reduce_scatter_v(a.data(), a.data() + at, part);
      via.reduce_scatter_v(b.data(), b.data() + at, part);
    }
    CHECK(std::memcmp(a.data() + at, b.data() + at, static_cast<std::size_t>(part.count(me)) * sizeof(T)) == 0);
    if (nonblocking) {
      direct.iall_gather_v(a.data() + at, a.data(), part).wait();
      via.iall_gather_v(b.data() + at, b.data(), part).wait();
    } else {
      direct.all_gather_v(a.data() + at, a.data(), part);
      via.all_gather_v(b.data() + at, b.data(), part);
    }
    CHECK(same_bits(a, b));
  }
}

TEST_CASE("staged_comm: in place stays in place; only what is read is copied in, only what is written out") {
  staged c(ts::mpi_comm::split(MPI_COMM_WORLD, 0, 0));
  const int me = c.rank(), P = c.size();
  const std::size_t n = 64;
  std::vector<float> v(n, 1.0f);
  auto to0 = fake_device_system::bytes_to_host, from0 = fake_device_system::bytes_from_host;
  c.all_reduce(v.data(), v.data(), n);  // in place: n in, n out
  CHECK(fake_device_system::bytes_to_host - to0 == std::int64_t(n * 4));
  CHECK(fake_device_system::bytes_from_host - from0 == std::int64_t(n * 4));
  CHECK(v[n - 1] == float(P));
  // an all-gather in place reads the own block only and writes the whole buffer
  const auto part = ts::block_partition::near_equal(static_cast<std::int64_t>(n), P);
  std::vector<float> w(n, -1.0f);
  for (int i = 0; i < part.count(me); ++i) w[static_cast<std::size_t>(part.displ(me) + i)] = float(me);
  to0 = fake_device_system::bytes_to_host;
  from0 = fake_device_system::bytes_from_host;
  c.all_gather_v(w.data() + part.displ(me), w.data(), part);
  CHECK(fake_device_system::bytes_to_host - to0 == std::int64_t(part.count(me)) * 4);
  CHECK(fake_device_system::bytes_from_host - from0 == std::int64_t(n * 4));
  for (int r = 0; r < P; ++r) CHECK(w[static_cast<std::size_t>(part.displ(r))] == float(r));
  // a reduction to a root writes on the root only
  std::vector<float> x(n, 2.0f);
  from0 = fake_device_system::bytes_from_host;
  c.reduce(x.data(), x.data(), n, ts::reduce_op::sum, 0);
  CHECK(fake_device_system::bytes_from_host - from0 == (me == 0 ? std::int64_t(n * 4) : 0));
  CHECK(x[0] == (me == 0 ? 2.0f * float(P) : 2.0f));
  // a broadcast reads on the root only and writes on the others
  std::vector<float> y(n, float(me));
  to0 = fake_device_system::bytes_to_host;
  from0 = fake_device_system::bytes_from_host;
  c.broadcast(y.data(), n, 0);
  CHECK(fake_device_system::bytes_to_host - to0 == (me == 0 ? std::int64_t(n * 4) : 0));
  CHECK(fake_device_system::bytes_from_host - from0 == (me == 0 ? 0 : std::int64_t(n * 4)));
  CHECK(y[n - 1] == 0.0f);
}

TEST_CASE("staged_comm: host byte messages pass through unstaged; requests complete once, also when dropped") {
  staged c(ts::mpi_comm::split(MPI_COMM_WORLD, 0, 0));
  const int me = c.rank(), P = c.size();
  const int next = (me + 1) % P, prev = (me + P - 1) % P;
  std::vector<unsigned char> out(100, static_cast<unsigned char>(me)), in(100, 255);
  const std::int64_t before = staged_bytes();
  auto r = c.irecv_bytes(in.data(), in.size(), prev, 5);
  auto s = c.isend_bytes(out.data(), out.size(), next, 5);
  s.wait();
  r.wait();
  r.wait();
  CHECK(staged_bytes() == before);
  CHECK(in[99] == static_cast<unsigned char>(prev));
  // a non-blocking operation's result arrives when its request is destroyed without wait(), too
  std::vector<double> v(10, 1.0);
  { auto dropped = c.iall_reduce(v.data(), v.data(), v.size()); }
  CHECK(v[9] == double(P));
  // moved requests complete once: the moved-to one delivers, the moved-from one does nothing
  std::vector<double> w(10, 1.0);
  auto a = c.iall_reduce(w.data(), w.data(), w.size());
  ts::staged_comm<ts::mpi_comm, fake_device_system>::request b;
  b = std::move(a);
  a.wait();
  b.wait();
  CHECK(w[0] == double(P));
}
