// The collectives suite, shared by the host (MPI) and device (NCCL) tests: every operation of the
// communicator concept on every group communicator of every mesh up to the world size, fp32 and bf16,
// against values computed on one rank. Values are small integers, so sums are exact in any order.
#pragma once
#include <doctest/doctest.h>
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "meshes.hpp"
#include "redistribute_cases.hpp"
#include "tessera/comm/mesh_comms.hpp"

namespace tessera::testing {

/// Value of element i held by group member r before a collective.
inline float member_value(int r, std::int64_t i, int salt) { return float(int(mix(r * 7919 + i * 31 + salt) % 9) - 4); }

template <class Harness, class T>
long check_collectives(typename Harness::comm& group, const mesh_desc& m, axis_set s, int world_rank) {
  long bad = 0;
  const int k = group.size(), me = group.rank();
  CHECK(k == m.group_size(s));
  CHECK(me == m.group_index(world_rank, s));
  auto expect_eq = [&](const std::vector<T>& got, const std::vector<float>& want, const char* what) {
    long b = 0;
    for (std::size_t i = 0; i < want.size(); ++i)
      if (static_cast<float>(got[i]) != want[i]) ++b;
    if (b) FAIL_CHECK(what, ": ", b, " of ", want.size(), " differ (group size ", k, ", set bits ", int(s.bits), ")");
    bad += b;
  };
  auto fill_host = [&](int r, std::size_t n, int salt) {
    std::vector<T> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = T(member_value(r, static_cast<std::int64_t>(i), salt));
    return v;
  };
  const std::size_t n = 37;
  for (reduce_op op : {reduce_op::sum, reduce_op::max}) {  // all-reduce, out of place and in place
    std::vector<float> want(n);
    for (std::size_t i = 0; i < n; ++i) {
      float acc = op == reduce_op::sum ? 0.0f : -1e30f;
      for (int r = 0; r < k; ++r) {
        const float v = member_value(r, static_cast<std::int64_t>(i), 1);
        acc = op == reduce_op::sum ? acc + v : (v > acc ? v : acc);
      }
      want[i] = acc;
    }
    auto a = Harness::to_device(fill_host(me, n, 1));
    auto b = Harness::to_device(std::vector<T>(n));
    group.all_reduce(Harness::data(a), Harness::data(b), n, op);
    expect_eq(Harness::to_host(b), want, "all_reduce");
    tessera::all_reduce(group, Harness::data(a), Harness::data(a), n, op);  // in place, through the CPO
    expect_eq(Harness::to_host(a), want, "all_reduce in place");
  }
  {  // reduce-scatter: block me of the sum
    auto a = Harness::to_device(fill_host(me, n * k, 2));
    auto b = Harness::to_device(std::vector<T>(n));
    group.reduce_scatter(Harness::data(a), Harness::data(b), n, reduce_op::sum);
    std::vector<float> want(n, 0.0f);
    for (std::size_t i = 0; i < n; ++i)
      for (int r = 0; r < k; ++r) want[i] += member_value(r, static_cast<std::int64_t>(me * n + i), 2);
    expect_eq(Harness::to_host(b), want, "reduce_scatter");
  }
  {  // all-gather
    auto a = Harness::to_device(fill_host(me, n, 3));
    auto b = Harness::to_device(std::vector<T>(n * k));
    group.all_gather(Harness::data(a), Harness::data(b), n);
    std::vector<float> want(n * k);
    for (int r = 0; r < k; ++r)
      for (std::size_t i = 0; i < n; ++i) want[r * n + i] = member_value(r, static_cast<std::int64_t>(i), 3);
    expect_eq(Harness::to_host(b), want, "all_gather");
  }
  for (int root = 0; root < k; ++root) {  // broadcast from every root
    auto a = Harness::to_device(fill_host(me, n, 4 + root));
    group.broadcast(Harness::data(a), n, root);
    std::vector<float> want(n);
    for (std::size_t i = 0; i < n; ++i) want[i] = member_value(root, static_cast<std::int64_t>(i), 4 + root);
    expect_eq(Harness::to_host(a), want, "broadcast");
  }
  {  // all-to-all: block j of member r's send goes to member j
    auto a = Harness::to_device(fill_host(me, n * k, 5));
    auto b = Harness::to_device(std::vector<T>(n * k));
    group.all_to_all(Harness::data(a), Harness::data(b), n);
    std::vector<float> want(n * k);
    for (int r = 0; r < k; ++r)
      for (std::size_t i = 0; i < n; ++i) want[r * n + i] = member_value(r, static_cast<std::int64_t>(me * n + i), 5);
    expect_eq(Harness::to_host(b), want, "all_to_all");
  }
  {  // batched point-to-point: two messages to the next member and from the previous one, as in a
     // pipeline's forward activations and backward gradients going opposite ways
    const int next = (me + 1) % k, prev = (me + k - 1) % k;
    auto s1 = Harness::to_device(fill_host(me, n, 6));
    auto s2 = Harness::to_device(fill_host(me, n + 3, 7));
    auto r1 = Harness::to_device(std::vector<T>(n));
    auto r2 = Harness::to_device(std::vector<T>(n + 3));
    const p2p_op ops[] = {p2p_send(next, Harness::data(s1), n), p2p_recv(prev, Harness::data(r1), n),
                          p2p_send(prev, Harness::data(s2), n + 3), p2p_recv(next, Harness::data(r2), n + 3)};
    tessera::exchange(group, std::span<const p2p_op>(ops));
    std::vector<float> w1(n), w2(n + 3);
    for (std::size_t i = 0; i < n; ++i) w1[i] = member_value(prev, static_cast<std::int64_t>(i), 6);
    for (std::size_t i = 0; i < n + 3; ++i) w2[i] = member_value(next, static_cast<std::int64_t>(i), 7);
    expect_eq(Harness::to_host(r1), w1, "exchange (to next)");
    expect_eq(Harness::to_host(r2), w2, "exchange (to previous)");
  }
  tessera::barrier(group);
  return bad;
}

template <class Harness, class T>
long run_collectives(typename Harness::comm& sub, const mesh_desc& m) {
  mesh_comms<typename Harness::comm> comms(sub, m);
  long bad = 0;
  for (unsigned bits = 0; bits < num_axis_sets; ++bits) {
    const axis_set s = axis_set::from_bits(bits);
    bad += check_collectives<Harness, T>(comms.along(s), m, s, comms.rank());
  }
  return bad;
}

}  // namespace tessera::testing
