// Tutorial 2: a LLaMA-style model and its whole layout as types, trained by ts::train.
// docs/tutorial_train.md walks through it; CI builds it and trains it for a few steps on 4 ranks.
#include <tessera/tessera.hpp>
namespace ts = tessera;

// The model: a C++20 aggregate as a template argument. Unset fields keep the family's defaults
// (RMSNorm, SwiGLU, RoPE, untied head, no biases for LLaMA).
using model = ts::llama<ts::llama_config{.vocab = 256, .seq = 32, .layers = 4, .hidden = 64, .heads = 4,
                                         .kv_heads = 2, .ffn = 128}>;

// Everything the compiler can check is checked here: 4 heads and 2 kv heads split over tp = 2,
// 4 layers over 2 stages x 2 chunks of the interleaved schedule, 4 microbatches for 2 stages.
using plan = ts::plan<model,
                      ts::mesh<ts::pp<2>, ts::tp<2>>,
                      ts::interleaved_1f1b<4, 2>,
                      ts::sequence_parallel>;

static_assert(plan::desc.layers_of(0) == 1 && plan::desc.model_stages == 4);  // 4 model stages, 1 layer each

int main(int argc, char** argv) { return ts::train<plan>(argc, argv); }
