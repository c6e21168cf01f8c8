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

#if defined(TESSERA_TEST_NEEDS_CUDA)
#include <cuda_runtime.h>
#endif

/// Exit code CTest reads as "skipped" (SKIP_RETURN_CODE).
constexpr int skip_exit_code = 77;
#if defined(TESSERA_TEST_NEEDS_CUDA)
/// Defined (true) by a GPU suite whose ranks each need a device of their own (NCCL).
extern "C" __attribute__((weak)) const bool tessera_test_one_device_per_rank;
#endif

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

#if defined(TESSERA_TEST_NEEDS_CUDA)
  // GPU suites skip cleanly, on every rank, when this machine has no CUDA device.
  int devices = 0;
  const cudaError_t err = cudaGetDeviceCount(&devices);
  if (err != cudaSuccess || devices == 0) {
    if (rank == 0)
      std::printf("SKIPPED: no CUDA device on this machine (cudaGetDeviceCount: %s, %d devices); "
                  "the GPU tests need one\n", err == cudaSuccess ? "ok" : cudaGetErrorString(err), devices);
    MPI_Finalize();
    return skip_exit_code;
  }
  // NCCL refuses two ranks on one device: a suite that defines tessera_test_one_device_per_rank skips
  // when this node has fewer devices than ranks
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  int local_rank = 0, local_ranks = 1;
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_size(node, &local_ranks);
  MPI_Comm_free(&node);
  if (&tessera_test_one_device_per_rank != nullptr && tessera_test_one_device_per_rank && devices < local_ranks) {
    if (rank == 0)
      std::printf("SKIPPED: %d ranks on a node with %d CUDA device%s; NCCL needs a device per rank (the staged "
                  "communicator's tests cover ranks that share one)\n", local_ranks, devices, devices == 1 ? "" : "s");
    MPI_Finalize();
    return skip_exit_code;
  }
  cudaSetDevice(local_rank % devices);
#endif
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
