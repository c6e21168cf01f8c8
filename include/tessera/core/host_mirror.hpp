// tessera/core/host_mirror.hpp — host access to elements in a system's memory (Kokkos'
// create_mirror_view): on a system whose memory the host can touch (host_system) the mirror *is* those
// elements, with no copy; on any other system it is a host copy, and commit() writes it back.
//
//   host_mirror<S, const T> in(p, n);   // read n elements at p (S's memory)
//   host_mirror<S, T> out(p, n);        // read, modify on the host, then out.commit()
//   host_mirror<S, T> out(p, n, sys);   // the copies issued on the system value sys (default: S{})
//
// Checkpoints, HF import/export and the initial values read and write parameters this way, so they work
// unchanged whatever system holds the parameters.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace tessera {

template <class S, class T>
class host_mirror {
  using E = std::remove_const_t<T>;

 public:
  host_mirror() = default;
  /// @pre p points to n elements of S's memory (or n == 0).
  host_mirror(T* p, std::size_t n, S sys = S{}) : sys_(sys), src_(p), n_(n) {
    if constexpr (S::host_accessible) {
      view_ = p;
    } else {
      copy_.resize(n);
      if (n > 0) sys_.to_host(copy_.data(), p, static_cast<std::int64_t>(n));
      view_ = copy_.data();
    }
  }
  host_mirror(const host_mirror&) = delete;
  host_mirror& operator=(const host_mirror&) = delete;
  host_mirror(host_mirror&&) noexcept = default;  // a moved vector keeps its elements where they are
  host_mirror& operator=(host_mirror&&) noexcept = default;

  T* data() const { return view_; }
  std::size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  T& operator[](std::size_t i) const { return view_[i]; }
  T* begin() const { return view_; }
  T* end() const { return view_ + n_; }

  /// @post S's memory holds the mirror's elements (nothing to do where the mirror is that memory).
  void commit()
    requires(!std::is_const_v<T>)
  {
    if constexpr (!S::host_accessible)
      if (n_ > 0) sys_.from_host(src_, copy_.data(), static_cast<std::int64_t>(n_));
  }

 private:
  S sys_{};
  T* src_ = nullptr;
  std::size_t n_ = 0;
  T* view_ = nullptr;
  std::vector<E> copy_;
};

/// A mirror of a whole buffer (anything with data() and size()).
template <class S, class B>
auto mirror_of(B& b, S sys = S{}) {
  using T = std::remove_reference_t<decltype(*b.data())>;
  return host_mirror<S, T>(b.data(), static_cast<std::size_t>(b.size()), sys);
}

}  // namespace tessera
