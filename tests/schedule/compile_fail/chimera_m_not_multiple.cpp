// Must not compile: chimera needs M % P == 0 (M = 6, P = 4)
#include "tessera/schedule/types.hpp"
using T = tessera::schedule_table<tessera::chimera<6>, 4>;
int main() { return T::stages; }
