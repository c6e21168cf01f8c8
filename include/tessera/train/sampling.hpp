// tessera/train/sampling.hpp — choosing the next token from a row of logits.
//
// Greedy (temperature 0): the first column with the largest logit. Otherwise one draw from
// softmax(logits / temperature), from a splitmix64 stream the caller keeps (so a seeded run samples the
// same text on any layout). Only the model's `vocab` columns are candidates: the columns that pad the
// vocabulary to a multiple of tp are never chosen.
#pragma once
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "tessera/core/error.hpp"
#include "tessera/model/params.hpp"

namespace tessera {

/// The generator state a sampling run starts from, for a user's seed.
constexpr std::uint64_t sampling_state(std::uint64_t seed) { return init_detail::splitmix64(seed ^ 0x5a3b1e9d2c4f6a81ull); }

/// @pre 1 <= vocab <= logits.size(). Advances `rng` once when temperature > 0.
inline int pick_token(std::span<const float> logits, int vocab, double temperature, std::uint64_t& rng) {
  check(vocab >= 1 && static_cast<std::size_t>(vocab) <= logits.size(), "tessera: pick_token: vocabulary of ", vocab,
        " for a row of ", logits.size(), " logits");
  int best = 0;
  for (int j = 1; j < vocab; ++j)
    if (logits[static_cast<std::size_t>(j)] > logits[static_cast<std::size_t>(best)]) best = j;
  if (temperature <= 0) return best;
  std::vector<double> p(static_cast<std::size_t>(vocab));
  double z = 0;
  for (int j = 0; j < vocab; ++j)
    z += p[static_cast<std::size_t>(j)] =
        std::exp((logits[static_cast<std::size_t>(j)] - logits[static_cast<std::size_t>(best)]) / temperature);
  rng = init_detail::splitmix64(rng);
  double u = (static_cast<double>(rng >> 11) * (1.0 / 9007199254740992.0)) * z;
  for (int j = 0; j < vocab; ++j) {
    u -= p[static_cast<std::size_t>(j)];
    if (u < 0) return j;
  }
  return best;
}

}  // namespace tessera
