// Must not compile: dualpipe_v needs M >= 2P at odd P too (M = 5, P = 3); odd P itself is accepted
#include "tessera/schedule/types.hpp"
using T = tessera::schedule_table<tessera::dualpipe_v<5>, 3>;
int main() { return T::stages; }
