// expect: two plans have the same mesh size
#include <tessera/train/plan.hpp>
namespace ts = tessera;
using model = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 64, .layers = 4, .hidden = 64, .heads = 4}>;
using a = ts::plan<model, ts::mesh<ts::dp<2>>, ts::gpipe<1>>;
using b = ts::plan<model, ts::mesh<ts::tp<2>>, ts::gpipe<1>>;
constexpr auto sizes = ts::elastic<a, b>::world_sizes;
int main() {}
