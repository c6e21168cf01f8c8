// tests/support/fake_device_system.hpp — a system whose memory the host may not touch, for one-process
// tests of code written against the system interface (core/host_system.hpp), as Thrust's test systems are.
//
// It computes with the host's operators (it converts to host_system, so every ops:: overload for the host
// accepts it), but it behaves as a device would towards the code that uses it:
//   - its values name streams, and it counts the work issued on the default value (explicit streams);
//   - buffer<T> has no element access and no iterators: code that reads or writes a buffer's elements on
//     the host does not compile against it; resize_for_overwrite fills all bits (NaN), so a buffer read
//     before it is written changes the results;
//   - host_accessible is false: the trainer stages its batch into the system's memory, and checkpoints, HF
//     import/export and the initial values go through host mirrors, whose copies it counts;
//   - it has a device timeline (--trace's device tracks), whose marks are the host clock's times.
// A trainer on it must train bit for bit as on host_system: the same operators on the same numbers.
#pragma once
#include <cstdint>
#include <cstring>
#include <cstdlib>
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
  /// Unspecified values, as a device's: all bits set (NaN in fp32, bf16 and fp64; -1 in integers), so a
  /// read before the write shows in the results.
  void resize_for_overwrite(std::size_t n) {
    v_.resize(n);
    if (n > 0) std::memset(static_cast<void*>(v_.data()), 0xFF, n * sizeof(T));
  }
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

/// Values name a stream, as cuda_system's do: 0 is the default value (fake_device_system{}), a context's
/// streams are numbered from 1. Everything that would issue work on a device counts the uses of the
/// default value, so a test can check that a trainer issues every operator, copy and fill on its own
/// context's stream (explicit streams) — the conversion to host_system, which every host operator
/// overload takes, counts operator calls.
struct fake_device_system {
  static constexpr const char* name = "fake-device";
  static constexpr bool host_accessible = false;
  template <class T>
  using buffer = fake_device_buffer<T>;
  using event = tessera::host_system::event;

  class context {
   public:
    context() : id_(++contexts) {}
    fake_device_system system() const { return fake_device_system{id_}; }

   private:
    int id_;
  };

  int stream = 0;

  /// Bytes copied to and from the host so far (host mirrors, staged batches).
  static inline std::int64_t bytes_to_host = 0, bytes_from_host = 0;
  /// Work issued so far: operator calls, and anything (operators, loops, copies, waits) on the default value.
  static inline std::int64_t operator_calls = 0, default_stream_uses = 0;
  static inline int contexts = 0;

  /// What a host operator overload takes: one operator call, on this value's stream.
  operator tessera::host_system() const {  // NOLINT(google-explicit-constructor): the overloads' argument
    ++operator_calls;
    issue();
    return {};
  }
  friend bool operator==(fake_device_system, fake_device_system) = default;

  static tessera::trace::device_timeline* timeline_instance() {
    static fake_timeline t;
    return &t;
  }
  tessera::trace::device_timeline* timeline() const { return timeline_instance(); }

  template <class T>
  static T* data(fake_device_buffer<T>& v) { return v.data(); }
  template <class T>
  static const T* data(const fake_device_buffer<T>& v) { return v.data(); }
  template <class F>
  void for_each_index(std::int64_t n, const F& f) const {
    issue();
    tessera::host_system::for_each_index(n, f);
  }
  template <class T>
  void fill(T* p, std::int64_t n, T value) const {
    issue();
    tessera::host_system::fill(p, n, value);
  }
  template <class T>
  void copy(T* dst, const T* src, std::int64_t n) const {
    issue();
    tessera::host_system::copy(dst, src, n);
  }
  template <class T>
  void to_host(T* host, const T* p, std::int64_t n) const {
    issue();
    if (n <= 0) return;
    std::memcpy(host, p, static_cast<std::size_t>(n) * sizeof(T));
    bytes_to_host += n * static_cast<std::int64_t>(sizeof(T));
  }
  template <class T>
  void from_host(T* p, const T* host, std::int64_t n) const {
    issue();
    if (n <= 0) return;
    std::memcpy(p, host, static_cast<std::size_t>(n) * sizeof(T));
    bytes_from_host += n * static_cast<std::int64_t>(sizeof(T));
  }
  void record(event&) const { issue(); }
  void wait(const event&) const { issue(); }
  void synchronize() const { issue(); }

 private:
  void issue() const {
    if (stream == 0) ++default_stream_uses;
    if (stream == 0 && std::getenv("FAKE_TRAP")) std::abort();
  }
};

}  // namespace tessera_test
