// tests/train/parity_plans.hpp — one program, many plans: argv[1] names the plan, the rest are the
// flags of ts::train. Used by the layout-parity suite (every layout trains to the one-rank losses).
#pragma once
#include <tessera/tessera.hpp>

#include <cstdio>
#include <cstring>
#include <string_view>

namespace parity {
namespace ts = tessera;

template <class Plan>
int run(int argc, char** argv) { return ts::train<Plan>(argc, argv); }

struct entry {
  const char* name;
  int (*fn)(int, char**);
};

template <std::size_t N>
int dispatch(const entry (&plans)[N], int argc, char** argv) {
  if (argc >= 2) {
    for (const entry& e : plans)
      if (std::string_view(argv[1]) == e.name) {
        argv[1] = argv[0];
        return e.fn(argc - 1, argv + 1);
      }
  }
  std::fprintf(stderr, "usage: %s PLAN [train flags]; plans:", argv[0]);
  for (const entry& e : plans) std::fprintf(stderr, " %s", e.name);
  std::fprintf(stderr, "\n");
  return 2;
}

/// The layouts every model is checked on (Model must allow tp = 2; TP4 adds the tp = 4 layouts).
template <class Model, bool TP4>
struct layouts {
  template <class Mesh, class Sched, class... P> using pl = ts::plan<Model, Mesh, Sched, P...>;
  using m1 = ts::mesh<>;
  static constexpr entry list[] = {
      {"ref", run<pl<m1, ts::gpipe<1>>>},
      {"accum4", run<pl<m1, ts::one_f_one_b<4>>>},
      {"dp2", run<pl<ts::mesh<ts::dp<2>>, ts::gpipe<1>>>},
      {"dp4", run<pl<ts::mesh<ts::dp<4>>, ts::one_f_one_b<2>>>},
      {"tp2", run<pl<ts::mesh<ts::tp<2>>, ts::gpipe<1>>>},
      {"tp2_sp", run<pl<ts::mesh<ts::tp<2>>, ts::gpipe<2>, ts::sequence_parallel>>},
      {"tp4", run<pl<ts::mesh<ts::tp<(TP4 ? 4 : 2)>>, ts::gpipe<1>>>},
      {"pp2_gpipe", run<pl<ts::mesh<ts::pp<2>>, ts::gpipe<4>>>},
      {"pp2_1f1b", run<pl<ts::mesh<ts::pp<2>>, ts::one_f_one_b<4>>>},
      {"pp2_interleaved", run<pl<ts::mesh<ts::pp<2>>, ts::interleaved_1f1b<4, 2>>>},
      {"pp2_chimera", run<pl<ts::mesh<ts::pp<2>>, ts::chimera<4>>>},
      {"pp2_zb_h1", run<pl<ts::mesh<ts::pp<2>>, ts::zb_h1<4>>>},
      {"pp2_zbv", run<pl<ts::mesh<ts::pp<2>>, ts::zbv<4>>>},
      {"pp2_dualpipe_v", run<pl<ts::mesh<ts::pp<2>>, ts::dualpipe_v<4>>>},
      {"pp2_uneven", run<pl<ts::mesh<ts::pp<2>>, ts::one_f_one_b<4>, ts::stage_layers<3, 5>>>},
      {"pp4_gpipe", run<pl<ts::mesh<ts::pp<4>>, ts::gpipe<4>>>},
      {"pp4_1f1b", run<pl<ts::mesh<ts::pp<4>>, ts::one_f_one_b<8>>>},
      {"pp4_interleaved", run<pl<ts::mesh<ts::pp<4>>, ts::interleaved_1f1b<4, 2>>>},
      {"pp4_chimera", run<pl<ts::mesh<ts::pp<4>>, ts::chimera<4>>>},
      {"pp4_zb_h1", run<pl<ts::mesh<ts::pp<4>>, ts::zb_h1<8>>>},
      {"pp4_zbv", run<pl<ts::mesh<ts::pp<4>>, ts::zbv<8>>>},
      {"pp4_dualpipe_v", run<pl<ts::mesh<ts::pp<4>>, ts::dualpipe_v<8>>>},
      // odd P (as torch): 6 V-shaped model stages over 3 ranks, 8 layers split 2,1,1,1,1,2
      {"pp3_zbv", run<pl<ts::mesh<ts::pp<3>>, ts::zbv<8>, ts::stage_layers<2, 1, 1, 1, 1, 2>>>},
      {"pp3_dualpipe_v", run<pl<ts::mesh<ts::pp<3>>, ts::dualpipe_v<8>, ts::stage_layers<2, 1, 1, 1, 1, 2>>>},
      {"3d", run<pl<ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>, ts::one_f_one_b<4>>>},
      {"3d_sp", run<pl<ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>, ts::one_f_one_b<4>, ts::sequence_parallel>>},
      {"3d_interleaved_sp", run<pl<ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>, ts::interleaved_1f1b<2, 2>, ts::sequence_parallel>>},
      // activation recompute: the same numbers as without
      {"recompute_full", run<pl<m1, ts::one_f_one_b<4>, ts::recompute<ts::full>>>},
      {"3d_sp_recompute_selective", run<pl<ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>, ts::one_f_one_b<4>,
                                           ts::sequence_parallel, ts::recompute<ts::selective>>>},
      {"3d_zb", run<pl<ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>, ts::zb_h1<4>>>},
      {"3d_zb_recompute_full", run<pl<ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>, ts::zb_h1<4>, ts::recompute<ts::full>>>},
      // ZeRO-1: optimizer state sharded over dp
      {"dp4_zero1", run<pl<ts::mesh<ts::dp<4>>, ts::one_f_one_b<2>, ts::zero<1>>>},
      {"3d_zero1", run<pl<ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>, ts::one_f_one_b<4>, ts::zero<1>>>},
      {"dp2_pp2_chimera", run<pl<ts::mesh<ts::dp<2>, ts::pp<2>>, ts::chimera<4>>>},
      {"dp2_pp2_chimera_zero1", run<pl<ts::mesh<ts::dp<2>, ts::pp<2>>, ts::chimera<4>, ts::zero<1>>>},
      {"dp4_bf16", run<pl<ts::mesh<ts::dp<4>>, ts::one_f_one_b<2>, ts::precision<ts::bf16>>>},
      {"dp4_bf16_zero1", run<pl<ts::mesh<ts::dp<4>>, ts::one_f_one_b<2>, ts::precision<ts::bf16>, ts::zero<1>>>},
      {"3d_sp_bf16_zero1", run<pl<ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>, ts::one_f_one_b<4>, ts::sequence_parallel,
                                  ts::precision<ts::bf16>, ts::zero<1>>>},
      // bf16 storage and activations, fp32 master weights, moments and gradient reduction
      {"bf16", run<pl<m1, ts::gpipe<1>, ts::precision<ts::bf16>>>},
      {"3d_sp_bf16", run<pl<ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>, ts::one_f_one_b<4>, ts::sequence_parallel,
                            ts::precision<ts::bf16>>>},
      // ZeRO-2 and ZeRO-3 (gradients, then parameters sharded over dp; unit by unit)
      {"dp4_zero2", run<pl<ts::mesh<ts::dp<4>>, ts::one_f_one_b<2>, ts::zero<2>>>},
      {"dp4_zero3", run<pl<ts::mesh<ts::dp<4>>, ts::one_f_one_b<2>, ts::zero<3>>>},
      {"3d_zero2", run<pl<ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>, ts::one_f_one_b<4>, ts::zero<2>>>},
      {"3d_zero3", run<pl<ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>, ts::one_f_one_b<4>, ts::zero<3>>>},
      {"3d_zb_zero3", run<pl<ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>, ts::zb_h1<4>, ts::zero<3>>>},
      {"3d_sp_bf16_zero3", run<pl<ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>, ts::one_f_one_b<4>, ts::sequence_parallel,
                                  ts::precision<ts::bf16>, ts::zero<3>>>},
      {"3d_sp_recompute_full_zero3", run<pl<ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>, ts::one_f_one_b<4>,
                                            ts::sequence_parallel, ts::recompute<ts::full>, ts::zero<3>>>},
      {"dp2_pp2_dualpipe_v", run<pl<ts::mesh<ts::dp<2>, ts::pp<2>>, ts::dualpipe_v<4>>>},
      {"dp2_pp2_dualpipe_v_zero3", run<pl<ts::mesh<ts::dp<2>, ts::pp<2>>, ts::dualpipe_v<4>, ts::zero<3>>>},
      {"bf16_dp4_zero2", run<pl<ts::mesh<ts::dp<4>>, ts::one_f_one_b<2>, ts::precision<ts::bf16>, ts::zero<2>>>},
      {"bf16_dp4_zero3", run<pl<ts::mesh<ts::dp<4>>, ts::one_f_one_b<2>, ts::precision<ts::bf16>, ts::zero<3>>>},
      // other shapes a checkpoint of 3d_zero1 resumes under (checkpoint tests)
      {"pp2_tp4", run<pl<ts::mesh<ts::pp<2>, ts::tp<(TP4 ? 4 : 2)>>, ts::interleaved_1f1b<4, 2>>>},
      {"dp4_pp2_zero1", run<pl<ts::mesh<ts::dp<4>, ts::pp<2>>, ts::gpipe<2>, ts::zero<1>>>},
  };
};

}  // namespace parity
