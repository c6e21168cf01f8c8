// expect: no_plan_fits_in_device_memory<[0-9]+, 4096>::value
#include <tessera/plan/auto_plan.hpp>
namespace ts = tessera;
using model = ts::gpt<ts::gpt_config{.vocab = 51200, .seq = 2048, .layers = 96, .hidden = 12288, .heads = 96}>;
using plan = ts::auto_plan<model, ts::cluster<ts::hw::host, 2, 1>, 8>;
constexpr auto d = plan::desc;
int main() {}
