// tessera/layout/axis.hpp — the three mesh axes: data (dp), pipeline (pp), tensor (tp).
#pragma once
#include <array>
#include <cstdint>
#include <string_view>

namespace tessera {

/// A mesh axis. The enum value is the axis' index in every per-axis array of the library.
enum class axis : std::uint8_t { dp = 0, pp = 1, tp = 2 };
inline constexpr int num_axes = 3;
inline constexpr std::array<axis, num_axes> all_axes{axis::dp, axis::pp, axis::tp};

constexpr std::string_view axis_name(axis a) {
  switch (a) {
    case axis::dp: return "dp";
    case axis::pp: return "pp";
    case axis::tp: return "tp";
  }
  return "?";
}
constexpr int index(axis a) { return static_cast<int>(a); }

/// A set of mesh axes (a bit per axis), e.g. `axes::dp | axes::tp`.
struct axis_set {
  std::uint8_t bits = 0;
  constexpr axis_set() = default;
  constexpr axis_set(axis a) : bits(static_cast<std::uint8_t>(1u << index(a))) {}  // NOLINT: implicit on purpose
  static constexpr axis_set from_bits(unsigned b) {
    axis_set s;
    s.bits = static_cast<std::uint8_t>(b & 7u);
    return s;
  }
  constexpr bool contains(axis a) const { return (bits >> index(a)) & 1u; }
  constexpr bool empty() const { return bits == 0; }
  friend constexpr axis_set operator|(axis_set a, axis_set b) { return from_bits(a.bits | b.bits); }
  friend constexpr axis_set operator&(axis_set a, axis_set b) { return from_bits(a.bits & b.bits); }
  friend constexpr bool operator==(axis_set, axis_set) = default;
};
constexpr axis_set operator|(axis a, axis b) { return axis_set(a) | axis_set(b); }

namespace axes {
inline constexpr axis_set none{};
inline constexpr axis_set dp{axis::dp};
inline constexpr axis_set pp{axis::pp};
inline constexpr axis_set tp{axis::tp};
inline constexpr axis_set all = axis_set::from_bits(7);
}  // namespace axes

/// Number of distinct axis sets (including the empty set and all three axes).
inline constexpr int num_axis_sets = 8;

namespace diag {
// Compile-time diagnostics: the template arguments name the axis and the numbers, so the compiler's
// "'...<tessera::axis::tp, 0>::value' evaluates to false" note carries them next to the message.
template <axis A, long long Size>
struct axis_size_at_least_1 { static constexpr bool value = Size >= 1; };
template <axis A, int Count>
struct axis_listed_at_most_once { static constexpr bool value = Count <= 1; };
}  // namespace diag

namespace detail {
template <axis A, int N>
struct axis_tag {
  static_assert(diag::axis_size_at_least_1<A, N>::value,
                "tessera mesh axis: size must be at least 1 (the axis and size are named below)");
  static constexpr axis kind = A;
  static constexpr int size = N;
};
}  // namespace detail

/// Data-parallel axis of N ranks.
template <int N> struct dp : detail::axis_tag<axis::dp, N> {};
/// Pipeline-parallel axis of N ranks (stages).
template <int N> struct pp : detail::axis_tag<axis::pp, N> {};
/// Tensor-parallel axis of N ranks.
template <int N> struct tp : detail::axis_tag<axis::tp, N> {};

template <class T> inline constexpr bool is_mesh_axis_v = false;
template <int N> inline constexpr bool is_mesh_axis_v<dp<N>> = true;
template <int N> inline constexpr bool is_mesh_axis_v<pp<N>> = true;
template <int N> inline constexpr bool is_mesh_axis_v<tp<N>> = true;

}  // namespace tessera
