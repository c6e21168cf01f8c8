// The layout-parity suite's LLaMA: RoPE, RMSNorm, SwiGLU, grouped-query attention (4 heads, 2 kv heads),
// untied head, no biases.
#include "parity_plans.hpp"

using model = tessera::llama<tessera::llama_config{
    .vocab = 256, .seq = 32, .layers = 8, .hidden = 64, .heads = 4, .kv_heads = 2, .ffn = 96}>;
int main(int argc, char** argv) { return parity::dispatch(parity::layouts<model, false>::list, argc, argv); }
