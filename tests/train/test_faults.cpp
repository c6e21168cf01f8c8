// Fault injection and the flight recorder, in one process: --inject-fault specs parse or are refused with
// a message naming what is wrong; a fault recorded in TESSERA_FAULT_LOG does not fire again; the recorder
// keeps the newest operations in order and says which one is in progress. (The watchdog and the
// supervisor are tested with a real job: faults.py.)
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tessera/comm/flight_recorder.hpp"
#include "tessera/comm/loopback.hpp"
#include "tessera/comm/mesh_comms.hpp"
#include "tessera/train/faults.hpp"
#include "tessera/train/snapshot.hpp"

namespace ts = tessera;

TEST_CASE("--inject-fault: KIND@STEP[:RANK], refused with a message naming the spec and the problem") {
  CHECK(ts::parse_fault("kill@5:3", 8) == ts::fault{ts::fault_kind::kill, 5, 3});
  CHECK(ts::parse_fault("nan@0", 8) == ts::fault{ts::fault_kind::nan, 0, 0});
  CHECK(ts::parse_fault("slow@12:7", 8).kind == ts::fault_kind::slow);
  CHECK(ts::to_string(ts::parse_fault("hang@2:1", 4)) == "hang@2:1");
  auto message = [](const char* spec) {
    try {
      ts::parse_fault(spec, 8);
    } catch (const ts::usage_error& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  CHECK(message("kill5").find("--inject-fault kill5: no '@'") != std::string::npos);
  CHECK(message("explode@3").find("unknown kind 'explode'") != std::string::npos);
  CHECK(message("kill@x").find("step 'x' is not a non-negative integer") != std::string::npos);
  CHECK(message("kill@3:-1").find("rank '-1' is not a non-negative integer") != std::string::npos);
  CHECK(message("kill@3:8").find("rank 8 is outside the job's 8 ranks") != std::string::npos);
}

TEST_CASE("a fault recorded in TESSERA_FAULT_LOG fires once per job; nan poisons one step's gradient") {
  const auto log = std::filesystem::temp_directory_path() / "tessera_test_faults.log";
  std::filesystem::remove(log);
  ::setenv("TESSERA_FAULT_LOG", log.c_str(), 1);
  {
    ts::fault_injector f({"nan@2:1", "slow@9:0", "nan@4:1"}, 1, 4);  // rank 1: the nan faults only
    f.before_step(1);
    CHECK(!f.take_poison(1));
    f.before_step(2);
    CHECK(f.take_poison(2));
    CHECK(!f.take_poison(2));  // consumed
  }
  const auto fired = ts::fault_injector::fired_faults(log.string());
  REQUIRE(fired.size() == 1);
  CHECK(fired[0].rfind("nan@2:1 ", 0) == 0);
  {
    ts::fault_injector again({"nan@2:1", "nan@4:1"}, 1, 4);  // after a restart: nan@2 has fired already
    again.before_step(2);
    CHECK(!again.take_poison(2));
    again.before_step(4);
    CHECK(again.take_poison(4));
  }
  CHECK(ts::fault_injector::fired_faults(log.string()).size() == 2);
  ::unsetenv("TESSERA_FAULT_LOG");
  std::filesystem::remove(log);
}

TEST_CASE("flight recorder: the newest operations in order, the one in progress, in words") {
  auto& fr = ts::flight_recorder::process();
  fr.enable(true);
  const std::uint64_t first = fr.begin("dp", "all-reduce", 4 << 20);
  fr.end(first);
  const std::uint64_t recv = fr.begin("pp", "recv", 1024, 1);
  auto cur = fr.current();
  CHECK(cur.seq == recv);
  CHECK(!cur.done);
  const std::string words = ts::flight_recorder::describe(cur, fr.now_s());
  CHECK(words.find("recv on pp with rank 1") == 0);
  CHECK(words.find("in progress for") != std::string::npos);
  fr.end(recv);
  for (std::size_t i = 0; i < ts::flight_recorder::capacity + 5; ++i) fr.end(fr.begin("tp", "all-gather", 8));
  const auto rs = fr.records();
  CHECK(rs.size() == ts::flight_recorder::capacity);
  for (std::size_t i = 1; i < rs.size(); ++i) CHECK(rs[i].seq == rs[i - 1].seq + 1);
  CHECK(rs.back().seq == fr.last_seq());
  CHECK(fr.current().done);  // nothing in progress: the newest
  fr.mark("step 3");
  CHECK(fr.where() == "step 3");
  CHECK(fr.idle_s() < 5.0);
  fr.enable(false);
  CHECK(fr.begin("dp", "all-reduce", 1) == 0);  // off: nothing recorded
}

TEST_CASE("mesh communicators are labelled by their axes for the flight recorder") {
  using mc = ts::mesh_comms<ts::loopback_comm>;
  CHECK(mc::label_of(ts::axes::dp) == "dp");
  CHECK(mc::label_of(ts::axes::dp | ts::axes::tp) == "dp+tp");
  CHECK(mc::label_of(ts::axes::all) == "world");
  CHECK(mc::label_of(ts::axes::none) == "self");
}

TEST_CASE("snapshot files: whole or refused — a missing, truncated or damaged file is named with the reason") {
  const auto dir = std::filesystem::temp_directory_path() / "tessera_test_snapshots";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "rank3.snap").string();
  std::vector<unsigned char> state(1000);
  for (std::size_t i = 0; i < state.size(); ++i) state[i] = static_cast<unsigned char>(i * 7);
  ts::snapshot_header h;
  h.rank = 3;
  h.world = 8;
  h.step = 12;
  h.adam_step = 11;
  h.layout = 0xabcdef;
  ts::snapshot_detail::write_file(path, h, state.data(), state.size());
  std::string why;
  auto d = ts::read_snapshot(path, why);
  REQUIRE(d.has_value());
  CHECK(d->payload == state);
  CHECK(d->h.step == 12);
  CHECK(d->h.adam_step == 11);
  CHECK(d->h.layout == 0xabcdef);
  CHECK(!std::filesystem::exists(path + ".tmp"));
  {  // a flipped byte in the state
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(sizeof(ts::snapshot_header) + 500));
    f.put(static_cast<char>(~state[500]));
  }
  CHECK(!ts::read_snapshot(path, why));
  CHECK(why.find("rank3.snap: damaged (CRC-32 0x") != std::string::npos);
  std::filesystem::resize_file(path, sizeof(ts::snapshot_header) + 10);
  CHECK(!ts::read_snapshot(path, why));
  CHECK(why.find("truncated (1000 bytes of state expected)") != std::string::npos);
  std::filesystem::resize_file(path, 20);
  CHECK(!ts::read_snapshot(path, why));
  CHECK(why.find("damaged header") != std::string::npos);
  std::filesystem::remove(path);
  CHECK(!ts::read_snapshot(path, why));
  CHECK(why.find(": missing") != std::string::npos);
  std::filesystem::remove_all(dir);
}
