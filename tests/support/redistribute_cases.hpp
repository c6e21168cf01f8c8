// The redistribution suite, shared by the host (MPI) and device (NCCL) tests.
//
// For every mesh with at most as many ranks as the MPI world, every mesh axis, every transition
// (source and target in {R, S(0), S(1), P} on that axis; the other axes in two backgrounds), fp32 and
// bf16, shapes that divide and shapes that don't: the redistributed piece equals a reference computed on
// one rank, every element on every rank. The reference below shares no code with the implementation but
// `local_box_of` (whose tiling contract the layout test checks). Values are small integers, so every
// sum is exact in fp32 and bf16 whatever order the collectives add in.
//
// A Harness provides: `using comm = ...;` `comm make_world_comm(MPI_Comm)`; `to_device(vector<T>)` and
// `to_host(buffer)` moving data to and from the communicator's memory.
#pragma once
#include <doctest/doctest.h>
#include <mpi.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "meshes.hpp"
#include "tessera/comm/mesh_comms.hpp"
#include "tessera/comm/redistribute.hpp"

namespace tessera::testing {

inline std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
/// Global tensor value: an integer in [-8, 8].
inline double global_value(std::int64_t g, std::uint64_t seed) { return double(int(mix(g * 131 + seed) % 17) - 8); }

inline std::int64_t linear(const extents& shape, const std::int64_t* idx) {
  std::int64_t l = 0;
  for (int d = 0; d < shape.rank; ++d) l = l * shape[d] + idx[d];
  return l;
}

/// Visits every index of `shape` (row-major), calling f(idx, linear).
template <class F>
void for_each_index(const extents& shape, F f) {
  const std::int64_t n = shape.numel();
  std::int64_t idx[max_tensor_rank] = {0, 0, 0, 0};
  for (std::int64_t l = 0; l < n; ++l) {
    std::int64_t r = l;
    for (int d = shape.rank - 1; d >= 0; --d) {
      idx[d] = r % shape[d];
      r /= shape[d];
    }
    f(idx, l);
  }
}

/// The reference local piece of global tensor `seed` on the rank at `coords` under sharding s, in
/// doubles. Partial axes split each value into integer summands that add up to it exactly.
inline std::vector<double> reference_local(const mesh_desc& m, const sharding& s, const extents& global,
                                           const std::array<int, num_axes>& coords, std::uint64_t seed) {
  const local_box b = local_box_of(m, s, global, coords);
  std::vector<double> out(static_cast<std::size_t>(b.padded.numel()), 0.0);
  for_each_index(b.padded, [&](const std::int64_t* j, std::int64_t l) {
    std::int64_t g[max_tensor_rank];
    for (int d = 0; d < global.rank; ++d) {
      if (j[d] >= b.valid[d]) return;  // padding stays zero
      g[d] = b.offset[d] + j[d];
    }
    const std::int64_t gl = linear(global, g);
    double v = global_value(gl, seed);
    int level = 0;
    for (axis a : all_axes) {
      if (!s[a].is_partial()) continue;
      const int k = m.size_of(a), c = coords[index(a)];
      auto h = [&](int cc) { return double(int(mix(gl * 977 + cc * 31 + level * 7 + seed) % 5) - 2); };
      if (c < k - 1) {
        v = h(c);
      } else {
        for (int cc = 0; cc < k - 1; ++cc) v -= h(cc);
      }
      ++level;
    }
    out[static_cast<std::size_t>(l)] = v;
  });
  return out;
}

/// Reference for one step on axis a (cur[a] → to), computed on one rank from every group member's
/// input piece. Naive: embed pieces into the parent box, sum, slice.
inline std::vector<double> reference_step(const mesh_desc& m, const sharding& cur, axis a, placement to,
                                          const extents& global, const std::array<int, num_axes>& coords,
                                          std::uint64_t seed, float scale_dtype_roundtrip(float)) {
  const int k = m.size_of(a), me = coords[index(a)];
  const placement from = cur[a];
  const sharding next = cur.with(a, to);
  const local_box ib = local_box_of(m, cur, global, coords);
  const local_box ob = local_box_of(m, next, global, coords);
  // parent box: the input shape with the dims a shards (before/after) restored to their parent extent
  const sharding unsplit = cur.with(a, placement::make_replicate());
  const extents pshape = local_box_of(m, unsplit, global, coords).padded;
  auto member_in = [&](int j) {
    auto c = coords;
    c[index(a)] = j;
    return reference_local(m, cur, global, c, seed);
  };
  // embed member j's piece into the parent box (shards go to rows j·p)
  auto embed = [&](const std::vector<double>& piece, int j) {
    std::vector<double> full(static_cast<std::size_t>(pshape.numel()), 0.0);
    for_each_index(ib.padded, [&](const std::int64_t* i, std::int64_t l) {
      std::int64_t t[max_tensor_rank] = {i[0], i[1], i[2], i[3]};
      if (from.is_shard()) {
        t[from.dim] += j * ib.padded[from.dim];
        if (t[from.dim] >= pshape[from.dim]) return;
      }
      full[static_cast<std::size_t>(linear(pshape, t))] += piece[static_cast<std::size_t>(l)];
    });
    return full;
  };
  // slice my rows of a parent-box tensor along `to`'s dim
  auto slice = [&](const std::vector<double>& full) {
    std::vector<double> out(static_cast<std::size_t>(ob.padded.numel()), 0.0);
    for_each_index(ob.padded, [&](const std::int64_t* i, std::int64_t l) {
      std::int64_t t[max_tensor_rank] = {i[0], i[1], i[2], i[3]};
      if (to.is_shard()) {
        t[to.dim] += me * ob.padded[to.dim];
        if (t[to.dim] >= pshape[to.dim]) return;
      }
      out[static_cast<std::size_t>(l)] = full[static_cast<std::size_t>(linear(pshape, t))];
    });
    return out;
  };
  std::vector<double> full(static_cast<std::size_t>(pshape.numel()), 0.0);
  if (from.is_partial() && to.is_partial()) return member_in(me);
  if (from.is_partial()) {  // all-reduce / reduce-scatter: sum every member's parent-box piece
    for (int j = 0; j < k; ++j) {
      const auto e = embed(member_in(j), j);
      for (std::size_t i = 0; i < full.size(); ++i) full[i] += e[i];
    }
  } else if (from.is_shard() && !(to.is_shard() && to.dim == from.dim)) {  // gather my group's shards
    for (int j = 0; j < k; ++j) {
      const auto e = embed(member_in(j), j);
      for (std::size_t i = 0; i < full.size(); ++i) full[i] += e[i];
    }
    if (to.is_partial()) full = embed(member_in(me), me);  // pad: only my rows
  } else {
    full = embed(member_in(me), me);
  }
  std::vector<double> out = (to.is_shard() && !(from.is_shard() && from.dim == to.dim)) ? slice(full)
                            : (from.is_shard() && to.is_shard())                       ? member_in(me)
                                                                                        : full;
  if (from.is_replicate() && to.is_partial())
    for (double& v : out) v = scale_dtype_roundtrip(static_cast<float>(v) * (1.0f / static_cast<float>(k)));
  return out;
}

template <class T>
float roundtrip(float x) {
  return static_cast<float>(T(x));
}

inline const placement basic_placements[] = {placement::make_replicate(), placement::make_shard(0),
                                             placement::make_shard(1), placement::make_partial()};

struct suite_stats {
  long steps = 0, compares = 0, mismatches = 0;
};

/// Runs redistribute on the reference input (moved to the harness' memory) and compares with `expect`;
/// returns the number of differing elements and the first one's index.
template <class Harness, class T, class Comms>
std::pair<long, std::size_t> run_and_compare(Comms& comms, const extents& g, const sharding& src, const sharding& dst,
                                             const std::vector<double>& in_ref, const std::vector<double>& expect,
                                             suite_stats& st) {
  std::vector<T> in_host(in_ref.size());
  for (std::size_t i = 0; i < in_ref.size(); ++i) in_host[i] = T(static_cast<float>(in_ref[i]));
  auto in_dev = Harness::to_device(in_host);
  auto out_dev = Harness::to_device(std::vector<T>(expect.size(), T(-99.0f)));  // poison: every element must be written
  redistribute(comms, g, src, dst, Harness::data(in_dev), Harness::data(out_dev));
  const std::vector<T> out = Harness::to_host(out_dev);
  ++st.steps;
  long bad = 0;
  std::size_t first = 0;
  for (std::size_t i = 0; i < expect.size(); ++i, ++st.compares)
    if (static_cast<float>(out[i]) != static_cast<float>(expect[i]) && !bad++) first = i;
  st.mismatches += bad;
  return {bad, first};
}

/// Runs every single-axis transition on mesh m for dtype T; returns counts.
template <class Harness, class T>
void run_single_steps(typename Harness::comm& sub, const mesh_desc& m, suite_stats& st) {
  mesh_comms<typename Harness::comm> comms(sub, m);
  const auto coords = comms.coords();
  const extents shapes[] = {{8, 12}, {5, 7}, {3, 2}};
  std::uint64_t case_no = 0;  // seeds must agree on every rank of the mesh
  // backgrounds for the other two axes: all replicate, and "others shard dim 1 / partial"
  for (int bg = 0; bg < 2; ++bg)
    for (axis a : all_axes)
      for (placement from : basic_placements)
        for (placement to : basic_placements)
          for (const extents& g : shapes) {
            sharding cur;
            if (bg == 1) {
              // the other axes: the first partial, the second shards a dimension this step leaves alone
              const bool touches0 = (from.is_shard() && from.dim == 0) || (to.is_shard() && to.dim == 0);
              const bool touches1 = (from.is_shard() && from.dim == 1) || (to.is_shard() && to.dim == 1);
              const placement second = !touches1   ? placement::make_shard(1)
                                       : !touches0 ? placement::make_shard(0)
                                                   : placement::make_replicate();
              int n_other = 0;
              for (axis b : all_axes)
                if (b != a) cur = cur.with(b, n_other++ == 0 ? placement::make_partial() : second);
            }
            cur = cur.with(a, from);
            const sharding next = cur.with(a, to);
            if (!step_is_legal(m, cur, a, to)) continue;
            const std::uint64_t seed = 1000u * case_no++ + 17u;
            const auto in_ref = reference_local(m, cur, g, coords, seed);
            const auto expect = reference_step(m, cur, a, to, g, coords, seed, &roundtrip<T>);
            const auto [bad, first] = run_and_compare<Harness, T>(comms, g, cur, next, in_ref, expect, st);
            if (bad)
              FAIL_CHECK("mesh dp", m.size[0], " pp", m.size[1], " tp", m.size[2], " axis ", axis_name(a), " ",
                         to_string(cur), " -> ", to_string(next), " shape ", to_string(g), " dtype ",
                         std::string(dtype_name(dtype_v<T>)), ": ", bad, " of ", expect.size(), " elements differ; first at ", first,
                         ", expected ", expect[first]);
          }
}

/// Whole redistributions: any source (with partial sums) to any target without partial sums equals the
/// global tensor's box, exactly.
template <class Harness, class T>
void run_full_redistributions(typename Harness::comm& sub, const mesh_desc& m, suite_stats& st) {
  mesh_comms<typename Harness::comm> comms(sub, m);
  const auto coords = comms.coords();
  const extents g{7, 6};
  std::uint64_t case_no = 0;  // seeds must agree on every rank of the mesh
  const placement targets[] = {placement::make_replicate(), placement::make_shard(0), placement::make_shard(1)};
  for (int si = 0; si < 64; ++si)
    for (int ti = 0; ti < 27; ti += 1) {
      sharding src, dst;
      src.on = {basic_placements[si % 4], basic_placements[(si / 4) % 4], basic_placements[si / 16]};
      dst.on = {targets[ti % 3], targets[(ti / 3) % 3], targets[ti / 9]};
      if (!plan_redistribution(m, src, dst).ok) continue;
      const std::uint64_t seed = 7u * case_no++ + 3u;
      const auto in_ref = reference_local(m, src, g, coords, seed);
      const auto expect = reference_local(m, dst, g, coords, seed);
      const auto [bad, first] = run_and_compare<Harness, T>(comms, g, src, dst, in_ref, expect, st);
      if (bad)
        FAIL_CHECK("mesh dp", m.size[0], " pp", m.size[1], " tp", m.size[2], " ", to_string(src), " -> ",
                   to_string(dst), ": ", bad, " elements differ, first at ", first);
    }
}

/// Runs `body(sub_comm, mesh)` for every mesh of at most world-size ranks, on the first ranks.
template <class Harness, class Body>
void for_every_mesh(Body body) {
  int world = 0, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  for (int w = 1; w <= world; ++w) {
    MPI_Comm sub = MPI_COMM_NULL;
    MPI_Comm_split(MPI_COMM_WORLD, rank < w ? 0 : MPI_UNDEFINED, rank, &sub);
    if (sub == MPI_COMM_NULL) continue;
    {
      typename Harness::comm c = Harness::make_comm(sub);
      for (const mesh_desc& m : meshes_with_world(w)) body(c, m);
    }
    MPI_Comm_free(&sub);
  }
}

}  // namespace tessera::testing
