// tessera/ops/vocab_slice.hpp — the vocabulary columns one rank holds for the softmax cross-entropy, and
// the "no tensor-parallel group" marker; shared by the host and CUDA cross-entropy.
//
// logits [N × V_local] (rows ld apart) hold global vocabulary columns [v0, v0 + V_local); columns at or
// beyond `vocab` (padding added to make the vocabulary divisible by tp) are ignored.
#pragma once
#include <algorithm>
#include <cstdint>

namespace tessera::ops {

using i64 = std::int64_t;

/// Stands for "no tensor-parallel group": the whole vocabulary is local.
struct no_comm {};

struct vocab_slice {
  i64 V_local = 0;  ///< columns held here
  i64 v0 = 0;       ///< global index of the first
  i64 vocab = 0;    ///< true vocabulary size (columns ≥ vocab are padding); 0 = v0 + V_local
  i64 ld = 0;       ///< row stride of logits (0 = V_local)
};

namespace vocab_detail {
/// The slice with its defaults filled in (vocab = v0 + V_local, ld = V_local).
inline vocab_slice normalise(vocab_slice v) {
  if (v.vocab == 0) v.vocab = v.v0 + v.V_local;
  if (v.ld == 0) v.ld = v.V_local;
  return v;
}
/// Columns of this slice below the true vocabulary size (the rest are padding).
inline i64 valid_columns(const vocab_slice& v) { return std::clamp<i64>(v.vocab - v.v0, 0, v.V_local); }
}  // namespace vocab_detail

}  // namespace tessera::ops
