// examples/train_elastic.cpp — one program for 8, 4 or 2 ranks: the main job's GPT with a plan for each
// world size (ts::elastic). Under scripts/tessera-run --min-np 2, a job that loses ranks and cannot get
// them back goes on with fewer, from its last checkpoint, resharded on load; the global batch stays the
// first plan's (8 sequences unless --batch says otherwise), so the losses are the same up to rounding.
//
//   scripts/tessera-run --np 8 --min-np 2 -- ./train_elastic --data data/corpus.txt --save runs/elastic
#include <tessera/tessera.hpp>
namespace ts = tessera;

using model = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 64, .layers = 4, .hidden = 128, .heads = 4}>;
using on_8 = ts::plan<model, ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>, ts::one_f_one_b<4>, ts::sequence_parallel,
                      ts::zero<1>>;
using on_4 = ts::plan<model, ts::mesh<ts::dp<2>, ts::tp<2>>, ts::gpipe<4>, ts::sequence_parallel, ts::zero<1>>;
using on_2 = ts::plan<model, ts::mesh<ts::dp<2>>, ts::gpipe<4>, ts::zero<1>>;

int main(int argc, char** argv) { return ts::train<ts::elastic<on_8, on_4, on_2>>(argc, argv); }
