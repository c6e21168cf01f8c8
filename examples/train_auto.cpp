// examples/train_auto.cpp — the layout chosen by the compiler: ts::auto_plan searches every mesh, schedule,
// microbatch size, ZeRO stage, recompute and sequence-parallel choice of the model on the cluster with the
// cost model (tessera/plan) while this file compiles, and ts::train runs the plan it chose.
//
//   mpirun -np 4 ./train_auto --data data/corpus.txt          (the chosen plan: TESSERA_PRINT_PLANS=1 or
//                                                              tessera_plan --gpu host --gpus 4 ...)
#include <tessera/plan/auto_plan.hpp>
#include <tessera/tessera.hpp>
namespace ts = tessera;

using model = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 64, .layers = 4, .hidden = 128, .heads = 4}>;
using plan = ts::auto_plan<model, ts::cluster<ts::hw::host, 4, 1>, 8>;  // 4 host ranks, 8 sequences a step

int main(int argc, char** argv) { return ts::train<plan>(argc, argv); }
