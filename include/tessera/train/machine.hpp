// tessera/train/machine.hpp — what the host backend runs on, as the start line of the JSON log and the
// progress header say it: the SIMD level the program was built for and the one the CPU has, the engine
// bf16 GEMMs use (bf16 hardware or the widened-fp32 fallback), and threads against the CPUs a rank may use.
#pragma once
#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "tessera/comm/communicator.hpp"
#include "tessera/core/cpu.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/simd.hpp"
#include "tessera/ops/host/blas.hpp"
#include "tessera/ops/host/openblas_core.hpp"

namespace tessera::train_detail {

/// Threads per rank when --threads is not given: the CPUs this rank may use (its affinity mask), and no
/// more than its share of the node's cores when ranks are not bound (then every mask is the whole node).
/// `ranks_on_node`: the ranks of the job that share this node.
inline int default_threads(int ranks_on_node) {
  const int local = std::max(1, ranks_on_node);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, std::min(cpu::allowed_cpus(), cores / local));
}

/// The host a training job runs on, gathered once (collective: the smallest affinity mask of the ranks).
struct machine_info {
  std::string simd_built;  ///< x86-64 level / aarch64 the program was compiled for
  int simd_lanes = 1;      ///< float lanes of its vectors (1: scalar loops only)
  std::string cpu_level;   ///< the CPU's own level
  std::string cpu_features;
  std::string openblas_core;  ///< OpenBLAS's kernel set (SkylakeX, Haswell, …; Prescott is its generic SSE3 one)
  std::string openblas_warning;  ///< empty unless that set is below the CPU's level
  std::string bf16_gemm;   ///< ops::host::bf16_gemm_engine()
  bool bf16_hardware = false;
  int threads = 1;         ///< OpenMP threads per rank
  int cpus_allowed = 1;    ///< the fewest CPUs any rank may use (its affinity mask)
  std::string threads_warning;  ///< empty unless threads > cpus_allowed: why and the fix

  nlohmann::json json() const {
    nlohmann::json j{{"simd", {{"built", simd_built}, {"lanes", simd_lanes}, {"cpu", cpu_level},
                               {"cpu_features", cpu_features}}},
                     {"openblas_core", openblas_core}, {"bf16_gemm", bf16_gemm}, {"bf16_hardware", bf16_hardware},
                     {"threads", threads}, {"cpus_allowed_per_rank", cpus_allowed}};
    if (!threads_warning.empty()) j["threads_warning"] = threads_warning;
    if (!openblas_warning.empty()) j["openblas_warning"] = openblas_warning;
    return j;
  }
  /// The progress header's line (without the warnings, which get their own lines).
  std::string header() const {
    return cat("tessera: SIMD built for ", simd_built, " (", simd_lanes, " float lanes), CPU ", cpu_level, " (",
               cpu_features.empty() ? "-" : cpu_features, ") | OpenBLAS ", openblas_core, " | bf16 GEMMs: ", bf16_gemm,
               " | ", threads,
               " thread", threads == 1 ? "" : "s", " per rank, ", cpus_allowed, " CPU", cpus_allowed == 1 ? "" : "s",
               " allowed");
  }
};

/// Describes this host for a job running `threads` threads per rank. Collective over `world`.
template <communicator C>
machine_info describe_machine(C& world, int threads) {
  machine_info m;
  m.simd_built = std::string(cpu::built_level());
#if TESSERA_HOST_VECTORS
  m.simd_lanes = simd::lanes;
#endif
  m.cpu_level = cpu::cpu_level();
  m.cpu_features = cpu::cpu_features();
  m.openblas_core = ops::host::openblas::core();
  if (ops::host::openblas::core_below_cpu())
    m.openblas_warning = cat("OpenBLAS runs its ", m.openblas_core, " kernels, below this CPU's ", m.cpu_level,
                             " (OPENBLAS_CORETYPE=", ops::host::openblas::core_for_cpu(),
                             " selects its own); fp32 GEMMs are slower than they can be");
  m.bf16_gemm = ops::host::bf16_gemm_engine();
  m.bf16_hardware = ops::host::bf16_gemm_on_hardware();
  m.threads = threads;
  const int allowed = all_reduce_value(world, static_cast<std::int32_t>(cpu::allowed_cpus()), reduce_op::min);
  m.cpus_allowed = allowed;
  if (threads > allowed)
    m.threads_warning =
        cat(threads, " threads per rank, but a rank may use only ", allowed, " CPU", allowed == 1 ? "" : "s",
            " (its affinity mask: Open MPI binds each rank to one core when it starts 2 ranks or fewer), so the "
            "threads share ", allowed == 1 ? "it" : "them", "; start with `mpirun --bind-to none` or `mpirun "
            "--map-by slot:PE=", threads, "` to give each rank ", threads, " CPUs");
  return m;
}

}  // namespace tessera::train_detail
