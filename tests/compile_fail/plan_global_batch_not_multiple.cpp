// expect: global_batch_not_divisible_by_dp_times_microbatches<6, 4>
#include <tessera/train/plan.hpp>
namespace ts = tessera;
using model = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 64, .layers = 4, .hidden = 64, .heads = 4}>;
using plan = ts::plan<model, ts::mesh<ts::dp<2>>, ts::gpipe<2>, ts::global_batch<6>>;
constexpr auto d = plan::desc;
int main() {}
