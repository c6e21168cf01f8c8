// The record of run-time engine choices (core/engine_choice.hpp): each distinct choice once, in order, and
// take_new() hands each to the log once.
#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "tessera/core/engine_choice.hpp"

using tessera::engine_choice::choice;
using tessera::engine_choice::registry;

TEST_CASE("engine_choice: distinct choices once, in the order first made") {
  registry r;
  CHECK(r.choices().empty());
  r.record("attention forward", "cuDNN");
  r.record("attention backward", "cuDNN");
  r.record("attention forward", "cuDNN");  // repeated every step: recorded once
  r.record("attention forward", "kernel: no engine for B=1 …");  // another shape chose otherwise
  const std::vector<choice> want{{"attention forward", "cuDNN"},
                                 {"attention backward", "cuDNN"},
                                 {"attention forward", "kernel: no engine for B=1 …"}};
  CHECK(r.choices() == want);
}

TEST_CASE("engine_choice: take_new returns each choice once") {
  registry r;
  CHECK(r.take_new().empty());
  r.record("a", "x");
  r.record("b", "y");
  CHECK(r.take_new().size() == 2);
  CHECK(r.take_new().empty());
  r.record("a", "x");  // not new
  CHECK(r.take_new().empty());
  r.record("a", "z");
  const auto fresh = r.take_new();
  REQUIRE(fresh.size() == 1);
  CHECK(fresh[0] == choice{"a", "z"});
  CHECK(r.choices().size() == 3);
}

TEST_CASE("engine_choice: recording from several threads keeps every distinct choice once") {
  registry r;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&r] {
      for (int i = 0; i < 1000; ++i) r.record("op", std::to_string(i % 10));
    });
  for (auto& t : threads) t.join();
  CHECK(r.choices().size() == 10);
}
