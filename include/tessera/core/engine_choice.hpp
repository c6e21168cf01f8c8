// tessera/core/engine_choice.hpp — which implementation an operator chose at run time, for the log.
//
// Some operators pick their engine only when they first run, from what the process can load and the
// shape they are given: bf16 attention on a GPU runs cuDNN's fused flash attention where cuDNN has an
// engine for the shape and tessera's own kernel elsewhere (ops/cuda/attention.hpp). Each choice is
// recorded here under the operator's name; ts::train prints the choices made by its first step (and any
// later new one) and logs them as a JSON event, so a log always says which kernel ran. Thread-safe.
#pragma once
#include <cstddef>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace tessera::engine_choice {

/// One choice: `op` ("attention forward") ran on `engine` ("cuDNN 9.19.0 fused flash attention …").
struct choice {
  std::string op, engine;
  friend bool operator==(const choice&, const choice&) = default;
};

class registry {
 public:
  /// Records a choice. @post choices() holds it once, however often it is recorded.
  void record(std::string op, std::string engine) {
    std::lock_guard<std::mutex> lock(m_);
    choice c{std::move(op), std::move(engine)};
    for (const choice& have : all_)
      if (have == c) return;
    all_.push_back(std::move(c));
  }
  /// Every distinct choice so far, in the order first made.
  std::vector<choice> choices() const {
    std::lock_guard<std::mutex> lock(m_);
    return all_;
  }
  /// The choices made since the last call (for a log that reports each once).
  std::vector<choice> take_new() {
    std::lock_guard<std::mutex> lock(m_);
    std::vector<choice> fresh(all_.begin() + static_cast<std::ptrdiff_t>(reported_), all_.end());
    reported_ = all_.size();
    return fresh;
  }

 private:
  mutable std::mutex m_;
  std::vector<choice> all_;
  std::size_t reported_ = 0;
};

/// The process's registry.
inline registry& process() {
  static registry r;
  return r;
}

}  // namespace tessera::engine_choice
