// Every mesh of a given world size: all factorizations over dp, pp, tp and all listing orders
// (orders that only move size-1 axes are skipped: they lay ranks out the same way).
#pragma once
#include <set>
#include <tuple>
#include <vector>

#include "tessera/layout/mesh.hpp"

namespace tessera::testing {

inline std::vector<mesh_desc> meshes_with_world(int world) {
  std::vector<mesh_desc> out;
  std::set<std::tuple<int, int, int, int, int, int>> seen;  // sizes and strides
  const axis perms[6][3] = {{axis::dp, axis::pp, axis::tp}, {axis::dp, axis::tp, axis::pp},
                            {axis::pp, axis::dp, axis::tp}, {axis::pp, axis::tp, axis::dp},
                            {axis::tp, axis::dp, axis::pp}, {axis::tp, axis::pp, axis::dp}};
  for (int a = 1; a <= world; ++a)
    for (int b = 1; a * b <= world; ++b) {
      if (world % (a * b)) continue;
      const int c = world / (a * b);
      for (auto& p : perms) {
        // list only the axes of size > 1 (in this order), so equivalent meshes coincide
        std::vector<std::pair<axis, int>> listed;
        const int sz[3] = {a, b, c};
        for (int i = 0; i < 3; ++i)
          if (sz[i] > 1) listed.push_back({p[i], sz[i]});
        mesh_desc m;
        if (listed.size() == 0) m = mesh_desc::make({});
        else if (listed.size() == 1) m = mesh_desc::make({listed[0]});
        else if (listed.size() == 2) m = mesh_desc::make({listed[0], listed[1]});
        else m = mesh_desc::make({listed[0], listed[1], listed[2]});
        auto key = std::tuple{m.size[0], m.size[1], m.size[2], m.stride[0], m.stride[1], m.stride[2]};
        if (seen.insert(key).second) out.push_back(m);
      }
    }
  return out;
}

inline std::vector<mesh_desc> meshes_up_to(int world) {
  std::vector<mesh_desc> out;
  for (int w = 1; w <= world; ++w)
    for (const mesh_desc& m : meshes_with_world(w)) out.push_back(m);
  return out;
}

}  // namespace tessera::testing
