// tests/support/fake_device_system.hpp — a system whose memory the host may not touch, for one-process
// tests of code written against the system interface (core/host_system.hpp), as Thrust's test systems are.
//
// It computes with the host's operators (it converts to host_system, so every ops:: overload for the host
// accepts it), but it behaves as a device would towards the code that uses it:
//   - buffer<T> has no element access and no iterators: code that reads or writes a buffer's elements on
//     the host does not compile against it;
//   - host_accessible is false: the trainer stages its batch into the system's memory, and checkpoints, HF
//     import/export and the initial values go through host mirrors, whose copies it counts;
//   - it has a device timeline (--trace's device tracks), whose marks are the host clock's times.
// A trainer on it must train bit for bit as on host_system: the same operators on the same numbers.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "tessera/core/host_system.hpp"

namespace tessera_test {

/// Owning storage without element access (a device buffer's interface).
template <class T>
class fake_device_buffer {
 public:
  using value_type = T;
  fake_device_buffer() = default;
  explicit fake_device_buffer(std::size_t n) : v_(n) {}
  T* data() { return v_.data(); }
  const T* data() const { return v_.data(); }
  std::size_t size() const { return v_.size(); }
  std::size_t capacity() const { return v_.capacity(); }
  bool empty() const { return v_.empty(); }
  void assign(std::size_t n, const T& x) { v_.assign(n, x); }
  void resize(std::size_t n) { v_.resize(n); }
  void swap(fake_device_buffer& o) noexcept { v_.swap(o.v_); }

 private:
  std::vector<T> v_;
};

/// A device timeline for a device that runs work the moment it is issued: a mark is the host clock.
class fake_timeline final : public tessera::trace::device_timeline {
 public:
  void start() override {
    marks_.clear();
    spans_.clear();
  }
  int mark() override {
    marks_.push_back(tessera::trace::now_s());
    return static_cast<int>(marks_.size()) - 1;
  }
  void span(int from, int to, tessera::trace::track on, std::string name) override {
    spans_.push_back({std::move(name), on, marks_.at(static_cast<std::size_t>(from)), marks_.at(static_cast<std::size_t>(to))});
  }
  std::vector<tessera::trace::event> collect() override {
    marks_.clear();
    return std::exchange(spans_, {});
  }

 private:
  std::vector<double> marks_;
  std::vector<tessera::trace::event> spans_;
};

struct fake_device_system : tessera::host_system {
  static constexpr const char* name = "fake-device";
  static constexpr bool host_accessible = false;
  template <class T>
  using buffer = fake_device_buffer<T>;

  /// Bytes copied to and from the host so far (host mirrors, staged batches).
  static inline std::int64_t bytes_to_host = 0, bytes_from_host = 0;

  static tessera::trace::device_timeline* timeline() {
    static fake_timeline t;
    return &t;
  }

  template <class T>
  static void to_host(T* host, const T* p, std::int64_t n) {
    if (n <= 0) return;
    std::memcpy(host, p, static_cast<std::size_t>(n) * sizeof(T));
    bytes_to_host += n * static_cast<std::int64_t>(sizeof(T));
  }
  template <class T>
  static void from_host(T* p, const T* host, std::int64_t n) {
    if (n <= 0) return;
    std::memcpy(p, host, static_cast<std::size_t>(n) * sizeof(T));
    bytes_from_host += n * static_cast<std::int64_t>(sizeof(T));
  }
};

}  // namespace tessera_test
