// tessera/train/engine.hpp — the training engine as a value-level interface, and the pre-compiled engine.
//
// ts::train<plan> reduces the plan types to values — each plan's plan_desc and its schedule table's
// program — and hands them to the engine, which is instantiated per (dtype, head size) only: nothing in it
// depends on the plan's type. So the engine can be compiled once, into libtessera_engine.so (src/engine/,
// CMake option TESSERA_PREBUILT_ENGINE), like fmt's compiled library: a program compiled with the README's
// line then holds its plan and a call, not the trainer, CLI11, JSON, checkpoints and HF I/O, and compiles
// in about a third of the time (docs/training.md §12). A build with nvcc also makes the CUDA engine
// (libtessera_engine_cuda.so: the same engine with the CUDA trainer), which nvcc-compiled programs load.
//
// The README's line links no tessera library, so the program finds the engine through the header the
// build writes, include/tessera/generated/prebuilt_engine.hpp (not in git), which names the .so's path,
// and loads it at run time (dlopen: part of glibc, no link flag); nvcc programs look for
// prebuilt_cuda_engine.hpp instead. Without that header, with -DTESSERA_HEADER_ONLY, or for a
// (dtype, head size) the engine was not built for, ts::train compiles the engine into the program as
// before. The results are the same either way — bit for bit with g++ (the same code and the project's
// flags); nvcc builds host code without -march=native, which moves the last bits.
#pragma once
#include <cstdint>
#include <cstdio>
#include <type_traits>
#include <vector>

#include "tessera/schedule/action.hpp"
#include "tessera/train/plan.hpp"

#if !defined(TESSERA_HEADER_ONLY) && defined(__linux__) && defined(__CUDACC__) && \
    __has_include("tessera/generated/prebuilt_cuda_engine.hpp")
#include "tessera/generated/prebuilt_cuda_engine.hpp"  // written by the build: TESSERA_PREBUILT_CUDA_ENGINE_PATH
#define TESSERA_ENGINE_LIBRARY TESSERA_PREBUILT_CUDA_ENGINE_PATH
#define TESSERA_ENGINE_HEADER "include/tessera/generated/prebuilt_cuda_engine.hpp"
#define TESSERA_ENGINE_TARGET "tessera_engine_cuda"
#elif !defined(TESSERA_HEADER_ONLY) && defined(__linux__) && !defined(__CUDACC__) && \
    __has_include("tessera/generated/prebuilt_engine.hpp")
#include "tessera/generated/prebuilt_engine.hpp"  // written by the build: TESSERA_PREBUILT_ENGINE_PATH
#define TESSERA_ENGINE_LIBRARY TESSERA_PREBUILT_ENGINE_PATH
#define TESSERA_ENGINE_HEADER "include/tessera/generated/prebuilt_engine.hpp"
#define TESSERA_ENGINE_TARGET "tessera_engine"
#endif
#if defined(TESSERA_ENGINE_LIBRARY)
#include <dlfcn.h>
#define TESSERA_HAS_PREBUILT_ENGINE 1
#else
#define TESSERA_HAS_PREBUILT_ENGINE 0
#endif

namespace tessera {

/// A pipeline rank's actions (the plan's constexpr schedule table, program_of_rank<Plan>).
using program_fn = std::vector<action> (*)(int pp_rank);

/// One plan of a program, as values.
struct engine_plan {
  const plan_desc* desc = nullptr;
  program_fn program = nullptr;
};

/// What ts::train hands the engine: the program's plans (one; several for ts::elastic, the first giving
/// the default batch) and its command line.
struct engine_request {
  std::uint64_t abi = 0;  ///< engine_abi() of the caller's headers
  int plan_count = 0;
  const engine_plan* plans = nullptr;
  bool elastic = false;
  int argc = 0;
  char** argv = nullptr;
};

/// The (dtype, head size) pairs the pre-compiled engine is built for: GPT-2-sized heads (64), LLaMA's
/// (128) and the small examples' (32), each in fp32 and bf16. Other head sizes compile the engine into
/// the program.
struct engine_build {
  precision_kind precision;
  int head_dim;
};
inline constexpr engine_build engine_builds[] = {
    {precision_kind::fp32, 32}, {precision_kind::fp32, 64}, {precision_kind::fp32, 128},
    {precision_kind::bf16, 32}, {precision_kind::bf16, 64}, {precision_kind::bf16, 128}};

constexpr bool engine_is_built_for(precision_kind precision, int head_dim) {
  for (const engine_build& b : engine_builds)
    if (b.precision == precision && b.head_dim == head_dim) return true;
  return false;
}

/// Bumped whenever the meaning of a value crossing the engine boundary changes without its size changing.
inline constexpr std::uint64_t engine_abi_version = 1;

/// A fingerprint of everything that crosses the engine boundary: the layouts of the plan values, the
/// request, the standard library's vector, the compiler. A program whose headers differ from the engine's
/// in any of them is refused (exit 2) instead of misreading the engine's memory.
constexpr std::uint64_t engine_abi() {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a over the sizes and alignments
  auto mix = [&h](std::uint64_t v) {
    for (int i = 0; i < 8; ++i) h = (h ^ ((v >> (8 * i)) & 0xff)) * 1099511628211ull;
  };
  mix(engine_abi_version);
  mix(sizeof(plan_desc)), mix(alignof(plan_desc)), mix(sizeof(model_desc)), mix(sizeof(mesh_desc));
  mix(sizeof(schedule_shape)), mix(sizeof(policy_desc)), mix(sizeof(action)), mix(max_model_stages);
  mix(sizeof(engine_plan)), mix(sizeof(engine_request)), mix(sizeof(std::vector<action>));
#if defined(__GLIBCXX__)
  mix(__GLIBCXX__), mix(_GLIBCXX_USE_CXX11_ABI);
#endif
  mix(__GNUC__);
#if defined(__CUDACC__)
  mix(0xC0DA);  // the CUDA engine (nvcc) is another library than the host one (g++)
#endif
  return h;
}

#if TESSERA_HAS_PREBUILT_ENGINE
inline constexpr bool have_prebuilt_engine = true;
inline constexpr const char* prebuilt_engine_path = TESSERA_ENGINE_LIBRARY;
#else
inline constexpr bool have_prebuilt_engine = false;
inline constexpr const char* prebuilt_engine_path = "";
#endif

/// Loads the engine at `path` and trains. Returns the program's exit code; 2 with a message naming the
/// file when it cannot be loaded or was built from other headers.
inline int call_engine_library([[maybe_unused]] const char* path, [[maybe_unused]] const engine_request& request) {
#if TESSERA_HAS_PREBUILT_ENGINE
  const char* fix = "rebuild it (cmake --build <build> --target " TESSERA_ENGINE_TARGET "), or compile with "
                    "-DTESSERA_HEADER_ONLY to build the engine into the program";
  void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    std::fprintf(stderr, "tessera: cannot load the pre-compiled engine %s (named by " TESSERA_ENGINE_HEADER "): %s; %s\n",
                 path, dlerror(), fix);
    return 2;
  }
  using abi_fn = std::uint64_t (*)();
  using train_fn = int (*)(const engine_request*);
  const auto abi = reinterpret_cast<abi_fn>(dlsym(lib, "tessera_engine_abi"));
  const auto train = reinterpret_cast<train_fn>(dlsym(lib, "tessera_engine_train"));
  if (!abi || !train || abi() != request.abi) {
    std::fprintf(stderr, "tessera: the pre-compiled engine %s was built from other tessera headers (engine ABI %llx, this "
                         "program's %llx); %s\n", path, abi ? static_cast<unsigned long long>(abi()) : 0ull,
                 static_cast<unsigned long long>(request.abi), fix);
    return 2;
  }
  return train(&request);  // the library stays loaded: MPI and OpenMP threads live in it until exit
#else
  return 2;
#endif
}

}  // namespace tessera
