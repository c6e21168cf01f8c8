// --trace's parts in one process: the recorder (core/trace.hpp), operator scopes and communication records
// as spans, and the Chrome/Perfetto file (train/trace_file.hpp) written through the loopback communicator.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "fake_device_system.hpp"
#include "tessera/comm/flight_recorder.hpp"
#include "tessera/comm/loopback.hpp"
#include "tessera/core/profile.hpp"
#include "tessera/core/trace.hpp"
#include "tessera/train/trace_file.hpp"

namespace ts = tessera;

namespace {
struct tracing {  // the recorder on for one test case, empty before and after
  tracing() {
    ts::trace::process().take();
    ts::trace::process().enable(true);
  }
  ~tracing() {
    ts::trace::process().enable(false);
    ts::trace::process().take();
  }
};
}  // namespace

TEST_CASE("trace: nothing is recorded while the recorder is off") {
  ts::trace::process().take();
  { const ts::trace::span s(ts::trace::track::pipeline, "0F0"); }
  { const ts::prof::scope p("gemm"); }
  CHECK(ts::trace::process().take().empty());
}

TEST_CASE("trace: operator scopes nest on the compute track, spans keep their track and order of ending") {
  const tracing on;
  {
    const ts::trace::span action(ts::trace::track::pipeline, "1B2");
    const ts::prof::scope outer("attention");
    { const ts::prof::scope inner(std::string("gemm 64x64x64"), 2.0 * 64 * 64 * 64); }
  }
  const auto events = ts::trace::process().take();
  REQUIRE(events.size() == 3);
  CHECK(events[0].name == "gemm 64x64x64");
  CHECK(events[1].name == "attention");
  CHECK(events[2].name == "1B2");
  CHECK(events[0].on == ts::trace::track::compute);
  CHECK(events[2].on == ts::trace::track::pipeline);
  for (const auto& e : events) CHECK(e.end_s >= e.begin_s);
  CHECK(events[1].begin_s <= events[0].begin_s);  // the inner span lies inside the outer one
  CHECK(events[0].end_s <= events[1].end_s);
  CHECK(ts::prof::table().empty());  // tracing does not fill the --profile table
}

TEST_CASE("trace: with a device timeline, every scope is also a span of the device's compute stream") {
  tessera_test::fake_timeline device;
  device.start();
  ts::trace::process().set_device(&device);
  { const ts::prof::scope untraced("gemm"); }  // the recorder is off: no marks
  {
    const tracing on;
    {
      const ts::prof::scope outer("attention bwd");
      { const ts::trace::device_span op("gemm (cuBLASLt)"); }
    }
    const auto host = ts::trace::process().take();
    const auto spans = device.collect();
    REQUIRE(host.size() == 2);
    REQUIRE(spans.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) {
      CHECK(spans[i].name == host[i].name);
      CHECK(host[i].on == ts::trace::track::compute);
      CHECK(spans[i].on == ts::trace::track::device_compute);
      CHECK(spans[i].end_s >= spans[i].begin_s);
    }
    CHECK(spans[1].begin_s <= spans[0].begin_s);  // nested on the device as on the host
    CHECK(spans[0].end_s <= spans[1].end_s);
  }
  ts::trace::process().set_device(nullptr);
  { const ts::trace::device_span op("gemm (cuBLASLt)"); }  // nor without the recorder
  CHECK(device.collect().empty());
}

TEST_CASE("trace: the file names a device track only when it has spans") {
  const std::vector<ts::trace::event> host_only = {{"0F0", ts::trace::track::pipeline, 1.0, 2.0}};
  auto device = host_only;
  device.push_back({"gemm", ts::trace::track::device_compute, 1.0, 1.5});
  auto threads = [](const nlohmann::json& events) {
    int n = 0;
    for (const auto& e : events) n += e["name"] == "thread_name";
    return n;
  };
  CHECK(threads(ts::trace_events_json(host_only, 0, "rank 0", 0.0)) == 3);
  const auto with_device = ts::trace_events_json(device, 0, "rank 0", 0.0);
  CHECK(threads(with_device) == 4);
  CHECK(with_device.back()["tid"] == 3);
  CHECK(with_device.back()["cat"] == "compute stream (device)");
}

TEST_CASE("trace: a communication record is a span from its start to its completion, named with axis and size") {
  auto& fr = ts::flight_recorder::process();
  fr.enable(true);
  std::uint64_t untraced = fr.begin("dp", "all-reduce (non-blocking)", 1 << 20);  // started before tracing
  const tracing on;
  const std::uint64_t seq = fr.begin("dp", "all-reduce (non-blocking)", 3 << 19);
  fr.end(untraced);
  fr.end(seq);
  const auto events = ts::trace::process().take();
  REQUIRE(events.size() == 1);
  CHECK(events[0].name == "all-reduce (non-blocking) on dp, 1.5 MB");
  CHECK(events[0].on == ts::trace::track::communication);
  CHECK(events[0].end_s >= events[0].begin_s);
}

TEST_CASE("trace: the file is the Trace Event Format, times in microseconds from the step's start") {
  const std::vector<ts::trace::event> events = {{"0F1", ts::trace::track::pipeline, 10.5, 10.75},
                                                {"send (non-blocking) on pp with rank 1, 0.25 MB",
                                                 ts::trace::track::communication, 10.6, 10.9}};
  const auto path = (std::filesystem::temp_directory_path() / "tessera_test_trace.json").string();
  ts::loopback_comm one;
  ts::write_trace(one, path, events, "rank 0: dp 0, pp 0, tp 0", 10.0, {{"step", 3}});
  const auto doc = nlohmann::json::parse(std::ifstream(path));
  std::remove(path.c_str());
  CHECK(doc["otherData"]["step"] == 3);
  const auto& te = doc["traceEvents"];
  int spans = 0, thread_names = 0;
  for (const auto& e : te) {
    if (e["ph"] == "M" && e["name"] == "thread_name") ++thread_names;
    if (e["ph"] == "M" && e["name"] == "process_name") CHECK(e["args"]["name"] == "rank 0: dp 0, pp 0, tp 0");
    if (e["ph"] != "X") continue;
    ++spans;
    CHECK(e["pid"] == 0);
    if (e["name"] == "0F1") {
      CHECK(e["tid"] == 2);
      CHECK(e["ts"].get<double>() == doctest::Approx(5e5));
      CHECK(e["dur"].get<double>() == doctest::Approx(2.5e5));
    } else {
      CHECK(e["tid"] == 1);
      CHECK(e["cat"] == "communication");
    }
  }
  CHECK(spans == 2);
  CHECK(thread_names == 3);
}

TEST_CASE("trace: a file that cannot be written is a usage error naming it, and no file is left behind") {
  const auto dir = std::filesystem::temp_directory_path() / "tessera_test_trace_missing_dir";
  std::filesystem::remove_all(dir);
  CHECK_THROWS_WITH_AS(ts::check_trace_path((dir / "t.json").string()),
                       doctest::Contains("cannot open the file for writing"), ts::usage_error);
  const auto ok = (std::filesystem::temp_directory_path() / "tessera_test_trace_ok.json").string();
  std::remove(ok.c_str());
  ts::check_trace_path(ok);
  CHECK_FALSE(std::filesystem::exists(ok));
}
