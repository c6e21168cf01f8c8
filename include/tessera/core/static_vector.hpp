// tessera/core/static_vector.hpp — a constexpr vector with fixed capacity (rank groups, shapes).
#pragma once
#include <array>
#include <cstddef>

#include "tessera/core/config.hpp"

namespace tessera {

template <class T, std::size_t Capacity>
struct static_vector {
  std::array<T, Capacity> data_{};
  std::size_t size_ = 0;

  constexpr void push_back(const T& v) { data_[size_++] = v; }
  TS_HD constexpr std::size_t size() const { return size_; }
  TS_HD constexpr bool empty() const { return size_ == 0; }
  TS_HD constexpr const T& operator[](std::size_t i) const { return data_[i]; }
  TS_HD constexpr T& operator[](std::size_t i) { return data_[i]; }
  constexpr const T* begin() const { return data_.data(); }
  constexpr const T* end() const { return data_.data() + size_; }
  constexpr const T* data() const { return data_.data(); }
  friend constexpr bool operator==(const static_vector& a, const static_vector& b) {
    if (a.size_ != b.size_) return false;
    for (std::size_t i = 0; i < a.size_; ++i)
      if (!(a.data_[i] == b.data_[i])) return false;
    return true;
  }
};

}  // namespace tessera
