// tests/fuzz/fuzz_scratch.hpp — the harnesses' input as a file (the readers take paths).
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace fuzz {
/// A file under /dev/shm holding `size` bytes of `data`; one per process.
inline std::string scratch_file(const char* name, const std::uint8_t* data, std::size_t size) {
  static const std::string dir = [] {
    const std::string d = "/dev/shm/tessera_fuzz_" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data),
                                                                 static_cast<std::streamsize>(size));
  return path;
}
}  // namespace fuzz
