// tessera/ops/cuda/cudnn_sdpa.hpp — opens libtessera_cudnn_sdpa.so (cuDNN's fused flash attention behind the
// C interface of cudnn_sdpa_abi.h) at run time and says why when it cannot.
//
// Where the library is looked for, first found wins:
//   1. the environment variable TESSERA_CUDNN_SDPA: a path, or "off" (never use cuDNN attention);
//   2. TESSERA_CUDNN_SDPA_PATH, defined by the build for the project's own programs or by
//      include/tessera/generated/cudnn_sdpa.hpp (written when the build made the library);
//   3. libtessera_cudnn_sdpa.so on the dynamic loader's path.
// Plain C++ (no CUDA compiler needed): the loader and the problem description are tested on any host.
#pragma once
#include <dlfcn.h>

#include <cstdlib>
#include <string>

#include "tessera/ops/attention_shape.hpp"
#include "tessera/ops/cuda/cudnn_sdpa_abi.h"

#if defined(__has_include)
#if __has_include("tessera/generated/cudnn_sdpa.hpp") && !defined(TESSERA_CUDNN_SDPA_PATH)
#include "tessera/generated/cudnn_sdpa.hpp"
#endif
#endif

namespace tessera::ops::cudnn_sdpa {

/// The library's entry points, or why there are none.
struct library {
  bool ok = false;
  std::string why;      ///< empty when ok
  std::string path;     ///< what was opened (or tried last)
  std::string version;  ///< "cuDNN 9.19.0, frontend 1.32.0" when ok
  int (*validate)(const tessera_sdpa_problem*, int, int, char*, size_t) = nullptr;
  int (*forward)(const tessera_sdpa_problem*, const void*, const void*, const void*, void*, float*, void*, char*,
                 size_t) = nullptr;
  int (*backward)(const tessera_sdpa_problem*, const void*, const void*, const void*, const void*, const void*,
                  const float*, void*, void*, void*, void*, char*, size_t) = nullptr;
};

/// Opens `path` and resolves the interface. @post ok, or why names the file and what is wrong with it.
inline library open_library(const std::string& path) {
  library l;
  l.path = path;
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = dlerror();
    l.why = "cannot load " + path + ": " + (e ? e : "dlopen failed");
    return l;
  }
  const auto abi = reinterpret_cast<int (*)()>(dlsym(h, "tessera_cudnn_sdpa_abi"));
  const auto version = reinterpret_cast<const char* (*)()>(dlsym(h, "tessera_cudnn_sdpa_version"));
  l.validate = reinterpret_cast<decltype(l.validate)>(dlsym(h, "tessera_cudnn_sdpa_validate"));
  l.forward = reinterpret_cast<decltype(l.forward)>(dlsym(h, "tessera_cudnn_sdpa_forward"));
  l.backward = reinterpret_cast<decltype(l.backward)>(dlsym(h, "tessera_cudnn_sdpa_backward"));
  if (!abi || !version || !l.validate || !l.forward || !l.backward) {
    l.why = path + " lacks the tessera_cudnn_sdpa_* entry points (not built from src/cudnn/sdpa.cpp?)";
    return l;
  }
  if (abi() != TESSERA_SDPA_ABI_VERSION) {
    l.why = path + " has interface version " + std::to_string(abi()) + ", these headers " +
            std::to_string(TESSERA_SDPA_ABI_VERSION) + ": rebuild it (target tessera_cudnn_sdpa)";
    return l;
  }
  l.version = version();
  l.ok = true;
  return l;
}

/// Where this process looks for the library ("" with TESSERA_CUDNN_SDPA=off).
inline std::string library_path() {
  if (const char* env = std::getenv("TESSERA_CUDNN_SDPA"); env && *env)
    return std::string(env) == "off" ? std::string() : std::string(env);
#ifdef TESSERA_CUDNN_SDPA_PATH
  return TESSERA_CUDNN_SDPA_PATH;
#else
  return "libtessera_cudnn_sdpa.so";
#endif
}

/// The process's library, opened on first use.
inline const library& process() {
  static const library l = [] {
    const std::string path = library_path();
    if (path.empty()) {
      library off;
      off.why = "TESSERA_CUDNN_SDPA=off";
      return off;
    }
    return open_library(path);
  }();
  return l;
}

/// cuDNN's description of tessera's attention problem `sh` (head size D) with this scale. Deterministic
/// backward always: training runs repeat bit for bit.
inline tessera_sdpa_problem problem(const attention_shape& sh, long long D, float scale) {
  return tessera_sdpa_problem{sh.B, sh.Hq, sh.Hkv, sh.T, D, sh.ld_q, sh.ld_k, sh.ld_v, sh.ld_o, scale, 1};
}

/// "B=2 Hq=8 Hkv=2 T=256 D=128", for messages.
inline std::string describe(const tessera_sdpa_problem& p) {
  return "B=" + std::to_string(p.B) + " Hq=" + std::to_string(p.Hq) + " Hkv=" + std::to_string(p.Hkv) +
         " T=" + std::to_string(p.T) + " D=" + std::to_string(p.D);
}

}  // namespace tessera::ops::cudnn_sdpa
