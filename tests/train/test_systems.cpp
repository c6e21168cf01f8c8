// The system as a type: the trainer, its checkpoints and its HF import/export written once against the
// system interface (core/host_system.hpp), run on host_system and on a fake device system whose memory
// the host may not touch (tests/support/fake_device_system.hpp) — and must give the same bits on both.
#include <doctest/doctest.h>
#include <mpi.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "fake_device_system.hpp"
#include "one_rank_trainer.hpp"
#include "tessera/comm/loopback.hpp"
#include "tessera/comm/staged.hpp"
#include "tessera/tessera.hpp"

namespace ts = tessera;
using tessera_test::fake_device_system;

namespace {
using small_gpt = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 16, .layers = 2, .hidden = 32, .heads = 2}>;
using small_llama =
    ts::llama<ts::llama_config{.vocab = 256, .seq = 16, .layers = 2, .hidden = 32, .heads = 4, .kv_heads = 2, .ffn = 64}>;
using gpt_plan = ts::plan<small_gpt, ts::mesh<>, ts::one_f_one_b<2>>;
using llama_bf16_plan = ts::plan<small_llama, ts::mesh<>, ts::one_f_one_b<2>, ts::precision<ts::bf16>,
                                 ts::recompute<ts::selective>>;

bool is_root() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank == 0;  // one process's test; the other ranks of an MPI run have nothing to do
}

std::string bytes_of(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Every .safetensors file under dir (name → bytes).
std::map<std::string, std::string> tensor_files(const std::filesystem::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.path().extension() == ".safetensors") out[e.path().filename().string()] = bytes_of(e.path());
  return out;
}

template <class T, class Plan, class System>
using run_on = tessera_test::one_rank_trainer<T, Plan, ts::loopback_comm, System>;

/// Trains `steps` steps of Plan on System (one rank, loopback), then saves a checkpoint and an HF export
/// under `dir`; returns every loss and gradient norm, an evaluation and a sample.
template <class T, class Plan, class System>
std::vector<double> train_save(const std::filesystem::path& dir, int steps) {
  ts::loopback_comm world;
  run_on<T, Plan, System> run(world, steps);
  const std::vector<double> out = run.train_evaluate_sample(steps);
  auto& tr = run.tr;
  tr.gather_state();
  ts::save_checkpoint((dir / "ckpt").string(), steps, tr, ts::plan_to_json(run.pd), nlohmann::json::object(), run.world);
  std::vector<const ts::ops::grad_t<T>*> masters;
  for (std::size_t i = 0; i < tr.store().slots.size(); ++i) masters.push_back(tr.slot_state(i).master);
  ts::export_hf((dir / "model.safetensors").string(), ts::st_dtype::f32, run.pd.model, tr.tensors(), tr.store(),
                tr.owners(), run.world, masters);
  tr.release_gathered_state();
  return out;
}

/// Loads the checkpoint under dir into a fresh trainer on System, trains one more step: its loss and norm.
template <class T, class Plan, class System>
std::vector<double> resume(const std::filesystem::path& dir, int step) {
  ts::loopback_comm world;
  run_on<T, Plan, System> run(world, step + 1);
  ts::load_checkpoint((dir / "ckpt").string(), run.tr, ts::plan_to_json(run.pd), run.world);
  run.tr.shard_optimizer_state();
  return run.train(step, 1);
}

template <class T, class Plan>
void host_and_fake_device_agree(const std::string& name) {
  const auto root = std::filesystem::temp_directory_path() / ("tessera_test_systems_" + name);
  std::filesystem::remove_all(root);
  const auto to0 = fake_device_system::bytes_to_host, from0 = fake_device_system::bytes_from_host;
  const auto on_host = train_save<T, Plan, ts::host_system>(root / "host", 3);
  const auto calls0 = fake_device_system::operator_calls, default0 = fake_device_system::default_stream_uses;
  const auto on_fake = train_save<T, Plan, fake_device_system>(root / "fake", 3);
  // explicit streams: every operator, copy and fill of the steps, the checkpoint and the export was issued
  // on the trainer's own stream, none on the default one
  CHECK(fake_device_system::operator_calls - calls0 > 100);
  CHECK(fake_device_system::default_stream_uses == default0);
  REQUIRE(on_host.size() == on_fake.size());
  for (std::size_t i = 0; i < on_host.size(); ++i) CHECK(on_host[i] == on_fake[i]);  // bit for bit
  for (double x : on_fake) CHECK(std::isfinite(x));
  // the fake device was reached only through the system: batches went in, mirrors came out
  CHECK(fake_device_system::bytes_from_host > from0);
  CHECK(fake_device_system::bytes_to_host > to0);
  // the same checkpoint and the same HF export, byte for byte
  const auto host_files = tensor_files(root / "host"), fake_files = tensor_files(root / "fake");
  CHECK(host_files.size() >= 2);
  CHECK(host_files == fake_files);
  // resuming on the fake device continues exactly as on the host, from either one's checkpoint
  const auto resumed_host = resume<T, Plan, ts::host_system>(root / "host", 3);
  CHECK(resume<T, Plan, fake_device_system>(root / "host", 3) == resumed_host);
  CHECK(resume<T, Plan, fake_device_system>(root / "fake", 3) == resumed_host);
  CHECK(fake_device_system::default_stream_uses == default0);  // loading a checkpoint too
  // HF import into a fake-device store reproduces the exported values
  constexpr ts::plan_desc pd = Plan::desc;
  const ts::model_tensors mt = ts::make_model_tensors(pd.model, pd.vocab_padded);
  ts::param_store<T, fake_device_system> store;
  ts::param_store<T, ts::host_system> host_store;
  for (const auto& t : mt.tensors) {
    ts::slot_layout l = ts::slot_detail::whole(mt, t.name, ts::tp_role::replicated);
    store.get_or_add(l);
    host_store.get_or_add(l);
  }
  std::vector<std::size_t> order(store.slots.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  store.finalise(order);
  host_store.finalise(order);
  ts::load_hf((root / "fake" / "model.safetensors").string(), pd.model, mt, store);
  ts::load_hf((root / "host" / "model.safetensors").string(), pd.model, mt, host_store);
  for (std::size_t i = 0; i < store.slots.size(); ++i) {
    const auto a = ts::mirror_of<fake_device_system>(store.slots[i].value);
    const auto b = ts::mirror_of<ts::host_system>(host_store.slots[i].value);
    REQUIRE(a.size() == b.size());
    CHECK(std::equal(a.begin(), a.end(), b.begin(), [](auto x, auto y) { return float(x) == float(y); }));
  }
  std::filesystem::remove_all(root);
}
}  // namespace

TEST_CASE("host mirrors: the memory itself on the host, a copy written back on commit elsewhere") {
  std::vector<float> host{1, 2, 3};
  ts::host_mirror<ts::host_system, float> direct(host.data(), host.size());
  CHECK(direct.data() == host.data());  // no copy
  direct[1] = 20;
  CHECK(host[1] == 20);

  tessera_test::fake_device_buffer<float> dev;
  dev.assign(3, 5.0f);
  const auto from0 = fake_device_system::bytes_from_host;
  auto m = ts::mirror_of<fake_device_system>(dev);
  CHECK(m.data() != dev.data());
  CHECK(m[2] == 5.0f);
  m[2] = 7.0f;
  CHECK(dev.data()[2] == 5.0f);  // not until commit
  m.commit();
  CHECK(dev.data()[2] == 7.0f);
  CHECK(fake_device_system::bytes_from_host - from0 == 3 * 4);
  const ts::host_mirror<fake_device_system, const float> empty(nullptr, 0);
  CHECK(empty.empty());
}

TEST_CASE("the GPT trainer on a fake device system: same losses, checkpoint and export as on the host") {
  if (is_root()) host_and_fake_device_agree<float, gpt_plan>("gpt_fp32");
}

TEST_CASE("the LLaMA trainer in bf16 with selective recompute on a fake device system: same bits as the host") {
  if (is_root()) host_and_fake_device_agree<ts::bf16, llama_bf16_plan>("llama_bf16");
}

namespace {
/// A whole run (training_run: data, training, log, checkpoint, export) on one rank (MPI_COMM_SELF) with
/// Comm, a communicator made from an mpi_comm (mpi_comm itself; staged_comm over it, as --backend cuda
/// runs one GPU); the JSON log's step lines and the export's bytes.
template <class Comm, class System>
std::pair<std::vector<std::string>, std::string> whole_run(const std::string& dir) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  ts::train_options o;
  o.data = TESSERA_CORPUS;
  o.steps = 3;
  o.batch = 4;
  o.lr = 3e-3;
  o.quiet = true;
  o.hang_timeout = -1;
  o.log_json = dir + "/log.json";
  o.save_dir = dir + "/ck";
  o.export_to = dir + "/model.safetensors";
  o.trace = dir + "/trace.json";
  const Comm job(ts::mpi_comm::split(MPI_COMM_SELF, 0, 0));
  ts::training_run<float, small_gpt::head_dim, Comm, System>(gpt_plan::desc, o, job, &ts::program_of_rank<gpt_plan>).run();
  std::vector<std::string> steps;
  std::ifstream log(o.log_json);
  for (std::string line; std::getline(log, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (!j.contains("loss") || j.contains("event")) continue;  // timings differ: the step, loss and norm
    steps.push_back(nlohmann::json{{"step", j["step"]}, {"loss", j["loss"]}, {"grad_norm", j["grad_norm"]}}.dump());
  }
  std::ifstream f(o.export_to, std::ios::binary);
  return {steps, std::string(std::istreambuf_iterator<char>(f), {})};
}
}  // namespace

TEST_CASE("a whole run on one rank through the staged communicator (as --backend cuda): the same as on the host") {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) return;
  const std::string base = (std::filesystem::temp_directory_path() / "tessera_whole_run_").string();
  const auto host = whole_run<ts::mpi_comm, ts::host_system>(base + "host");
  const auto default0 = fake_device_system::default_stream_uses;
  const auto fake = whole_run<ts::staged_comm<ts::mpi_comm, fake_device_system>, fake_device_system>(base + "fake");
  // the staged communicator's copies too went on the trainer's stream (bind_compute), as did the trace
  CHECK(fake_device_system::default_stream_uses == default0);
  REQUIRE(host.first.size() == 3);
  CHECK(host.first == fake.first);
  CHECK(!host.second.empty());
  CHECK(host.second == fake.second);
  // --trace: a device system's timeline adds its compute stream's track, a span for each operator scope
  auto spans_by_track = [](const std::string& path) {
    std::map<int, std::vector<std::string>> out;
    std::map<int, std::string> names;
    std::ifstream f(path);
    const nlohmann::json doc = nlohmann::json::parse(f);
    for (const auto& e : doc["traceEvents"]) {
      if (e["ph"] == "X") out[e["tid"].get<int>()].push_back(e["name"].get<std::string>());
      if (e["ph"] == "M" && e["name"] == "thread_name") names[e["tid"].get<int>()] = e["args"]["name"].get<std::string>();
    }
    return std::pair{out, names};
  };
  const auto [host_spans, host_tracks] = spans_by_track(base + "host/trace.json");
  const auto [fake_spans, fake_tracks] = spans_by_track(base + "fake/trace.json");
  CHECK(host_tracks.size() == 3);
  CHECK(host_spans.count(3) == 0);
  REQUIRE(fake_tracks.count(3) == 1);
  CHECK(fake_tracks.at(3) == "compute stream (device)");
  REQUIRE(fake_spans.count(0) == 1);
  CHECK(fake_spans.at(0).size() > 20);
  CHECK(fake_spans.at(3) == fake_spans.at(0));  // one device span per operator scope, ended in the same order
}
