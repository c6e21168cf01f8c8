// Must not compile: dualpipe_v needs M >= 2P (M = 6, P = 4)
#include "tessera/schedule/types.hpp"
using T = decltype(tessera::dualpipe_v<6>::table<4>());
int main() { return T::stages; }
