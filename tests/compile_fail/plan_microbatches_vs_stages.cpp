// expect: zbv<M> at P pipeline ranks: needs M >= 2\*P microbatches
#include <tessera/train/plan.hpp>
namespace ts = tessera;
using model = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 64, .layers = 8, .hidden = 64, .heads = 4}>;
using plan = ts::plan<model, ts::mesh<ts::pp<4>>, ts::zbv<6>>;
constexpr auto d = plan::desc;
int main() {}
