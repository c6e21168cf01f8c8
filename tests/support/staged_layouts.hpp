// tests/support/staged_layouts.hpp — the layouts that several ranks on one device train through the staged
// communicator (comm/staged.hpp), and a trainer run over MPI_COMM_WORLD on any communicator and system.
// Used on the host with a fake device system (tests/train/test_staged_trainer.cpp: the host's bits) and
// on a GPU (tests/cuda/test_trainer.cu: the host's losses up to the GPU operators' rounding).
#pragma once
#include <doctest/doctest.h>
#include <mpi.h>

#include <string>
#include <type_traits>
#include <vector>

#include "tessera/tessera.hpp"

namespace tessera_test {
namespace ts = tessera;

// head size 32 in both models: one trainer instantiation per precision and system
using staged_gpt = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 32, .layers = 4, .hidden = 64, .heads = 2}>;
using staged_llama = ts::llama<ts::llama_config{.vocab = 256, .seq = 32, .layers = 4, .hidden = 128, .heads = 4,
                                                .kv_heads = 2, .ffn = 256}>;

/// Calls f.template operator()<T, Plan>(name) for every layout: fp32 GPT (dp with bucket reductions
/// overlapping the backward, ZeRO 1–3, tp with sequence parallelism, interleaved, zero-bubble V and Chimera
/// pipelines, recompute) and bf16 LLaMA with fp32 masters; the caller trains those whose mesh is its world.
template <class F>
void for_each_staged_layout(F&& f) {
  using m1 = ts::mesh<>;
  using dp2 = ts::mesh<ts::dp<2>>;
  using d2p2t2 = ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>;
  using bf = ts::precision<ts::bf16>;
  using g = staged_gpt;
  using l = staged_llama;
  f.template operator()<float, ts::plan<g, m1, ts::one_f_one_b<2>>>("accum2");
  f.template operator()<float, ts::plan<g, dp2, ts::one_f_one_b<2>>>("dp2");
  f.template operator()<float, ts::plan<g, dp2, ts::gpipe<2>, ts::zero<3>>>("dp2_zero3");
  f.template operator()<float, ts::plan<g, ts::mesh<ts::tp<2>>, ts::gpipe<2>, ts::sequence_parallel>>("tp2_sp");
  f.template operator()<float, ts::plan<g, ts::mesh<ts::pp<2>>, ts::interleaved_1f1b<4, 2>>>("pp2_interleaved");
  f.template operator()<float, ts::plan<g, ts::mesh<ts::pp<2>>, ts::zbv<4>>>("pp2_zbv");
  f.template operator()<float, ts::plan<g, ts::mesh<ts::dp<2>, ts::tp<2>>, ts::one_f_one_b<2>, ts::zero<2>>>("dp2_tp2_zero2");
  f.template operator()<float, ts::plan<g, ts::mesh<ts::dp<2>, ts::pp<2>>, ts::chimera<4>>>("dp2_pp2_chimera");
  f.template operator()<float, ts::plan<g, d2p2t2, ts::interleaved_1f1b<2, 2>, ts::sequence_parallel,
                                        ts::recompute<ts::selective>>>("3d_interleaved_sp");
  f.template operator()<float, ts::plan<g, d2p2t2, ts::one_f_one_b<4>, ts::zero<1>>>("3d_zero1");
  f.template operator()<ts::bf16, ts::plan<l, m1, ts::one_f_one_b<2>, bf, ts::recompute<ts::full>>>("llama_bf16");
  f.template operator()<ts::bf16, ts::plan<l, dp2, ts::gpipe<2>, bf, ts::zero<3>>>("llama_bf16_dp2_zero3");
  f.template operator()<ts::bf16, ts::plan<l, ts::mesh<ts::tp<2>, ts::pp<2>>, ts::zb_h1<4>, bf, ts::sequence_parallel>>(
      "llama_bf16_pp2_tp2_sp_zb");
  f.template operator()<ts::bf16, ts::plan<l, d2p2t2, ts::one_f_one_b<4>, bf, ts::zero<2>>>("llama_bf16_3d_zero2");
}

/// Whether Plan's mesh is the MPI world.
template <class Plan>
bool fits_world() {
  int world = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  return Plan::desc.mesh.world() == world;
}

/// Communicator Comm over MPI_COMM_WORLD: NCCL's from_mpi, else built from an mpi_comm (mpi_comm itself, a
/// staged_comm over it).
template <class Comm>
Comm world_of() {
  if constexpr (requires { Comm::from_mpi(MPI_COMM_WORLD); }) return Comm::from_mpi(MPI_COMM_WORLD);
  else return Comm(ts::mpi_comm::split(MPI_COMM_WORLD, 0, 0));
}

/// `steps` steps of Plan over MPI_COMM_WORLD on communicator Comm (world_of) and system System: every
/// loss and gradient norm, then an evaluation.
template <class T, class Plan, class Comm, class System>
std::vector<double> train_layout(int steps) {
  constexpr ts::plan_desc pd = Plan::desc;
  Comm world = world_of<Comm>();
  ts::mesh_comms<Comm> mc(world, pd.mesh);
  ts::token_data data(TESSERA_CORPUS, pd.model.vocab, pd.model.seq);
  ts::train_options o;
  o.lr = 3e-3;
  o.warmup = 1;
  o.steps = steps;
  o.bucket_mb = 0.01;  // several buckets, so reductions start while the backward runs
  ts::trainer<T, Plan::model::head_dim, Comm, System> tr(pd, ts::program_of_rank<Plan>(mc.coord(ts::axis::pp)), o, mc,
                                                         data);
  tr.shard_optimizer_state();
  std::vector<double> out;
  for (int k = 0; k < steps; ++k) {
    const auto r = tr.step(k);
    out.push_back(r.loss);
    out.push_back(r.grad_norm);
  }
  out.push_back(tr.evaluate(0, 2));
  return out;
}

/// Every layout whose mesh is the MPI world, trained `steps` steps on the host (mpi_comm, host_system) and
/// on DeviceComm and DeviceSystem: compare(fp32?, host results, device results) in the layout's doctest
/// context. Returns how many layouts ran.
template <class DeviceComm, class DeviceSystem, class Compare>
int compare_layouts_with_host(int steps, Compare compare) {
  int layouts = 0;
  for_each_staged_layout([&]<class T, class Plan>(const char* name) {
    if (!fits_world<Plan>()) return;
    const std::string layout = name;
    CAPTURE(layout);
    ++layouts;
    const std::vector<double> host = train_layout<T, Plan, ts::mpi_comm, ts::host_system>(steps);
    compare(std::is_same_v<T, float>, host, train_layout<T, Plan, DeviceComm, DeviceSystem>(steps));
  });
  return layouts;
}

}  // namespace tessera_test
