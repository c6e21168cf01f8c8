// bench/allreduce — tessera's all-reduce next to raw MPI_Allreduce on the same buffers.
//
//   mpirun -np 8 ./bench_allreduce [--iters N] [--max-mib M]
// For each size: warm-up, then the three variants alternate (raw MPI_Allreduce on MPI_COMM_WORLD,
// tessera::all_reduce on the mesh's world communicator, tessera::redistribute partial → replicate);
// medians of per-call times; bus bandwidth 2(n−1)/n·bytes/t; ratio = raw time / tessera time (≥ 0.95 is
// the goal: the wrapper adds nothing measurable).
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <vector>

#include "tessera/tessera.hpp"

namespace ts = tessera;

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int main(int argc, char** argv) {
  ts::mpi_environment env(argc, argv);
  CLI::App app{"tessera all-reduce vs raw MPI_Allreduce"};
  int iters = 30;
  int max_mib = 16;
  app.add_option("--iters", iters, "timed calls per variant and size")->check(CLI::PositiveNumber);
  app.add_option("--max-mib", max_mib, "largest message in MiB")->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : ts::usage_exit_code;
  }
  const int world = env.size(), rank = env.rank();
  const ts::mesh_desc m = ts::mesh_desc::make({{ts::axis::dp, world}});
  ts::mesh_comms<ts::mpi_comm> comms(ts::mpi_comm::split(MPI_COMM_WORLD, 0, 0), m);
  if (rank == 0) {
    std::printf("all-reduce (sum, fp32), %d ranks, median of %d calls per variant\n", world, iters);
    std::printf("%12s %12s %12s %12s %10s %10s %12s\n", "bytes", "MPI (us)", "tessera(us)", "redist (us)",
                "MPI GB/s", "ts GB/s", "ratio MPI/ts");
  }
  for (std::size_t bytes = 1024; bytes <= std::size_t(max_mib) << 20; bytes *= 4) {
    const std::size_t n = bytes / sizeof(float);
    std::vector<float> a(n, 1.0f), b(n, 0.0f);
    std::vector<double> t_mpi, t_ts, t_rd;
    const ts::extents g{static_cast<std::int64_t>(n)};
    const ts::sharding part = ts::sharding{}.with(ts::axis::dp, ts::placement::make_partial());
    for (int it = -3; it < iters; ++it) {  // 3 warm-up rounds
      MPI_Barrier(MPI_COMM_WORLD);
      double t0 = MPI_Wtime();
      MPI_Allreduce(a.data(), b.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      double t1 = MPI_Wtime();
      MPI_Barrier(MPI_COMM_WORLD);
      double t2 = MPI_Wtime();
      ts::all_reduce(comms.world(), a.data(), b.data(), n, ts::reduce_op::sum);
      double t3 = MPI_Wtime();
      MPI_Barrier(MPI_COMM_WORLD);
      double t4 = MPI_Wtime();
      ts::redistribute(comms, g, part, ts::sharding{}, a.data(), b.data());
      double t5 = MPI_Wtime();
      if (it < 0) continue;
      // the slowest rank's time is the collective's time
      double t[3] = {t1 - t0, t3 - t2, t5 - t4};
      MPI_Allreduce(MPI_IN_PLACE, t, 3, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      t_mpi.push_back(t[0]);
      t_ts.push_back(t[1]);
      t_rd.push_back(t[2]);
    }
    const double mm = median(t_mpi), mt = median(t_ts), mr = median(t_rd);
    const double busbytes = 2.0 * (world - 1) / world * double(bytes);
    if (rank == 0)
      std::printf("%12zu %12.1f %12.1f %12.1f %10.3f %10.3f %12.3f\n", bytes, mm * 1e6, mt * 1e6, mr * 1e6,
                  busbytes / mm / 1e9, busbytes / mt / 1e9, mm / mt);
  }
  return 0;
}
