// expect: tessera::auto_plan: no layout of this model divides this cluster and batch
#include <tessera/plan/auto_plan.hpp>
namespace ts = tessera;
using model = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 64, .layers = 3, .hidden = 96, .heads = 3}>;
using plan = ts::auto_plan<model, ts::cluster<ts::hw::host, 4, 1>, 2>;
constexpr auto d = plan::desc;
int main() {}
