// tessera/plan/hardware.hpp — what the planner knows about machines: a device (peak rates, memory,
// links), a cluster of them, and the software that runs on them.
//
//   ts::hw::a100_80g, ts::hw::h100_sxm, ts::hw::h200     GPU types; `::desc` is their device_desc
//   ts::hw::host                                         this library's host backend, generic numbers;
//                                                        `tessera_calibrate` measures the machine's own
//   ts::cluster<GPU, gpus_per_node, nodes>                `::desc` is a cluster_desc
//
// Data-sheet numbers (peak rates, memory, bandwidths) are the vendors'; links are given as the bus
// bandwidth NCCL's all_reduce_perf reaches (what a ring all-reduce sees per GPU). The four efficiency
// numbers of each GPU are: large-GEMM fraction of peak, GEMM half-saturation size and attention fraction
// of peak, fitted on published Megatron-LM runs (bench/planner_fit; docs/planner.md has the table and the
// error on every row), and the memory-bound fraction of bandwidth, set to 0.8 (not fitted: with it free
// the fit trades it against attention at no gain). H200 shares the H100's compute die and takes its fit.
#pragma once
#include <cstdint>

namespace tessera {

/// One accelerator (or one host rank) as the cost model sees it. Rates in FLOP/s and bytes/s.
struct device_desc {
  const char* name = "device";
  double peak_bf16 = 0;        ///< dense bf16 matrix FLOP/s
  double peak_fp32 = 0;        ///< fp32 FLOP/s (no TF32)
  double memory_bytes = 0;     ///< device memory
  double memory_bw = 0;        ///< device memory bandwidth
  double intra_bw = 0;         ///< all-reduce bus bandwidth per GPU inside a node (NVLink)
  double intra_latency = 0;    ///< per ring step inside a node, seconds
  double inter_bw = 0;         ///< network bandwidth per GPU (its own NIC)
  double inter_latency = 0;    ///< per ring step across nodes, seconds
  // ---- fitted ----
  double gemm_efficiency = 0.8;    ///< fraction of peak a large GEMM reaches
  double gemm_half_size = 64;      ///< a GEMM dimension of this size halves that dimension's efficiency
  double attention_efficiency = 0.5;  ///< fraction of peak of the attention core's matrix products
  double memory_efficiency = 0.8;  ///< fraction of memory bandwidth memory-bound kernels reach
  double reserved_bytes = 0;       ///< memory not available to tensors (context, library workspaces)
};

/// How many devices, how they are grouped.
struct cluster_desc {
  device_desc device{};
  int gpus_per_node = 1;
  int nodes = 1;
  constexpr int gpus() const { return gpus_per_node * nodes; }
};

/// What the training software does with the machine: the same hardware runs Megatron-LM of 2021,
/// Megatron-Core and tessera differently (attention kernels, overlap of communication with compute).
struct software_desc {
  const char* name = "software";
  bool fused_attention = true;   ///< flash-style attention: no s×s scores in memory, causal half skipped
  double score_bytes = 0;        ///< unfused attention: bytes moved per attention score, forward pass
  double tp_overlap = 0;         ///< fraction of tensor-parallel communication hidden behind compute
  double pp_overlap = 0;         ///< fraction of pipeline send/recv time hidden
  double dp_overlap = 0;         ///< fraction of the data-parallel gradient reduction hidden in the backward
  double grad_reduce_bytes = 4;  ///< bytes per gradient element in the data-parallel reduction
  double elementwise_passes = 10;  ///< memory-bound passes over a layer's hidden activations, forward
  bool megatron_activations = false;  ///< activation memory by Korthikanti et al. 2022 (Megatron-LM's own
                                      ///< accounting) instead of tessera's per-microbatch state
};

namespace sw {
/// Megatron-LM as in Narayanan et al. 2021: unfused softmax over materialised scores, blocking p2p,
/// gradient all-reduce after the pipeline flush.
inline constexpr software_desc megatron_2021{"megatron-2021", false, 4.0, 0.0, 0.0, 0.0, 4, 12, true};
/// Megatron-Core r0.8 (TE flash attention, TP/DP/PP communication overlap on).
inline constexpr software_desc megatron_core{"megatron-core", true, 0.0, 0.7, 0.9, 0.9, 4, 10, true};
/// tessera's CUDA backend (cuDNN fused attention, bucketed gradient reduction on its own stream).
inline constexpr software_desc tessera_cuda{"tessera-cuda", true, 0.0, 0.0, 0.0, 0.5, 4, 10, false};
/// tessera's host backend (materialised fp32 attention scores, bucketed non-blocking MPI reductions).
inline constexpr software_desc tessera_host{"tessera-host", false, 8.0, 0.0, 0.0, 0.5, 4, 10, false};
}  // namespace sw

namespace hw {
inline constexpr double MiB = 1024.0 * 1024.0;

/// NVIDIA A100 SXM 80 GB (DGX A100: NVLink 3, one 200 Gb/s HDR NIC per GPU).
struct a100_80g {
  static constexpr device_desc desc{"a100-80g", 312e12, 19.5e12, 81920 * MiB, 2.039e12,
                                    235e9, 8e-6, 24e9, 12e-6,
                                    0.737, 121, 0.326, 0.80, 3072 * MiB};  // fitted: bench/planner_fit
};
/// NVIDIA H100 SXM 80 GB (DGX H100: NVLink 4, one 400 Gb/s NDR NIC per GPU).
struct h100_sxm {
  static constexpr device_desc desc{"h100-sxm", 989e12, 67e12, 81559 * MiB, 3.35e12,
                                    400e9, 8e-6, 48e9, 12e-6,
                                    0.557, 89, 0.276, 0.80, 3072 * MiB};  // fitted: bench/planner_fit
};
/// NVIDIA H200 SXM 141 GB (H100 compute, HBM3e; same links as DGX H100).
struct h200 {
  static constexpr device_desc desc{"h200", 989e12, 67e12, 143771 * MiB, 4.8e12,
                                    400e9, 8e-6, 48e9, 12e-6,
                                    h100_sxm::desc.gemm_efficiency, h100_sxm::desc.gemm_half_size,
                                    h100_sxm::desc.attention_efficiency, h100_sxm::desc.memory_efficiency,
                                    3072 * MiB};
};
/// One rank of this library's host backend, with modest generic numbers; `tessera_calibrate` measures
/// the machine it runs on and prints a device_desc (and a type like this one) to use instead.
struct host {
  static constexpr bool host_backend = true;
  static constexpr device_desc desc{"host", 100e9, 100e9, 4096 * MiB, 10e9,
                                    5e9, 5e-6, 5e9, 5e-6,
                                    0.8, 32, 0.3, 0.8, 256 * MiB};
};

template <class T> inline constexpr bool is_device_v = requires { T::desc; };
}  // namespace hw

/// The software a device type runs under tessera: the host backend for ts::hw::host (and calibrated host
/// types, which set `static constexpr bool host_backend = true;`), the CUDA backend for GPUs.
template <class Device>
constexpr software_desc software_of() {
  if constexpr (requires { Device::host_backend; }) return Device::host_backend ? sw::tessera_host : sw::tessera_cuda;
  return sw::tessera_cuda;
}

namespace diag {
template <int N> struct cluster_size_must_be_positive { static constexpr bool value = N >= 1; };
}

/// GPUs of one type, `gpus_per_node` to a node (NVLink inside, network across).
template <class Device, int GpusPerNode, int Nodes>
struct cluster {
  static_assert(requires { Device::desc; }, "tessera::cluster<Device, ...>: Device must be a ts::hw type");
  static_assert(diag::cluster_size_must_be_positive<GpusPerNode>::value,
                "tessera::cluster: gpus_per_node must be >= 1 (number in the note)");
  static_assert(diag::cluster_size_must_be_positive<Nodes>::value,
                "tessera::cluster: nodes must be >= 1 (number in the note)");
  using device = Device;
  static constexpr cluster_desc desc{Device::desc, GpusPerNode, Nodes};
};

template <class T> inline constexpr bool is_cluster_v = false;
template <class D, int G, int N> inline constexpr bool is_cluster_v<cluster<D, G, N>> = true;

}  // namespace tessera
