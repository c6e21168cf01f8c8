// The compile-time layout search (ts::auto_plan) of GPT-3 175B on 1,024 A100s, against the same plan written
// by hand: scripts/compile_time.sh --planner compiles this file both ways (-DTESSERA_HAND_PLAN) and prints
// the difference, which is what the search costs a translation unit.
#include "tessera/plan/auto_plan.hpp"
namespace ts = tessera;
using gpt175 = ts::gpt<ts::gpt_config{.vocab = 51200, .seq = 2048, .layers = 96, .hidden = 12288, .heads = 96}>;
#ifndef TESSERA_HAND_PLAN
using plan = ts::auto_plan<gpt175, ts::cluster<ts::hw::a100_80g, 8, 128>, 1536>;
#else
using plan = ts::plan<gpt175, ts::mesh<ts::dp<32>, ts::pp<8>, ts::tp<4>>, ts::interleaved_1f1b<48, 4>, ts::zero<1>,
                      ts::precision<ts::bf16>, ts::recompute<ts::selective>, ts::sequence_parallel,
                      ts::global_batch<1536>>;
#endif
static_assert(plan::desc.pp == 8 && plan::desc.tp == 4 && plan::desc.schedule.chunks == 4);
int main() {}
