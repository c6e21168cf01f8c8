// tessera/train/train.hpp — ts::train<plan>(argc, argv): a training program — its flags (options.hpp),
// MPI, threads, the world size checked against the mesh — running a training_run on the host backend.
#pragma once
#include <omp.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "tessera/comm/mpi.hpp"
#include "tessera/ops/host/openblas_core.hpp"
#include "tessera/train/machine.hpp"
#include "tessera/train/options.hpp"
#include "tessera/train/plan.hpp"
#include "tessera/train/training_run.hpp"

extern "C" void openblas_set_num_threads(int);

namespace tessera {

/// This pipeline rank's actions, from the plan's constexpr schedule table.
template <class Plan>
std::vector<action> program_of_rank(int pp_rank) {
  using table = typename Plan::table;
  std::vector<action> program;
  for (int i = 0; i < table::comm.size(pp_rank); ++i) program.push_back(table::comm.at(pp_rank, i));
  return program;
}

/// The training program: parses the flags (docs/training.md), checks the world against the mesh, trains.
template <class Plan>
int train(int argc, char** argv) {
  static_assert(is_plan_v<Plan>, "tessera::train<P>: P must be a ts::plan<...>");
  ops::host::openblas::restart_with_cpu_kernels();  // before MPI: OpenBLAS's generic kernels on a new CPU
  mpi_environment env(argc, argv);
  constexpr plan_desc pd = Plan::desc;
  const int rank = env.rank();
  CLI::App app{"tessera training program (" + std::string(pd.model.family_name()) + ")"};
  train_options o;
  add_train_flags(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (rank == 0 || e.get_exit_code() != 0) {
      if (rank == 0) app.exit(e);
    }
    return e.get_exit_code() == 0 ? 0 : usage_exit_code;
  }
  require_world_size(pd.mesh.world());
  try {
    if (!o.backend.empty() && o.backend == "cuda")
      throw usage_error("--backend cuda: the trainer runs on the host backend only in this version (the CUDA "
                        "operators and NCCL communicator exist, the CUDA trainer does not yet); use --backend host");
    const mpi_comm job = mpi_comm::world();
    const int threads = o.threads > 0 ? o.threads : train_detail::default_threads(job.split_by_node().size());
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    if (rank == 0 && threads > 1 && openblas_get_parallel() == 1)
      std::fprintf(stderr, "tessera: note: OpenBLAS is its pthreads build, whose threads compete with OpenMP's; the "
                           "OpenMP build (Debian: libopenblas0-openmp, scripts/deps.sh selects it) is faster\n");
    if constexpr (pd.policy.precision == precision_kind::bf16) {
      return training_run<bf16, Plan::model::head_dim, mpi_comm>(pd, o, job, &program_of_rank<Plan>).run();
    } else {
      return training_run<float, Plan::model::head_dim, mpi_comm>(pd, o, job, &program_of_rank<Plan>).run();
    }
  } catch (const usage_error& e) {
    std::fprintf(stderr, "tessera: %s (rank %d)\n", e.what(), rank);
    return usage_exit_code;
  } catch (const std::exception& e) {  // not the user's input: a failure of this rank, which ends the job
    std::fprintf(stderr, "tessera: error: %s (rank %d)\n", e.what(), rank);
    std::fflush(stderr);
    env.abort(1);
  }
}

}  // namespace tessera
