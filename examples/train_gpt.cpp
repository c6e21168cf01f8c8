// examples/train_gpt.cpp — the main job: a small GPT trained on data/corpus.txt (bytes as tokens) across
// 8 MPI ranks, 2-way data × 2-way pipeline (1F1B, 4 microbatches) × 2-way tensor parallel with sequence
// parallelism and ZeRO-1 (optimizer state sharded over dp). Every flag of contract §2 works;
// scripts/main.sh runs it with a sensible set.
//
//   mpirun -np 8 ./train_gpt --data data/corpus.txt --steps 200 --batch 16 --lr 1e-3 --warmup 20
#include <tessera/tessera.hpp>
namespace ts = tessera;

using model = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 64, .layers = 4, .hidden = 128, .heads = 4}>;
using plan = ts::plan<model,
                      ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>,  // outermost first; tp varies fastest
                      ts::one_f_one_b<4>,                         // pipeline schedule <microbatches>
                      ts::sequence_parallel, ts::zero<1>>;        // policies, any order

int main(int argc, char** argv) { return ts::train<plan>(argc, argv); }
