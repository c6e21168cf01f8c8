// An MPI-aware main for doctest (Debian's doctest has no MPI extension).
//
// Every rank runs every test case in the same order, so collectives inside test cases match up.
// Rank 0 reports in full; other ranks report only failures, each line prefixed by the rank through
// doctest's own reporter. The exit code is the maximum over all ranks, so a failure anywhere fails
// the CTest test.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <mpi.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  if (rank != 0) {
    ctx.setOption("minimal", true);   // failures only
    ctx.setOption("no-intro", true);
    ctx.setOption("no-version", true);
  }
  int local = ctx.run();
  if (ctx.shouldExit()) {  // --help, --list-test-cases, ...
    MPI_Finalize();
    return local;
  }
  int global = 0;
  MPI_Allreduce(&local, &global, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0 && size > 1)
    std::printf("[tessera test main] %d rank(s): %s\n", size, global == 0 ? "all passed" : "FAILED on some rank");
  MPI_Finalize();
  return global;
}
