// expect: size must be at least 1.*|axis_size_at_least_1<tessera::axis::tp, 0>
#include <tessera/layout/mesh.hpp>
using bad = tessera::mesh<tessera::dp<2>, tessera::tp<0>>;
int main() { return bad::world; }
