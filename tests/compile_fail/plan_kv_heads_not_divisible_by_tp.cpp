// expect: not_divisible<tessera::quantity::kv_heads, 2, tessera::axis::tp, 4>::value. evaluates to false
#include <tessera/train/plan.hpp>
namespace ts = tessera;
using model = ts::llama<ts::llama_config{.vocab = 256, .seq = 64, .layers = 4, .hidden = 64, .heads = 4, .kv_heads = 2}>;
using plan = ts::plan<model, ts::mesh<ts::tp<4>>, ts::gpipe<1>>;
constexpr auto d = plan::desc;
int main() {}
