// src/engine/runners.hpp — the pre-compiled engine's runners (tessera/train/engine.hpp): run_plan for each
// (dtype, head size) of engine_builds, one translation unit per dtype so that the two compile in parallel.
#pragma once
#include <tessera/tessera.hpp>

#include <cstddef>
#include <type_traits>
#include <utility>

namespace tessera::engine_library {

using train_detail::plan_runner;

/// run_plan for the head size `head_dim` among the builds of `Precision`; nullptr when not built.
template <precision_kind Precision, std::size_t... I>
plan_runner runner_among(int head_dim, std::index_sequence<I...>) {
  using T = std::conditional_t<Precision == precision_kind::bf16, bf16, float>;
  plan_runner found = nullptr;
  auto consider = [&](auto index) {
    constexpr engine_build build = engine_builds[decltype(index)::value];
    if constexpr (build.precision == Precision) {
      if (build.head_dim == head_dim) found = &train_detail::run_plan<T, build.head_dim>;
    }
  };
  (consider(std::integral_constant<std::size_t, I>{}), ...);
  return found;
}

template <precision_kind Precision>
plan_runner runner_for(int head_dim) {
  return runner_among<Precision>(head_dim, std::make_index_sequence<std::size(engine_builds)>{});
}

// Defined in runners_fp32.cpp and runners_bf16.cpp.
plan_runner fp32_runner(int head_dim);
plan_runner bf16_runner(int head_dim);

}  // namespace tessera::engine_library
