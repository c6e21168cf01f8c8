// expect: hidden_not_divisible_by_heads<65, 4>::value. evaluates to false
#include <tessera/model/config.hpp>
namespace ts = tessera;
using model = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 64, .layers = 4, .hidden = 65, .heads = 4}>;
static_assert(model::checked);
int main() {}
