// expect: not_divisible<tessera::quantity::heads, 4, tessera::axis::tp, 3>::value. evaluates to false
#include <tessera/layout/requirements.hpp>
using m = tessera::mesh<tessera::dp<2>, tessera::tp<3>>;
static_assert(tessera::require_divisible<tessera::quantity::heads, 4, m, tessera::axis::tp>());
int main() {}
