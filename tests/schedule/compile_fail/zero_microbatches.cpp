// Must not compile: a schedule needs M >= 1 (M = 0)
#include "tessera/schedule/types.hpp"
using T = tessera::schedule_table<tessera::one_f_one_b<0>, 4>;
int main() { return T::stages; }
