// The compile-time benchmark's user program: LLaMA-7B on a dp4 × pp4 × tp8 mesh (128 ranks) with the
// interleaved schedule, ZeRO-1, bf16, selective recompute and sequence parallelism — every layer of the
// library instantiated for one full 3D plan. scripts/compile_time.sh times it with the README's lines.
#include <tessera/tessera.hpp>
namespace ts = tessera;

using model = ts::llama<ts::llama_config{.vocab = 32000, .seq = 4096, .layers = 32, .hidden = 4096, .heads = 32,
                                         .ffn = 11008}>;
using plan = ts::plan<model, ts::mesh<ts::dp<4>, ts::pp<4>, ts::tp<8>>, ts::interleaved_1f1b<16, 2>, ts::zero<1>,
                      ts::precision<ts::bf16>, ts::recompute<ts::selective>, ts::sequence_parallel>;

int main(int argc, char** argv) { return ts::train<plan>(argc, argv); }
