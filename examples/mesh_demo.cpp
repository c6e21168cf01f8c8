// mesh_demo — the foundation at work across 8 MPI ranks: a dp2 × pp2 × tp2 mesh, its groups, and
// every placement transition of the table performed on a real tensor, each checked against the
// global tensor after gathering it back.
//
//   mpirun -np 8 ./mesh_demo            (scripts/main.sh builds and runs it)
#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "tessera/tessera.hpp"

namespace ts = tessera;
using mesh = ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>;

// Compile-time facts about the mesh a plan would check.
static_assert(mesh::world == 8);
static_assert(mesh::group(5, ts::axes::tp)[0] == 4, "tp partners are adjacent ranks");
static_assert(ts::transition(ts::partial::value, ts::replicate::value) == ts::collective::all_reduce);

int main(int argc, char** argv) {
  ts::mpi_environment env(argc, argv);
  ts::require_world_size(mesh::world);  // "mesh needs 8 ranks, MPI world has N", exit 2

  ts::mpi_comm world = ts::mpi_comm::split(MPI_COMM_WORLD, 0, 0);
  ts::mesh_comms<ts::mpi_comm> comms(world, mesh::desc);
  const int rank = comms.rank();

  if (rank == 0) {
    std::printf("tessera %d.%d.%d — mesh dp2 × pp2 × tp2 (%d ranks, tp fastest)\n\n", TS_VERSION_MAJOR,
                TS_VERSION_MINOR, TS_VERSION_PATCH, mesh::world);
    std::printf("rank  dp pp tp   tp-group  pp-group  dp-group\n");
    for (int r = 0; r < mesh::world; ++r) {
      const auto c = mesh::coords(r);
      auto g = [&](ts::axis_set s) {
        std::string out;
        for (int q : mesh::group(r, s)) out += std::to_string(q) + " ";
        return out;
      };
      std::printf("%4d  %2d %2d %2d   %-9s %-9s %-9s\n", r, c[0], c[1], c[2], g(ts::axes::tp).c_str(),
                  g(ts::axes::pp).c_str(), g(ts::axes::dp).c_str());
    }
    std::printf("\nEvery transition on every axis of a [13 x 10] fp32 tensor (sizes that do not divide):\n");
    std::printf("%-4s %-6s %-6s %-16s %10s %8s\n", "axis", "from", "to", "collective", "time (us)", "check");
  }

  const ts::extents global{13, 10};
  const ts::placement ps[] = {ts::placement::make_replicate(), ts::placement::make_shard(0),
                              ts::placement::make_shard(1), ts::placement::make_partial()};
  auto value = [](std::int64_t i) { return float(int(i % 7) - 3); };
  int failures = 0;
  for (ts::axis a : ts::all_axes)
    for (ts::placement from : ps)
      for (ts::placement to : ps) {
        const ts::sharding src = ts::sharding{}.with(a, from), dst = ts::sharding{}.with(a, to);
        // Build my piece of the tensor under `src` by redistributing the replicated tensor (partial: the
        // first rank of the group holds the value, the others zero).
        std::vector<float> full(static_cast<std::size_t>(global.numel()));
        for (std::size_t i = 0; i < full.size(); ++i) full[i] = value(static_cast<std::int64_t>(i));
        if (from.is_partial() && comms.coord(a) != 0) std::fill(full.begin(), full.end(), 0.0f);
        std::vector<float> in(static_cast<std::size_t>(ts::local_numel(comms, global, src)));
        const ts::sharding rep{};
        if (from.is_partial()) in = full;
        else ts::redistribute(comms, global, rep, src, full.data(), in.data());

        std::vector<float> out(static_cast<std::size_t>(ts::local_numel(comms, global, dst)));
        MPI_Barrier(MPI_COMM_WORLD);
        const double t0 = MPI_Wtime();
        ts::redistribute(comms, global, src, dst, in.data(), out.data());
        const double us = (MPI_Wtime() - t0) * 1e6;

        // Check: gather back to replicate; must equal the global tensor on every rank.
        std::vector<float> back(full.size());
        ts::redistribute(comms, global, dst, rep, out.data(), back.data());
        int bad = 0;
        for (std::size_t i = 0; i < back.size(); ++i)
          if (std::fabs(back[i] - value(static_cast<std::int64_t>(i))) > 1e-5f) ++bad;
        MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        failures += bad != 0;
        if (rank == 0)
          std::printf("%-4s %-6s %-6s %-16s %10.1f %8s\n", std::string(ts::axis_name(a)).c_str(),
                      ts::to_string(from).c_str(), ts::to_string(to).c_str(),
                      std::string(ts::collective_name(ts::transition(from, to))).c_str(), us, bad ? "FAIL" : "ok");
      }
  if (rank == 0) std::printf("\n%s\n", failures ? "SOME TRANSITIONS FAILED" : "all 48 transitions reproduce the tensor");
  return failures ? 1 : 0;
}
