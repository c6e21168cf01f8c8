// expect: not_divisible<tessera::quantity::ffn, 100, tessera::axis::tp, 8>::value. evaluates to false
#include <tessera/train/plan.hpp>
namespace ts = tessera;
using model = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 64, .layers = 4, .hidden = 64, .heads = 8, .ffn = 100}>;
using plan = ts::plan<model, ts::mesh<ts::tp<8>>, ts::gpipe<1>>;
constexpr auto d = plan::desc;
int main() {}
