// Must not compile: zbv needs an even P (P = 3)
#include "tessera/schedule/types.hpp"
using T = tessera::schedule_table<tessera::zbv<12>, 3>;
int main() { return T::stages; }
