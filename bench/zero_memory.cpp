// bench_zero_memory: one model, dp8, ZeRO 0, 1, 2, 3 (fp32) — argv[1] picks the stage. bench/zero_memory.py
// runs each on 8 ranks for a few steps and tabulates the logged state bytes, the ZeRO formula and the
// peak resident memory per rank (scripts/bench.sh zero).
#include <string_view>

#include <tessera/tessera.hpp>
namespace ts = tessera;

// ~19.6 M parameters: 6 layers of C = 512 (3.1 M each), bytes as tokens.
using model = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 64, .layers = 6, .hidden = 512, .heads = 8}>;
template <int Z>
using plan = ts::plan<model, ts::mesh<ts::dp<8>>, ts::gpipe<1>, ts::zero<Z>>;

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string_view z = argv[1];
  argv[1] = argv[0];  // the stage is not a train flag
  if (z == "0") return ts::train<plan<0>>(argc - 1, argv + 1);
  if (z == "1") return ts::train<plan<1>>(argc - 1, argv + 1);
  if (z == "2") return ts::train<plan<2>>(argc - 1, argv + 1);
  if (z == "3") return ts::train<plan<3>>(argc - 1, argv + 1);
  return 2;
}
