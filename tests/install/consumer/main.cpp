// Consumer of the installed package: a 2-rank tp mesh, one all-gather through redistribute.
#include <tessera/tessera.hpp>

#include <cstdio>
#include <vector>

namespace ts = tessera;
using mesh = ts::mesh<ts::tp<2>>;

int main(int argc, char** argv) {
  ts::mpi_environment env(argc, argv);
  ts::require_world_size(mesh::world);
  ts::mesh_comms<ts::mpi_comm> comms(ts::mpi_comm::split(MPI_COMM_WORLD, 0, 0), mesh::desc);
  const ts::extents g{4};
  const ts::sharding sharded = ts::sharding{}.with(ts::axis::tp, ts::placement::make_shard(0));
  std::vector<float> mine{float(2 * comms.rank()), float(2 * comms.rank() + 1)}, all(4);
  ts::redistribute(comms, g, sharded, ts::sharding{}, mine.data(), all.data());
  const bool ok = all == std::vector<float>{0, 1, 2, 3};
  if (comms.rank() == 0) std::printf("consumer: %s\n", ok ? "installed tessera works" : "WRONG RESULT");
  return ok ? 0 : 1;
}
