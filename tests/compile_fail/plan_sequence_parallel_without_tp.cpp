// expect: ts::sequence_parallel needs a tp axis of size > 1
#include <tessera/train/plan.hpp>
namespace ts = tessera;
using model = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 64, .layers = 4, .hidden = 64, .heads = 4}>;
using plan = ts::plan<model, ts::mesh<ts::dp<2>>, ts::gpipe<1>, ts::sequence_parallel>;
constexpr auto d = plan::desc;
int main() {}
