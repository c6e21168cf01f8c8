// tessera/train/train.hpp — ts::train<plan>(argc, argv): a training program — its flags (options.hpp),
// MPI, threads, the world size checked against the mesh — running a training_run on the host backend (or
// one GPU). The plan types become values here (engine.hpp): the engine below is instantiated per (dtype,
// head size), and is taken from the pre-compiled engine library when the build made one.
#pragma once
#include <omp.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>
#include <vector>

#include "tessera/comm/mpi.hpp"
#include "tessera/comm/staged.hpp"
#include "tessera/ops/host/openblas_core.hpp"
#include "tessera/train/engine.hpp"
#include "tessera/train/machine.hpp"
#include "tessera/train/options.hpp"
#include "tessera/train/plan.hpp"
#include "tessera/train/training_run.hpp"
#if defined(__CUDACC__)
#include "tessera/comm/nccl.hpp"
#include "tessera/core/cuda_system.hpp"
#endif

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

namespace train_detail {
/// --backend cuda: the number of CUDA devices; stops with exit 2 and "no CUDA device (...)" when there is
/// none (or the program was not compiled by nvcc).
inline int require_cuda_backend() {
#if defined(__CUDACC__)
  int devices = 0;
  const cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess || devices == 0)
    throw usage_error(cat("--backend cuda: no CUDA device (cudaGetDeviceCount: ",
                          e != cudaSuccess ? cudaGetErrorString(e) : "0 devices", "); use --backend host"));
  return devices;
#else
  throw usage_error("--backend cuda: no CUDA device support in this program (it was compiled without nvcc; the "
                    "README's nvcc line builds one with the CUDA backend); use --backend host");
#endif
}

/// The backend when --backend is not given: cuda when the program was compiled by nvcc and a device
/// exists, else host.
inline std::string default_backend() {
#if defined(__CUDACC__)
  int devices = 0;
  if (cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0) return "cuda";
  (void)cudaGetLastError();
#endif
  return "host";
}

/// --comm auto|staged|nccl for `ranks` ranks on a node with `devices` GPUs, in a job of `world` ranks:
/// "nccl" or "staged" (auto: NCCL when the job has several ranks and each has a GPU of its own).
inline std::string choose_cuda_comm(const std::string& asked, int ranks, int devices, int world) {
  if (asked == "nccl" && ranks > devices)
    throw usage_error(cat("--comm nccl: ", ranks, " ranks on this node share ", devices, " GPU", devices == 1 ? "" : "s",
                          "; NCCL needs a GPU per rank (use --comm staged, or fewer ranks per node)"));
  if (asked != "auto") return asked;
  return world > 1 && ranks <= devices ? "nccl" : "staged";
}

/// The trainer on cuda_system: each rank takes GPU (rank on its node) mod (GPUs); communication through
/// NCCL (nccl_comm: its own stream, ordered by events) or staged through host memory and MPI (staged_comm:
/// what ranks that share a GPU need — NCCL refuses two ranks on one device), as --comm chooses. Data,
/// logs and checkpoints on the host as always.
template <class T, int HeadDim>
int run_on_gpu([[maybe_unused]] const plan_desc& pd, [[maybe_unused]] program_fn program,
               [[maybe_unused]] const train_options& o, [[maybe_unused]] int devices) {
#if defined(__CUDACC__)
  mpi_comm world = mpi_comm::world();
  const mpi_comm node = world.split_by_node();
  const std::string comm = choose_cuda_comm(o.comm, node.size(), devices, world.size());
  cuda_check(cudaSetDevice(node.rank() % devices), "cudaSetDevice");
  if (world.rank() == 0 && !o.quiet)
    std::fprintf(stderr, "tessera: --backend cuda: %d rank%s on %d GPU%s per node; communication: %s\n", node.size(),
                 node.size() == 1 ? "" : "s", devices, devices == 1 ? "" : "s",
                 comm == "nccl" ? "NCCL" : "staged through host memory over MPI");
  if (comm == "nccl") {
    const nccl_comm job = nccl_comm::from_mpi(world.native());
    return training_run<T, HeadDim, nccl_comm, cuda_system>(pd, o, job, program).run();
  }
  const staged_comm<mpi_comm, cuda_system> job(std::move(world));
  return training_run<T, HeadDim, staged_comm<mpi_comm, cuda_system>, cuda_system>(pd, o, job, program).run();
#else
  return usage_exit_code;  // not reached: require_cuda_backend stops first
#endif
}

/// The training program of one plan in a running MPI job whose world is the plan's mesh: parses the
/// flags, sets the threads, trains. T and HeadDim are the plan's precision and head size.
/// default_batch: the global batch without --batch (0: the plan's).
template <class T, int HeadDim>
int run_plan(mpi_environment& env, const plan_desc& pd, program_fn program, int argc, char** argv, int default_batch) {
  const int rank = env.rank();
  CLI::App app{"tessera training program (" + std::string(pd.model.family_name()) + ")"};
  train_options o;
  add_train_flags(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (rank == 0) app.exit(e);
    return e.get_exit_code() == 0 ? 0 : usage_exit_code;
  }
  require_world_size(pd.mesh.world());
  if (o.batch == 0) o.batch = default_batch > 0 ? default_batch : pd.policy.batch;  // 0: dp × microbatches
  try {
    if (o.backend.empty()) o.backend = default_backend();
    if (o.backend == "cuda") return run_on_gpu<T, HeadDim>(pd, program, o, require_cuda_backend());
    if (o.comm != "auto") throw usage_error(cat("--comm ", o.comm, ": only for --backend cuda (the host backend communicates through MPI)"));
    const mpi_comm job = mpi_comm::world();
    const int threads = o.threads > 0 ? o.threads : default_threads(job.split_by_node().size());
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    if (rank == 0 && threads > 1 && openblas_get_parallel() == 1)
      std::fprintf(stderr, "tessera: note: OpenBLAS is its pthreads build, whose threads compete with OpenMP's; the "
                           "OpenMP build (Debian: libopenblas0-openmp, scripts/deps.sh selects it) is faster\n");
    return training_run<T, HeadDim, mpi_comm>(pd, o, job, program).run();
  } catch (const usage_error& e) {
    std::fprintf(stderr, "tessera: %s (rank %d)\n", e.what(), rank);
    return usage_exit_code;
  } catch (const std::exception& e) {  // not the user's input: a failure of this rank, which ends the job
    std::fprintf(stderr, "tessera: error: %s (rank %d)\n", e.what(), rank);
    std::fflush(stderr);
    env.abort(1);
  }
}

/// run_plan<T, HeadDim> of one plan's precision and head size.
using plan_runner = int (*)(mpi_environment&, const plan_desc&, program_fn, int, char**, int);

/// The engine: the plan (for ts::elastic, the plan whose mesh size is the world's; every plan's default
/// batch is then the first plan's, so that the global batch, and with it the losses, do not depend on the
/// world size), trained by its runner. plans and runners have request.plan_count elements.
/// @pre MPI is not initialised yet (this starts it, after OpenBLAS's kernels are chosen).
inline int run_engine(const engine_request& request, const plan_runner* runners) {
  ops::host::openblas::restart_with_cpu_kernels();  // before MPI: OpenBLAS's generic kernels on a new CPU
  int argc = request.argc;
  char** argv = request.argv;
  mpi_environment env(argc, argv);
  const plan_desc& first = *request.plans[0].desc;
  const int batch = !request.elastic ? 0 : first.policy.batch > 0 ? first.policy.batch : first.dp * first.schedule.microbatches;
  std::string sizes;
  for (int i = 0; i < request.plan_count; ++i) {
    const engine_plan& p = request.plans[i];
    if (env.size() == p.desc->mesh.world() || !request.elastic)
      return runners[i](env, *p.desc, p.program, argc, argv, batch);
    sizes += cat(sizes.empty() ? "" : ", ", p.desc->mesh.world());
  }
  std::fprintf(stderr, "tessera: no plan of this program runs on %d ranks (its plans' mesh sizes: %s; run with mpirun -np "
                       "one of them) (rank %d)\n", env.size(), sizes.c_str(), env.rank());
  return usage_exit_code;
}

template <class Plan>
using value_type_of = std::conditional_t<Plan::desc.policy.precision == precision_kind::bf16, bf16, float>;

/// A program's plans as values, whether every one has its (dtype, head size) in the pre-compiled engine,
/// and their runners — instantiated in the program only when runners() is called (no pre-compiled engine).
template <class... Plans>
struct plan_list {
  static constexpr engine_plan plans[] = {{&Plans::desc, &program_of_rank<Plans>}...};
  static constexpr bool prebuilt = (engine_is_built_for(Plans::desc.policy.precision, Plans::desc.model.head_dim) && ...);
  static const plan_runner* runners() {
    static constexpr plan_runner all[] = {&run_plan<value_type_of<Plans>, Plans::desc.model.head_dim>...};
    return all;
  }
};
/// The plan list of P: a ts::plan, or ts::elastic's plans in order.
template <class P>
struct plans_of {
  using list = plan_list<P>;
  static constexpr bool is_elastic = false;
};
template <class... Plans>
struct plans_of<elastic<Plans...>> {
  using list = plan_list<Plans...>;
  static constexpr bool is_elastic = true;
};

/// TESSERA_PRINT_PLANS=1: the program prints the world sizes it has plans for, as JSON, and exits —
/// how scripts/tessera-run learns where an elastic job can go on.
template <class P>
bool print_plans_if_asked() {
  const char* ask = std::getenv("TESSERA_PRINT_PLANS");
  if (!ask || std::string(ask) != "1") return false;
  std::string sizes;
  if constexpr (is_elastic_v<P>) {
    for (int n : P::world_sizes) sizes += cat(sizes.empty() ? "" : ",", n);
  } else {
    sizes = cat(P::desc.mesh.world());
  }
  std::printf("{\"world_sizes\":[%s]}\n", sizes.c_str());
  return true;
}
}  // namespace train_detail

/// The training program: parses the flags (docs/training.md), checks the world against the mesh, trains.
/// P is a ts::plan<…>, or ts::elastic<plan…> (the plan whose mesh size is the world size).
template <class P>
int train(int argc, char** argv) {
  static_assert(is_plan_v<P> || is_elastic_v<P>, "tessera::train<P>: P must be a ts::plan<...> or ts::elastic<plan...>");
  if (train_detail::print_plans_if_asked<P>()) return 0;
  using list = typename train_detail::plans_of<P>::list;
  const engine_request request{engine_abi(), static_cast<int>(std::size(list::plans)), list::plans,
                               train_detail::plans_of<P>::is_elastic, argc, argv};
  if constexpr (have_prebuilt_engine && list::prebuilt) {
    return call_engine_library(prebuilt_engine_path, request);  // the engine, compiled once (engine.hpp)
  } else {
    return train_detail::run_engine(request, list::runners());
  }
}

}  // namespace tessera
