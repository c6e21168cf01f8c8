// tessera/layout/requirements.hpp — compile-time checks that a mesh suits a model or schedule.
//
// `require_divisible<quantity::heads, 4, Mesh, axis::tp>()` fails to compile unless the mesh's tp size
// divides 4; the compiler's note names the quantity and both numbers:
//   static assertion failed: tessera: a model size is not divisible by a mesh axis (see the note)
//   note: 'tessera::diag::not_divisible<tessera::quantity::heads, 4, tessera::axis::tp, 3>::value'
//         evaluates to false          ← "heads (4) not divisible by tp (3)"
#pragma once
#include <cstdint>
#include <string_view>

#include "tessera/core/error.hpp"
#include "tessera/layout/axis.hpp"
#include "tessera/layout/mesh.hpp"

namespace tessera {

/// The model and schedule quantities a mesh axis may split.
enum class quantity : std::uint8_t { heads, kv_heads, hidden, ffn, vocab, seq, layers, microbatches, batch };

constexpr std::string_view quantity_name(quantity q) {
  switch (q) {
    case quantity::heads: return "heads";
    case quantity::kv_heads: return "kv_heads";
    case quantity::hidden: return "hidden";
    case quantity::ffn: return "ffn";
    case quantity::vocab: return "vocab";
    case quantity::seq: return "seq";
    case quantity::layers: return "layers";
    case quantity::microbatches: return "microbatches";
    case quantity::batch: return "batch";
  }
  return "?";
}

namespace diag {
/// false exactly when Value (a `What`) is not divisible by the size of axis A: "What (Value) not
/// divisible by A (Size)".
template <quantity What, long long Value, axis A, int Size>
struct not_divisible {
  static constexpr bool value = Size >= 1 && Value % Size == 0;
};
}  // namespace diag

template <quantity What, long long Value, class Mesh, axis A>
constexpr bool require_divisible() {
  static_assert(diag::not_divisible<What, Value, A, Mesh::size(A)>::value,
                "tessera: a model size is not divisible by a mesh axis (the note below names both numbers)");
  return true;
}

/// Run-time form, for sizes known only at run time: throws usage_error "heads (4) not divisible by tp (3)".
inline void check_divisible(quantity what, long long value, const mesh_desc& m, axis a) {
  const int k = m.size_of(a);
  check(value % k == 0, "tessera: ", quantity_name(what), " (", value, ") not divisible by ", axis_name(a), " (", k, ")");
}

}  // namespace tessera
