// expect: layers_not_divisible_by_pipeline_stages_times_chunks<6, 4>::value
#include <tessera/train/plan.hpp>
namespace ts = tessera;
using model = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 64, .layers = 6, .hidden = 64, .heads = 4}>;
using plan = ts::plan<model, ts::mesh<ts::pp<2>>, ts::interleaved_1f1b<4, 2>>;
constexpr auto d = plan::desc;
int main() {}
