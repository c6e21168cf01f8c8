// expect: every plan must train the same model
#include <tessera/train/plan.hpp>
namespace ts = tessera;
using small = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 64, .layers = 4, .hidden = 64, .heads = 4}>;
using large = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 64, .layers = 8, .hidden = 64, .heads = 4}>;
using a = ts::plan<small, ts::mesh<ts::dp<2>>, ts::gpipe<1>>;
using b = ts::plan<large, ts::mesh<>, ts::gpipe<1>>;
constexpr auto sizes = ts::elastic<a, b>::world_sizes;
int main() {}
