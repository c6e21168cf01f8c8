// tests/support/input_files.hpp — for tests of what bad input meets: the usage_error a call throws, and
// files in a per-process temporary directory.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tessera/core/error.hpp"

namespace tessera_test {

/// The usage_error message of f(), or "" when it does not throw one.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const tessera::usage_error& e) {
    return e.what();
  }
  return "";
}

/// `name` in the directory <tmp>/<prefix>_<pid> (created).
inline std::string tmp_path(const std::string& prefix, const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / (prefix + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

/// Writes `bytes` to `path`, replacing it.
inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

}  // namespace tessera_test
