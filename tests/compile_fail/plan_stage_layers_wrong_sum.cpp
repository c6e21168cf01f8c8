// expect: stage_layers_sum_differs_from_layers<7, 8>::value
#include <tessera/train/plan.hpp>
namespace ts = tessera;
using model = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 64, .layers = 8, .hidden = 64, .heads = 4}>;
using plan = ts::plan<model, ts::mesh<ts::pp<2>>, ts::one_f_one_b<4>, ts::stage_layers<3, 4>>;
constexpr auto d = plan::desc;
int main() {}
