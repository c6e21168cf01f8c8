// expect: tessera::mesh: axis dp is listed more than once
#include <tessera/layout/mesh.hpp>
using bad = tessera::mesh<tessera::dp<2>, tessera::tp<2>, tessera::dp<4>>;
int main() { return bad::world; }
