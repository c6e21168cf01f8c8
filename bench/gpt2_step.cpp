// bench/gpt2_step — tessera's side of the GPT-2 124M training-step benchmark (scripts/bench.sh step):
// vocab 50304, T = 64, 12 layers, C = 768, 12 heads, tied embeddings, fp32, AdamW. argv[1] picks the
// layout: one (1 rank), dp2, pp2 (1F1B, 2 microbatches), tp2 (2 ranks each), one_bf16 (1 rank, bf16); the rest
// are ts::train flags.
#include <tessera/tessera.hpp>

#include <cstdio>
#include <string_view>

namespace ts = tessera;
using gpt2 = ts::gpt<ts::gpt_config{.vocab = 50304, .seq = 64, .layers = 12, .hidden = 768, .heads = 12}>;

template <class Plan>
int run(int argc, char** argv) { return ts::train<Plan>(argc, argv); }

int main(int argc, char** argv) {
  struct entry {
    const char* name;
    int (*fn)(int, char**);
  };
  static constexpr entry plans[] = {
      {"one", run<ts::plan<gpt2, ts::mesh<>, ts::gpipe<1>>>},
      {"dp2", run<ts::plan<gpt2, ts::mesh<ts::dp<2>>, ts::gpipe<1>>>},
      {"pp2", run<ts::plan<gpt2, ts::mesh<ts::pp<2>>, ts::one_f_one_b<2>>>},
      {"tp2", run<ts::plan<gpt2, ts::mesh<ts::tp<2>>, ts::gpipe<1>>>},
      // bf16 storage and activations (GEMMs on AVX512-BF16 through oneDNN where the CPU has it), fp32 master
      // weights, moments and gradients
      {"one_bf16", run<ts::plan<gpt2, ts::mesh<>, ts::gpipe<1>, ts::precision<ts::bf16>>>},
  };
  if (argc >= 2)
    for (const entry& e : plans)
      if (std::string_view(argv[1]) == e.name) {
        argv[1] = argv[0];
        return e.fn(argc - 1, argv + 1);
      }
  std::fprintf(stderr, "usage: %s one|dp2|pp2|tp2|one_bf16 [ts::train flags]\n", argv[0]);
  return 2;
}
