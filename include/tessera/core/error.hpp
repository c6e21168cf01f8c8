// tessera/core/error.hpp — errors a user can act on.
//
// `usage_error` is bad input (flags, sizes, files, a mesh that does not match the MPI world): the
// program reports it and exits with code 2. `check(cond, parts...)` builds the message from its parts.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace tessera {

/// Exit code of every run that stops on bad input.
inline constexpr int usage_exit_code = 2;

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class... Parts>
std::string cat(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  return os.str();
}

/// Throw usage_error(cat(parts...)) unless cond holds.
template <class... Parts>
void check(bool cond, Parts&&... parts) {
  if (!cond) throw usage_error(cat(std::forward<Parts>(parts)...));
}

/// Throw std::logic_error: a broken internal invariant (a bug in tessera, not in the input).
template <class... Parts>
[[noreturn]] void internal_error(Parts&&... parts) {
  throw std::logic_error(cat("tessera internal error: ", std::forward<Parts>(parts)...));
}

}  // namespace tessera
