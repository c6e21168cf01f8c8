// tessera/optim/adamw.hpp — the optimizer's rules, apart from where its state lives (ZeRO: train/zero_state.hpp):
//
//   learning_rate(cfg, k)      linear warmup over cfg.warmup steps, then cosine from lr to min_lr at cfg.steps
//   clip_scale(norm, max)      global-norm clipping as one factor the update multiplies gradients by
//                              (1 without clipping); fused into the update, no pass of its own
//   step_params(cfg, k, ...)   the per-step scalars of ops::adamw_step
//
// A step whose global norm is not finite is skipped by the caller (nothing updated, AdamW's step counter
// not advanced): see trainer::step.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "tessera/ops/math.hpp"

namespace tessera {

struct adamw_config {
  double lr = 3e-4, min_lr = 0;
  int warmup = 0, steps = 1;  ///< warmup steps; the step the cosine reaches min_lr
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0;
  double grad_clip = 0;       ///< max global norm; <= 0: no clipping
};

/// Learning rate at 0-based step k. @pre cfg.warmup >= 0
inline double learning_rate(const adamw_config& cfg, int k) {
  if (k < cfg.warmup) return cfg.lr * (k + 1) / cfg.warmup;
  const double span = std::max(1, cfg.steps - cfg.warmup);
  return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + std::cos(3.141592653589793 * (k - cfg.warmup) / span));
}

/// The factor gradients are multiplied by so that their global norm is at most max_norm.
inline double clip_scale(double grad_norm, double max_norm) {
  return max_norm > 0 ? std::min(1.0, max_norm / (grad_norm + 1e-6)) : 1.0;
}

/// Scalars of AdamW step number `step` (1-based) at learning rate `lr`, gradients scaled by `grad_scale`.
inline ops::math::adamw_params step_params(const adamw_config& cfg, double lr, std::int64_t step, double grad_scale) {
  ops::math::adamw_params p;
  p.lr = static_cast<float>(lr);
  p.beta1 = static_cast<float>(cfg.beta1);
  p.beta2 = static_cast<float>(cfg.beta2);
  p.eps = static_cast<float>(cfg.eps);
  p.weight_decay = static_cast<float>(cfg.weight_decay);
  p.step = step;
  p.grad_scale = static_cast<float>(grad_scale);
  return p;
}

}  // namespace tessera
