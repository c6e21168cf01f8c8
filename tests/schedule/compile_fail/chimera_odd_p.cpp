// Must not compile: chimera needs an even P (P = 3)
#include "tessera/schedule/types.hpp"
using T = tessera::schedule_table<tessera::chimera<6>, 3>;
int main() { return T::stages; }
