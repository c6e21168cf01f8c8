// expect: every argument must be a mesh axis
#include <tessera/layout/mesh.hpp>
using bad = tessera::mesh<tessera::dp<2>, int>;
int main() { return bad::world; }
