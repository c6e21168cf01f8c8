// tessera/core/rss.hpp — this process's peak resident memory (Linux /proc), for the memory the log reports.
#pragma once
#include <malloc.h>

#include <cstdint>
#include <fstream>
#include <string>

namespace tessera {

/// Peak resident memory of this process (VmHWM) in bytes, 0 where unknown.
inline std::int64_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return 0;
}
/// Restarts the peak at the current resident size (Linux: /proc/self/clear_refs, "5"), so that the peak
/// measured is that of training, not of set-up (which may hold whole buffers before ZeRO shards them).
inline void reset_peak_rss() {
  ::malloc_trim(0);  // whole buffers freed by ZeRO's sharding go back to the system first
  std::ofstream f("/proc/self/clear_refs");
  if (f) f << "5";
}
}  // namespace tessera
