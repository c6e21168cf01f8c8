// Must not compile: zbv needs M >= 2P (M = 3, P = 4)
#include "tessera/schedule/types.hpp"
using T = tessera::schedule_table<tessera::zbv<3>, 4>;
int main() { return T::stages; }
