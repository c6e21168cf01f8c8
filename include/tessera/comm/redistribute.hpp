// tessera/comm/redistribute.hpp — change a tensor's placements by running the transition table.
//
// `redistribute(comms, global, src, dst, in, out)` turns the local piece `in` of a tensor with global
// shape `global` and sharding `src` into the local piece `out` under sharding `dst`. Each mesh axis
// whose placement changes is one step, performing `transition(src[a], dst[a])` on the communicator
// of that axis; `plan_redistribution` orders the steps (constexpr, usable in static_assert).
//
// Buffers hold the *padded* local shape of shard_shape.hpp; padding is zero on input and on output.
// A step on axis a that shards or unshards dimension d requires that no axis inner to a (later in
// mesh order) shards d at that moment — the planner orders steps so, or reports why it cannot.
// Partial placements are sums; a `partial` created from `replicate` divides by the group size.
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "tessera/comm/communicator.hpp"
#include "tessera/comm/mesh_comms.hpp"
#include "tessera/core/box.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/static_vector.hpp"
#include "tessera/layout/shard_shape.hpp"
#include "tessera/layout/transition.hpp"

namespace tessera {

struct redistribution_step {
  axis ax;
  placement from;
  placement to;
  collective op;
};

struct redistribution_plan {
  static_vector<redistribution_step, num_axes> steps;
  bool ok = true;
};

/// Is the single-axis change cur[a] → to legal now? (no inner axis shards a dimension it touches)
constexpr bool step_is_legal(const mesh_desc& m, const sharding& cur, axis a, placement to) {
  const placement from = cur[a];
  const int pos = order_pos(m, a);
  for (int i = pos + 1; i < num_axes; ++i) {
    const placement q = cur[m.order[i]];
    if (!q.is_shard() || m.size_of(m.order[i]) == 1) continue;
    if ((from.is_shard() && q.dim == from.dim) || (to.is_shard() && q.dim == to.dim)) return false;
  }
  return true;
}

/// Orders the per-axis steps from src to dst; `ok` is false when no order is legal.
constexpr redistribution_plan plan_redistribution(const mesh_desc& m, const sharding& src, const sharding& dst) {
  // Axes that change, in mesh order; try every order of them (at most 3! = 6).
  axis changing[num_axes]{};
  int n = 0;
  for (int i = 0; i < num_axes; ++i)
    if (!(src[m.order[i]] == dst[m.order[i]])) changing[n++] = m.order[i];
  int perm[num_axes] = {0, 1, 2};
  // Prefer inner-first (gathers must happen innermost first), then the other orders.
  const int orders[6][3] = {{2, 1, 0}, {0, 1, 2}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {0, 2, 1}};
  for (const auto& o : orders) {
    int k = 0;
    for (int i = 0; i < num_axes; ++i)
      if (o[i] < n) perm[k++] = o[i];
    if (k != n) continue;
    redistribution_plan p;
    sharding cur = src;
    bool legal = true;
    for (int i = 0; i < n && legal; ++i) {
      const axis a = changing[perm[i]];
      if (!step_is_legal(m, cur, a, dst[a])) {
        legal = false;
        break;
      }
      p.steps.push_back({a, cur[a], dst[a], transition(cur[a], dst[a])});
      cur = cur.with(a, dst[a]);
    }
    if (legal) return p;
  }
  redistribution_plan bad;
  bad.ok = false;
  return bad;
}

namespace detail {
inline idx4 to_idx4(const extents& x) {
  idx4 r{{1, 1, 1, 1}};
  for (int d = 0; d < x.rank; ++d) r.v[d] = x[d];
  return r;
}
inline idx4 with_dim(idx4 x, int d, std::int64_t v) {
  x.v[d] = v;
  return x;
}
inline idx4 at_dim(int d, std::int64_t v) {
  idx4 r{};
  r.v[d] = v;
  return r;
}
inline std::int64_t clamp_rows(std::int64_t n, std::int64_t start, std::int64_t p) {
  const std::int64_t left = n - start;
  return left < 0 ? 0 : (left < p ? left : p);
}
}  // namespace detail

/// One step: placement on axis `a` changes from cur[a] to `to`, on the group communicator `c`.
/// `in` has the padded local shape under `cur`, `out` under cur.with(a, to).
template <class C, class T>
void redistribute_step(C& c, const mesh_desc& m, const std::array<int, num_axes>& coords, const extents& global,
                       const sharding& cur, axis a, placement to, const T* in, T* out) {
  using S = typename C::system;
  const S sys{};  // outside a step: the system's default value (core/host_system.hpp)
  using detail::clamp_rows;
  using detail::with_dim;
  const placement from = cur[a];
  const sharding next = cur.with(a, to);
  const idx4 ishape = detail::to_idx4(local_box_of(m, cur, global, coords).padded);
  const idx4 oshape = detail::to_idx4(local_box_of(m, next, global, coords).padded);
  const std::int64_t in_n = ishape.numel(), out_n = oshape.numel();
  const int k = m.size_of(a);
  const int me = coords[index(a)];
  const idx4 zero{};
  // Parent (pre-split) padded extent along dimension d for axis a, and the per-rank piece.
  auto parent = [&](int d) { return split_extent(m, cur.with(a, placement::make_replicate()), global[d], d, order_pos(m, a)); };

  switch (transition(from, to)) {
    case collective::none:
      if (in != out) copy_box(sys, in, ishape, zero, out, oshape, zero, ishape);
      return;
    case collective::local_scale:
      copy_box(sys, in, ishape, zero, out, oshape, zero, ishape, 1.0f / static_cast<float>(k));
      return;
    case collective::local_slice: {  // R → S(d): keep my rows
      const int d = to.dim;
      const std::int64_t n = parent(d), p = oshape[d], rows = clamp_rows(n, me * p, p);
      sys.fill(out, out_n, T(0.0f));
      copy_box(sys, in, ishape, detail::at_dim(d, me * p), out, oshape, zero, with_dim(ishape, d, rows));
      return;
    }
    case collective::local_pad: {  // S(d) → P: my rows in place, zeros elsewhere
      const int d = from.dim;
      const std::int64_t n = parent(d), p = ishape[d], rows = clamp_rows(n, me * p, p);
      sys.fill(out, out_n, T(0.0f));
      copy_box(sys, in, ishape, zero, out, oshape, detail::at_dim(d, me * p), with_dim(ishape, d, rows));
      return;
    }
    case collective::all_reduce:
      c.all_reduce(in, out, static_cast<std::size_t>(out_n), reduce_op::sum);
      return;
    case collective::all_gather: {  // S(d) → R
      const int d = from.dim;
      const std::int64_t n = parent(d), p = ishape[d];
      typename S::template buffer<T> stage(static_cast<std::size_t>(in_n * k));
      T* st = S::data(stage);
      c.all_gather(in, st, static_cast<std::size_t>(in_n));
      for (int j = 0; j < k; ++j)
        copy_box(sys, st + j * in_n, ishape, zero, out, oshape, detail::at_dim(d, j * p),
                    with_dim(ishape, d, clamp_rows(n, j * p, p)));
      return;
    }
    case collective::reduce_scatter: {  // P → S(d)
      const int d = to.dim;
      const std::int64_t n = parent(d), p = oshape[d];
      typename S::template buffer<T> stage(static_cast<std::size_t>(out_n * k));
      T* st = S::data(stage);
      sys.fill(st, out_n * k, T(0.0f));
      for (int j = 0; j < k; ++j)
        copy_box(sys, in, ishape, detail::at_dim(d, j * p), st + j * out_n, oshape, zero,
                    with_dim(oshape, d, clamp_rows(n, j * p, p)));
      c.reduce_scatter(st, out, static_cast<std::size_t>(out_n), reduce_op::sum);
      return;
    }
    case collective::all_to_all: {  // S(d1) → S(d2)
      const int d1 = from.dim, d2 = to.dim;
      const std::int64_t n1 = parent(d1), n2 = parent(d2), p1 = ishape[d1], p2 = oshape[d2];
      const idx4 block = with_dim(ishape, d2, p2);  // = oshape with d1 := p1
      const std::int64_t bn = block.numel();
      typename S::template buffer<T> send(static_cast<std::size_t>(bn * k)), recv(static_cast<std::size_t>(bn * k));
      T* sb = S::data(send);
      T* rb = S::data(recv);
      sys.fill(sb, bn * k, T(0.0f));
      for (int j = 0; j < k; ++j)
        copy_box(sys, in, ishape, detail::at_dim(d2, j * p2), sb + j * bn, block, zero,
                    with_dim(block, d2, clamp_rows(n2, j * p2, p2)));
      c.all_to_all(sb, rb, static_cast<std::size_t>(bn));
      sys.fill(out, out_n, T(0.0f));
      for (int j = 0; j < k; ++j)
        copy_box(sys, rb + j * bn, block, zero, out, oshape, detail::at_dim(d1, j * p1),
                    with_dim(block, d1, clamp_rows(n1, j * p1, p1)));
      return;
    }
  }
}

/// Number of elements of the padded local piece of `global` under `s` on this rank.
template <class Comms>
std::int64_t local_numel(const Comms& comms, const extents& global, const sharding& s) {
  return local_box_of(comms.mesh(), s, global, comms.coords()).padded.numel();
}

/// Redistributes `in` (sharding src) into `out` (sharding dst). Collective over the mesh.
template <class Comms, class T>
void redistribute(Comms& comms, const extents& global, const sharding& src, const sharding& dst, const T* in, T* out) {
  using S = typename Comms::system;
  const S sys{};  // outside a step: the system's default value (core/host_system.hpp)
  const mesh_desc& m = comms.mesh();
  check_sharding(src, global, "redistribute source");
  check_sharding(dst, global, "redistribute target");
  const redistribution_plan plan = plan_redistribution(m, src, dst);
  check(plan.ok, "tessera::redistribute: no legal order of steps from ", to_string(src), " to ", to_string(dst),
        " for a tensor ", to_string(global), ": a dimension sharded by two axes must be gathered inner axis first");
  const auto coords = comms.coords();
  if (plan.steps.empty()) {
    const std::int64_t n = local_box_of(m, src, global, coords).padded.numel();
    if (in != out) copy_box(sys, in, idx4{{n, 1, 1, 1}}, idx4{}, out, idx4{{n, 1, 1, 1}}, idx4{}, idx4{{n, 1, 1, 1}});
    return;
  }
  typename S::template buffer<T> tmp[2];
  const T* cur_in = in;
  sharding cur = src;
  for (std::size_t i = 0; i < plan.steps.size(); ++i) {
    const redistribution_step& st = plan.steps[i];
    const sharding next = cur.with(st.ax, st.to);
    T* dst_ptr = out;
    if (i + 1 < plan.steps.size()) {
      tmp[i % 2].resize(static_cast<std::size_t>(local_box_of(m, next, global, coords).padded.numel()));
      dst_ptr = S::data(tmp[i % 2]);
    }
    redistribute_step(comms.along(st.ax), m, coords, global, cur, st.ax, st.to, cur_in, dst_ptr);
    cur_in = dst_ptr;
    cur = next;
  }
}

}  // namespace tessera
