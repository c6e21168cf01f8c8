// MPI collectives on host memory: every operation on every group of every mesh; groups match the
// constexpr mesh algebra (checked with MPI_Group_translate_ranks).
#include <doctest/doctest.h>
#include <mpi.h>

#include <vector>

#include "collective_cases.hpp"
#include "host_harness.hpp"
#include "tessera/comm/mpi.hpp"

namespace ts = tessera;
using namespace tessera::testing;

TEST_CASE_TEMPLATE("collectives: every operation on every group communicator", T, float, ts::bf16) {
  long bad = 0, meshes = 0;
  for_every_mesh<host_harness>([&](ts::mpi_comm& c, const ts::mesh_desc& m) {
    bad += run_collectives<host_harness, T>(c, m);
    ++meshes;
  });
  CHECK(bad == 0);
  CHECK(meshes > 0);
}

TEST_CASE("collectives: group communicators hold exactly mesh::group's ranks, in order") {
  for_every_mesh<host_harness>([&](ts::mpi_comm& c, const ts::mesh_desc& m) {
    ts::mesh_comms<ts::mpi_comm> comms(c, m);
    MPI_Group parent_group;
    MPI_Comm_group(c.native(), &parent_group);
    for (unsigned bits = 0; bits < ts::num_axis_sets; ++bits) {
      const ts::axis_set s = ts::axis_set::from_bits(bits);
      ts::mpi_comm& g = comms.along(s);
      MPI_Group grp;
      MPI_Comm_group(g.native(), &grp);
      std::vector<int> mine(static_cast<std::size_t>(g.size())), theirs(mine.size());
      for (int i = 0; i < g.size(); ++i) mine[static_cast<std::size_t>(i)] = i;
      MPI_Group_translate_ranks(grp, g.size(), mine.data(), parent_group, theirs.data());
      for (int i = 0; i < g.size(); ++i) CHECK(theirs[static_cast<std::size_t>(i)] == m.group_member(c.rank(), s, i));
      MPI_Group_free(&grp);
    }
    MPI_Group_free(&parent_group);
  });
}

TEST_CASE("collectives: bf16 sums round once per addition, like NCCL") {
  ts::mpi_comm w = ts::mpi_comm::split(MPI_COMM_WORLD, 0, 0);
  // 1 + 2^-8 is not representable in bf16 (7 mantissa bits): each rank adds 2^-9 to 1 → stays 1 when
  // rounded per addition to nearest-even, whatever the order.
  std::vector<ts::bf16> v(5, ts::bf16(w.rank() == 0 ? 1.0f : 0.001953125f));
  w.all_reduce(v.data(), v.data(), v.size(), ts::reduce_op::sum);
  const float got = static_cast<float>(v[0]);
  CHECK(got >= 1.0f);
  CHECK(got <= 1.0f + 0.0078125f * float(w.size()));
}
