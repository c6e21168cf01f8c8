// Tutorial 1 — a mesh, a sharded tensor, and a placement change. Built and run (4 ranks) by CTest.
//
//   mpirun -np 4 ./tutorial_01
#include <tessera/tessera.hpp>

#include <cstdio>
#include <vector>

namespace ts = tessera;

// [mesh] Two data-parallel replicas, each split over two tensor-parallel ranks; tp varies fastest.
using mesh = ts::mesh<ts::dp<2>, ts::tp<2>>;
static_assert(mesh::world == 4);
static_assert(mesh::coords(3) == std::array<int, 3>{1, 0, 1});  // {dp, pp, tp}
static_assert(mesh::group(3, ts::axes::tp)[0] == 2);            // rank 3's tp partner is rank 2
// [mesh]

// [placements] A weight sharded by columns over tp, replicated over dp; its gradient, before the
// data-parallel reduction, is partial over dp.
constexpr ts::sharding weight = ts::placements<ts::on<ts::axis::tp, ts::shard<1>>>::value;
constexpr ts::sharding grad = ts::placements<ts::on<ts::axis::tp, ts::shard<1>>, ts::on<ts::axis::dp, ts::partial>>::value;
static_assert(ts::transition(grad[ts::axis::dp], weight[ts::axis::dp]) == ts::collective::all_reduce);
// [placements]

int main(int argc, char** argv) {
  ts::mpi_environment env(argc, argv);
  ts::require_world_size(mesh::world);  // exit 2: "mesh needs 4 ranks, MPI world has N"
  ts::mesh_comms<ts::mpi_comm> comms(ts::mpi_comm::split(MPI_COMM_WORLD, 0, 0), mesh::desc);

  // [redistribute] A [3 x 5] gradient: each rank holds 3 x 3 columns (5 over 2 pads to 3), partial
  // over dp. One call sums it over dp (all-reduce), then the tp shards are gathered (all-gather).
  const ts::extents shape{3, 5};
  std::vector<float> g(static_cast<std::size_t>(ts::local_numel(comms, shape, grad)));
  const ts::local_box box = ts::local_box_of(mesh::desc, grad, shape, comms.coords());
  for (std::int64_t i = 0; i < box.valid[0]; ++i)
    for (std::int64_t j = 0; j < box.valid[1]; ++j)
      g[static_cast<std::size_t>(i * box.padded[1] + j)] = float(i * 5 + box.offset[1] + j);  // same on both dp ranks
  std::vector<float> full(15);
  ts::redistribute(comms, shape, grad, ts::sharding{}, g.data(), full.data());
  // [redistribute]

  bool ok = true;
  for (int k = 0; k < 15; ++k) ok = ok && full[static_cast<std::size_t>(k)] == 2.0f * float(k);  // two dp summands
  if (comms.rank() == 0) std::printf("tutorial 1: %s\n", ok ? "the gathered gradient is 2x the tensor" : "WRONG");
  return ok ? 0 : 1;
}
