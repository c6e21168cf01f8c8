// libtessera_cudnn_sdpa.so — cuDNN's fused flash attention (SDPA, forward and backward) behind the C
// interface of tessera/ops/cuda/cudnn_sdpa_abi.h, opened at run time by tessera/ops/cuda/cudnn_attention.hpp.
//
// One translation unit, compiled once by the build, holds the cuDNN frontend (its graph API: the heavy
// headers stay out of the programs users compile). A graph is built per (problem, direction, device) the
// first time it is asked for and kept, with its workspace, for the life of the process: a training step
// after the first builds nothing and allocates nothing. A problem cuDNN refuses is remembered as refused
// (with cuDNN's reason), so the caller falls back without asking again; either direction runs only when
// both build (a forward on cuDNN, a backward on another kernel would disagree on the statistics' form).
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cudnn_frontend.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>

#include "tessera/ops/cuda/cudnn_sdpa_abi.h"

namespace {

namespace fe = cudnn_frontend;

enum uid : int64_t { Q = 1, K, V, O, STATS, DO, DQ, DK, DV };

/// Writes `msg` into the caller's buffer (truncated, always terminated) and returns `code`.
int fail(int code, const std::string& msg, char* why, size_t len) {
  if (why && len) {
    const size_t n = msg.size() < len - 1 ? msg.size() : len - 1;
    std::memcpy(why, msg.data(), n);
    why[n] = '\0';
  }
  return code;
}

std::vector<int64_t> dims(const tessera_sdpa_problem& p, int64_t heads) { return {p.B, heads, p.T, p.D}; }
/// Strides of a [B, heads, T, D] view of tessera's token-major rows with row stride ld.
std::vector<int64_t> strides(const tessera_sdpa_problem& p, int64_t ld) { return {p.T * ld, p.D, ld, 1}; }

std::shared_ptr<fe::graph::Tensor_attributes> input(fe::graph::Graph& g, const char* name, int64_t id,
                                                    std::vector<int64_t> d, std::vector<int64_t> s) {
  return g.tensor(fe::graph::Tensor_attributes().set_name(name).set_uid(id).set_dim(d).set_stride(s));
}

std::vector<int64_t> stats_dims(const tessera_sdpa_problem& p) { return {p.B, p.Hq, p.T, 1}; }
std::vector<int64_t> stats_strides(const tessera_sdpa_problem& p) { return {p.Hq * p.T, p.T, 1, 1}; }

/// A graph of bf16 tensors with fp32 arithmetic; sm_version > 0 names the target GPU (no device is asked:
/// the attention node picks its implementation from it when the node is added).
std::shared_ptr<fe::graph::Graph> new_graph(int sm_version) {
  auto g = std::make_shared<fe::graph::Graph>();
  if (sm_version > 0) g->set_sm_version(sm_version);
  g->set_io_data_type(fe::DataType_t::BFLOAT16)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  return g;
}

using tensor = std::shared_ptr<fe::graph::Tensor_attributes>;
struct qkv_tensors {
  tensor q, k, v;
};
/// q, k, v: the inputs of both directions.
qkv_tensors qkv_inputs(fe::graph::Graph& g, const tessera_sdpa_problem& p) {
  return {input(g, "Q", Q, dims(p, p.Hq), strides(p, p.ld_q)), input(g, "K", K, dims(p, p.Hkv), strides(p, p.ld_k)),
          input(g, "V", V, dims(p, p.Hkv), strides(p, p.ld_v))};
}

/// The forward graph: o and the softmax statistics (lse) from q, k, v.
std::shared_ptr<fe::graph::Graph> forward_graph(const tessera_sdpa_problem& p, int sm_version) {
  auto g = new_graph(sm_version);
  auto [q, k, v] = qkv_inputs(*g, p);
  auto opts = fe::graph::SDPA_attributes().set_name("tessera_sdpa").set_generate_stats(true).set_causal_mask(true)
                  .set_attn_scale(p.scale);
  auto [o, stats] = g->sdpa(q, k, v, opts);
  o->set_output(true).set_uid(O).set_dim(dims(p, p.Hq)).set_stride(strides(p, p.ld_o));
  stats->set_output(true).set_uid(STATS).set_data_type(fe::DataType_t::FLOAT).set_dim(stats_dims(p))
      .set_stride(stats_strides(p));
  return g;
}

/// The backward graph: dq, dk, dv from dO, q, k, v, o and the statistics.
std::shared_ptr<fe::graph::Graph> backward_graph(const tessera_sdpa_problem& p, int sm_version) {
  auto g = new_graph(sm_version);
  auto [q, k, v] = qkv_inputs(*g, p);
  auto o = input(*g, "O", O, dims(p, p.Hq), strides(p, p.ld_o));
  auto dout = input(*g, "dO", DO, dims(p, p.Hq), strides(p, p.ld_o));
  auto stats = g->tensor(fe::graph::Tensor_attributes().set_name("Stats").set_uid(STATS).set_dim(stats_dims(p))
                             .set_stride(stats_strides(p)).set_data_type(fe::DataType_t::FLOAT));
  auto opts = fe::graph::SDPA_backward_attributes().set_name("tessera_sdpa_backward").set_causal_mask(true)
                  .set_attn_scale(p.scale).set_deterministic_algorithm(p.deterministic != 0);
  auto [dq, dk, dv] = g->sdpa_backward(q, k, v, o, dout, stats, opts);
  dq->set_output(true).set_uid(DQ).set_dim(dims(p, p.Hq)).set_stride(strides(p, p.ld_q));
  dk->set_output(true).set_uid(DK).set_dim(dims(p, p.Hkv)).set_stride(strides(p, p.ld_k));
  dv->set_output(true).set_uid(DV).set_dim(dims(p, p.Hkv)).set_stride(strides(p, p.ld_v));
  return g;
}

std::string problem_text(const tessera_sdpa_problem& p) {
  char b[200];
  std::snprintf(b, sizeof b, "B=%lld Hq=%lld Hkv=%lld T=%lld D=%lld", static_cast<long long>(p.B),
                static_cast<long long>(p.Hq), static_cast<long long>(p.Hkv), static_cast<long long>(p.T),
                static_cast<long long>(p.D));
  return b;
}

/// A built graph with its workspace, or cuDNN's reason for refusing the problem.
struct built {
  std::shared_ptr<fe::graph::Graph> graph;
  void* workspace = nullptr;
  std::string refused;  ///< non-empty: no engine
};

using key = std::tuple<int, int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       uint32_t, int>;

key key_of(const tessera_sdpa_problem& p, int backward, int device) {
  uint32_t scale_bits = 0;
  std::memcpy(&scale_bits, &p.scale, sizeof scale_bits);
  return {device, backward, p.B, p.Hq, p.Hkv, p.T, p.D, p.ld_q, p.ld_k, p.ld_v, p.ld_o, scale_bits, p.deterministic};
}

struct state {
  std::mutex m;
  std::map<int, cudnnHandle_t> handles;  // per device
  std::map<key, built> graphs;
};
state& process() {
  static state* s = new state;  // never destroyed: cuDNN handles outlive static destruction order
  return *s;
}

/// Builds b's graph for the current device (cuDNN's heuristics choose the engine) and its workspace; a
/// problem cuDNN refuses leaves the reason in b.refused. Returns 0, or TESSERA_SDPA_ERROR.
int build(const tessera_sdpa_problem& p, int backward, cudnnHandle_t handle, built& b, char* why, size_t len) {
  fe::error_t e;
  try {
    b.graph = backward ? backward_graph(p, 0) : forward_graph(p, 0);
    e = b.graph->validate();
    if (e.is_good()) e = b.graph->build_operation_graph(handle);
    if (e.is_good()) e = b.graph->create_execution_plans({fe::HeurMode_t::A});
    if (e.is_good()) e = b.graph->check_support();
    if (e.is_good()) e = b.graph->build_plans();
  } catch (const std::exception& x) {  // the frontend throws when no implementation suits the attributes
    e = {fe::error_code_t::GRAPH_NOT_SUPPORTED, x.what()};
  }
  if (e.is_bad()) {
    b.refused = e.get_message().empty() ? "no engine" : e.get_message();
    b.graph.reset();
    return 0;
  }
  int64_t bytes = 0;
  if (b.graph->get_workspace_size(bytes).is_bad()) {
    b.refused = "get_workspace_size failed";
    b.graph.reset();
  } else if (bytes > 0 && cudaMalloc(&b.workspace, static_cast<size_t>(bytes)) != cudaSuccess) {
    return fail(TESSERA_SDPA_ERROR, "cudaMalloc of cuDNN's workspace (" + std::to_string(bytes) + " bytes)", why,
                len);
  }
  return 0;
}

/// The graph for (p, direction) on the current device, built on first use. Returns 0, or a failure code.
int graph_for(const tessera_sdpa_problem& p, int backward, built*& out, cudnnHandle_t& handle, char* why,
              size_t len) {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return fail(TESSERA_SDPA_ERROR, "cudaGetDevice failed", why, len);
  state& s = process();
  auto h = s.handles.find(device);
  if (h == s.handles.end()) {
    cudnnHandle_t created = nullptr;
    const cudnnStatus_t st = cudnnCreate(&created);
    if (st != CUDNN_STATUS_SUCCESS)
      return fail(TESSERA_SDPA_ERROR, std::string("cudnnCreate: ") + cudnnGetErrorString(st), why, len);
    h = s.handles.emplace(device, created).first;
  }
  handle = h->second;
  auto [it, fresh] = s.graphs.try_emplace(key_of(p, backward, device));
  built& b = it->second;
  out = &b;
  if (fresh) {
    if (const int r = build(p, backward, handle, b, why, len)) {
      s.graphs.erase(it);  // asked again next time
      return r;
    }
  }
  if (!b.refused.empty())
    return fail(TESSERA_SDPA_UNSUPPORTED,
                std::string(backward ? "backward" : "forward") + " " + problem_text(p) + ": " + b.refused, why, len);
  return 0;
}

int execute(const tessera_sdpa_problem& p, int backward, std::unordered_map<int64_t, void*>& pack, void* stream,
            char* why, size_t len) {
  std::lock_guard<std::mutex> lock(process().m);
  built* b = nullptr;
  cudnnHandle_t handle = nullptr;
  // both directions or neither: the backward needs the statistics of a cuDNN forward
  if (const int r = graph_for(p, 1 - backward, b, handle, why, len)) return r;
  if (const int r = graph_for(p, backward, b, handle, why, len)) return r;
  const cudnnStatus_t st = cudnnSetStream(handle, static_cast<cudaStream_t>(stream));
  if (st != CUDNN_STATUS_SUCCESS)
    return fail(TESSERA_SDPA_ERROR, std::string("cudnnSetStream: ") + cudnnGetErrorString(st), why, len);
  fe::error_t e;
  try {
    e = b->graph->execute(handle, pack, b->workspace);
  } catch (const std::exception& x) {
    e = {fe::error_code_t::GRAPH_EXECUTION_FAILED, x.what()};
  }
  if (e.is_bad()) return fail(TESSERA_SDPA_ERROR, "cuDNN SDPA execute: " + e.get_message(), why, len);
  return 0;
}

void* mut(const void* p) { return const_cast<void*>(p); }

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int tessera_cudnn_sdpa_abi(void) { return TESSERA_SDPA_ABI_VERSION; }

__attribute__((visibility("default"))) const char* tessera_cudnn_sdpa_version(void) {
  static const std::string v = [] {
    const size_t n = cudnnGetVersion();
    return "cuDNN " + std::to_string(n / 10000) + "." + std::to_string(n / 100 % 100) + "." +
           std::to_string(n % 100) + ", frontend " + std::to_string(CUDNN_FRONTEND_MAJOR_VERSION) + "." +
           std::to_string(CUDNN_FRONTEND_MINOR_VERSION) + "." + std::to_string(CUDNN_FRONTEND_PATCH_VERSION);
  }();
  return v.c_str();
}

__attribute__((visibility("default"))) int tessera_cudnn_sdpa_validate(const tessera_sdpa_problem* p, int backward,
                                                                        int sm_version, char* why, size_t len) {
  try {
    auto g = backward ? backward_graph(*p, sm_version) : forward_graph(*p, sm_version);
    auto e = g->validate();
    if (e.is_bad()) return fail(TESSERA_SDPA_UNSUPPORTED, problem_text(*p) + ": " + e.get_message(), why, len);
    return 0;
  } catch (const std::exception& x) {
    return fail(TESSERA_SDPA_UNSUPPORTED, problem_text(*p) + ": " + x.what(), why, len);
  }
}

__attribute__((visibility("default"))) int tessera_cudnn_sdpa_forward(const tessera_sdpa_problem* p, const void* q,
                                                                       const void* k, const void* v, void* o,
                                                                       float* lse, void* stream, char* why,
                                                                       size_t len) {
  std::unordered_map<int64_t, void*> pack{{Q, mut(q)}, {K, mut(k)}, {V, mut(v)}, {O, o}, {STATS, lse}};
  return execute(*p, 0, pack, stream, why, len);
}

__attribute__((visibility("default"))) int tessera_cudnn_sdpa_backward(const tessera_sdpa_problem* p,
                                                                        const void* dout, const void* q,
                                                                        const void* k, const void* v, const void* o,
                                                                        const float* lse, void* dq, void* dk,
                                                                        void* dv, void* stream, char* why,
                                                                        size_t len) {
  std::unordered_map<int64_t, void*> pack{{Q, mut(q)},   {K, mut(k)},       {V, mut(v)}, {O, mut(o)},
                                          {DO, mut(dout)}, {STATS, mut(lse)}, {DQ, dq},    {DK, dk}, {DV, dv}};
  return execute(*p, 1, pack, stream, why, len);
}

}  // extern "C"
