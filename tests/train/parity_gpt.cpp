// The layout-parity suite's GPT: learned positions, LayerNorm, GELU, biases, tied embeddings.
#include "parity_plans.hpp"

using model = tessera::gpt<tessera::gpt_config{.vocab = 256, .seq = 32, .layers = 8, .hidden = 64, .heads = 4}>;
int main(int argc, char** argv) { return parity::dispatch(parity::layouts<model, true>::list, argc, argv); }
