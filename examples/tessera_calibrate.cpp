// tessera_calibrate — measures this machine for the layout planner's cost model and writes a host profile
// (tessera/plan/host_profile.hpp) that the planner reads instead of the generic ts::hw::host numbers.
//
//   mpirun -np R ./tessera_calibrate --out profile.json [--threads T] [--quick] [--emit-cpp]
//
// Run it with the ranks per node a training job will use: every measurement runs on all ranks at once
// (what a training step sees), with the threads per rank the trainer would use (default: its own rule,
// the node's cores / ranks on the node, at least 1; OpenMP and OpenBLAS both get that many). Every timed
// sample's time is the slowest rank's, so a rate is what each rank reaches while the others run too.
//
//   GEMM         fp32 ts::ops::host::gemm (cblas_sgemm, row-major, NN: the host operators' call) over
//                m, n, k ∈ {64, 256, 1024, 4096} (--quick: {64, 256, 512}); a warm-up call, then the best
//                of 3–10 calls (fewer for larger shapes). FLOP = 2·m·n·k.
//   attention    the host attention kernel (ops/host/attention.hpp), forward and backward, at head sizes
//                16, 32, 64, 128 on 16 heads × one 64-token causal tile; best of 5; in the cost model's
//                FLOPs (4·B·H·T²·D forward, twice that backward).
//   cpu_share    every rank sustaining 256×256×64 sgemms together (~60 ms; 150 ms without --quick), the
//                slowest rank's rate over that shape's burst rate: the share of a core a rank gets when
//                ranks outnumber free cores (or other programs load them), which single calls do not see.
//   memory_bw    STREAM triad a = b + s·c in fp32 with the OpenMP threads, three arrays that together are
//                4× the last-level cache divided among the node's ranks (at least 64 MiB per rank, at most
//                a quarter of MemAvailable per rank; --quick: 48 MiB per rank, possibly cache-resident);
//                best of 5 passes; bytes = 3 · array bytes per pass (STREAM's count: write-allocate
//                traffic is not counted).
//   elementwise  the same triad over arrays of activation size, 1, 2, 4 and 8 MiB each, repeated within
//                a sample to move ≥ 64 MiB; best of 5 samples per size; the rate is all bytes over the
//                sum of the four best times (a step that runs one of each). Arrays this size may stay in
//                the caches, as a step's activations partly do.
//   all-reduce   MPI_Allreduce (ts::mpi_comm::all_reduce, sum) of fp32 buffers of 4 B … 16 MiB (×4 steps;
//                --quick: 4 B … 4 MiB in ×16 steps); per size the best of 3 batches of back-to-back calls;
//                t(bytes) ≈ α + β·bytes fitted by least squares on the relative error, so the small sizes
//                fix α and the large ones β.
//   p2p          rank 0 ↔ rank 1 ping-pong (blocking send/recv), one-way time = round trip / 2, same sizes
//                and fit. With 1 rank neither is measured: α = β = 0 in the profile, and the table says so.
//
// The device_desc it derives (the profile's "device", and with --emit-cpp a C++ type on stdout):
//   name "host (<CPU brand>)"; peak_fp32 = best GEMM rate / 0.9 with gemm_efficiency = 0.9, so the model's
//   large-GEMM rate is the best measured one; peak_bf16 = peak_fp32 even on CPUs with AVX512-BF16/AMX (the
//   host backend computes in fp32; bf16 storage is widened); memory_bytes = MemAvailable / ranks on the
//   node; memory_bw = the triad rate, memory_efficiency = 1.0; gemm_half_size: for each axis, the h with
//   rate(smallest on that axis, largest on the others) / rate(all largest) = [s/(s+h)] / [L/(L+h)], their
//   geometric mean, within [1, largest]; intra_bw = inter_bw = the all-reduce's bus bandwidth
//   2(R−1)/R / β (= 1/β at 2 ranks), intra_latency = inter_latency = α / (2(R−1)) (hardware.hpp defines
//   both per ring step: R ranks take 2(R−1) steps); with 1 rank the generic ts::hw::host links;
//   attention_efficiency the generic host value (not measured); reserved_bytes 256 MiB.
//
// Rank 0 prints a short table (to stderr with --emit-cpp, so that stdout holds only the C++) and writes
// the JSON atomically (a temporary file beside --out, then rename). Bad input — an unknown flag,
// --threads 0, an --out that cannot be written (checked before measuring) — prints a message naming it
// and exits with code 2.
#include <mpi.h>
#include <omp.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tessera/comm/mpi.hpp"
#include "tessera/core/cpu.hpp"
#include "tessera/core/error.hpp"
#include "tessera/ops/host/attention.hpp"
#include "tessera/ops/host/blas.hpp"
#include "tessera/ops/host/gemm_bench.hpp"
#include "tessera/ops/host/openblas_core.hpp"
#include "tessera/ops/host/gemm_bench.hpp"
#include "tessera/plan/host_profile.hpp"
#include "tessera/train/machine.hpp"

extern "C" void openblas_set_num_threads(int);

namespace ts = tessera;

namespace {

constexpr double MiB = 1024.0 * 1024.0;

struct options {
  std::string out;
  int threads = 0;  ///< 0: the trainer's default
  bool quick = false, emit_cpp = false;
};

using clk = std::chrono::steady_clock;
double seconds_since(clk::time_point t0) { return std::chrono::duration<double>(clk::now() - t0).count(); }

/// The slowest rank's value of dt (collective).
double slowest(double dt) {
  MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return dt;
}

/// Best (smallest) over `reps` samples of the slowest rank's time of f(), all ranks starting together.
template <class F>
double best_time(int reps, F&& f) {
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto t0 = clk::now();
    f();
    best = std::min(best, slowest(seconds_since(t0)));
  }
  return best;
}

// ---- the machine ----------------------------------------------------------------------------------------
std::string cpu_brand() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  for (const char* key : {"model name", "Hardware"}) {
    f.clear();
    f.seekg(0);
    while (std::getline(f, line))
      if (line.rfind(key, 0) == 0 && line.find(':') != std::string::npos) {
        std::string v = line.substr(line.find(':') + 1);
        v.erase(0, v.find_first_not_of(" \t"));
        if (!v.empty()) return v;
      }
  }
  return "unknown CPU, " + ts::cpu::cpu_level();
}

/// A /proc/meminfo value in bytes (0 when absent).
double meminfo_bytes(const char* key) {
  std::ifstream f("/proc/meminfo");
  std::string name;
  double kib = 0;
  std::string unit;
  while (f >> name >> kib) {
    std::getline(f, unit);
    if (name == std::string(key) + ":") return kib * 1024.0;
  }
  return 0;
}

/// The last-level cache in bytes (sysconf, else sysfs), 32 MiB when neither says.
double llc_bytes() {
  for (int name : {_SC_LEVEL3_CACHE_SIZE, _SC_LEVEL2_CACHE_SIZE}) {
    const long v = sysconf(name);
    if (v > 0) return static_cast<double>(v);
  }
  for (const char* idx : {"index3", "index2"}) {
    std::ifstream f(std::string("/sys/devices/system/cpu/cpu0/cache/") + idx + "/size");
    double v = 0;
    char unit = 'K';
    if (f >> v >> unit && v > 0) return v * (unit == 'M' ? MiB : 1024.0);
  }
  return 32 * MiB;
}

// ---- GEMM -------------------------------------------------------------------------------------------------
std::vector<ts::gemm_rate> measure_gemm(const std::vector<int>& sizes) {
  const std::size_t big = static_cast<std::size_t>(sizes.back()) * sizes.back();
  std::vector<float> A(big, 0.01f), B(big, 0.02f), C(big, 0.0f);
  std::vector<ts::gemm_rate> out;
  for (int m : sizes)
    for (int n : sizes)
      for (int k : sizes) {
        const double flops = 2.0 * m * n * k;
        auto call = [&] {
          ts::ops::host::gemm(ts::ops::host::trans::no, ts::ops::host::trans::no, m, n, k, 1.0f, A.data(), k,
                              B.data(), n, 0.0f, C.data(), n);
        };
        best_time(1, call);  // warm-up: OpenBLAS's buffers, threads, caches
        const int reps = flops >= 1e10 ? 3 : flops >= 1e8 ? 5 : 10;
        out.push_back({m, n, k, flops / best_time(reps, call)});
      }
  return out;
}

/// The fraction of a core each rank gets while all ranks compute at once: `calls` back-to-back sgemms of
/// 256×256×64 (about 60 ms on a free core; 150 ms without --quick) on every rank together, the slowest
/// rank's rate over the same shape's burst rate (the grid's best of single calls, which fit in a time
/// slice and so do not see ranks sharing a core). 1 when every rank has a core of its own.
double measure_cpu_share(const std::vector<ts::gemm_rate>& grid, bool quick) {
  const int m = 256, n = 256, k = 64;
  double burst = 0;
  for (const ts::gemm_rate& g : grid)
    if (g.m == m && g.n == n && g.k == k) burst = g.flops_per_s;
  if (burst <= 0) return 1.0;
  const double flops = 2.0 * m * n * k;
  int calls = static_cast<int>((quick ? 0.06 : 0.15) * burst / flops) + 1;
  MPI_Allreduce(MPI_IN_PLACE, &calls, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  std::vector<float> A(m * k, 0.01f), B(k * n, 0.02f), C(m * n, 0.0f);
  const double t = best_time(quick ? 2 : 3, [&] {
    for (int i = 0; i < calls; ++i)
      ts::ops::host::gemm(ts::ops::host::trans::no, ts::ops::host::trans::no, m, n, k, 1.0f, A.data(), k, B.data(), n,
                          0.0f, C.data(), n);
  });
  return std::min(1.0, calls * flops / t / burst);
}

// ---- attention --------------------------------------------------------------------------------------------
/// The host attention kernel at head size D on 16 heads × one 64-token causal tile (its unit of work),
/// forward and backward, in the cost model's FLOPs (4·B·H·T²·D forward, twice that backward); best of 5.
template <int D>
ts::attention_rate attention_rate_at() {
  const int B = 4, H = 4, T = 64;
  const std::size_t n = static_cast<std::size_t>(B) * T * H * D;
  std::vector<float> q(n, 0.01f), k(n, 0.02f), v(n, 0.03f), o(n), dout(n, 0.001f), dq(n), dk(n), dv(n);
  std::vector<float> lse(static_cast<std::size_t>(B) * H * T);
  const ts::ops::attention_shape sh{B, T, H, H};
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  auto fwd = [&] { ts::ops::attention_forward<D>(ts::host_system{}, q.data(), k.data(), v.data(), o.data(), lse.data(), sh, scale); };
  auto bwd = [&] {
    ts::ops::attention_backward<D>(ts::host_system{}, dout.data(), q.data(), k.data(), v.data(), o.data(), lse.data(), sh,
                                   scale, dq.data(), dk.data(), dv.data());
  };
  fwd(), bwd();  // warm-up
  const double flops = 4.0 * B * H * T * T * D;
  return {D, flops / best_time(5, fwd), 2 * flops / best_time(5, bwd)};
}

std::vector<ts::attention_rate> measure_attention() {
  return {attention_rate_at<16>(), attention_rate_at<32>(), attention_rate_at<64>(), attention_rate_at<128>()};
}

// ---- memory -----------------------------------------------------------------------------------------------
/// Three fp32 arrays of n elements, first touched by the threads that use them.
struct triad_arrays {
  std::size_t n;
  std::unique_ptr<float[]> a, b, c;
  explicit triad_arrays(std::size_t n_) : n(n_), a(new float[n_]), b(new float[n_]), c(new float[n_]) {
    const auto len = static_cast<std::int64_t>(n);
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < len; ++i) {
      a[i] = 0.0f;
      b[i] = 1.0f;
      c[i] = 2.0f;
    }
  }
  void triad(float s) {
    const auto len = static_cast<std::int64_t>(n);
    float* __restrict x = a.get();
    const float* __restrict y = b.get();
    const float* __restrict z = c.get();
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < len; ++i) x[i] = y[i] + s * z[i];
  }
};
volatile float g_sink = 0;  // keeps the triads' results observable

/// Triad bytes/s per rank over arrays of `array_bytes`, `inner` triads per sample, best of `reps`.
double triad_rate(double array_bytes, int inner, int reps) {
  triad_arrays t(static_cast<std::size_t>(array_bytes / sizeof(float)));
  t.triad(0.5f);  // warm-up
  const double best = best_time(reps, [&] {
    for (int i = 0; i < inner; ++i) t.triad(0.5f + 1e-3f * static_cast<float>(i));
  });
  g_sink = g_sink + t.a[0] + t.a[t.n - 1];
  return 3.0 * static_cast<double>(t.n) * sizeof(float) * inner / best;
}

/// Per-rank array bytes of the memory-bandwidth triad (see the file's comment).
double stream_array_bytes(bool quick, int ranks_on_node) {
  if (quick) return 16 * MiB;
  const double per_rank = std::max(4.0 * llc_bytes() / ranks_on_node, 64 * MiB);
  const double cap = meminfo_bytes("MemAvailable") / ranks_on_node / 4;
  return std::floor(std::min(per_rank, cap > 0 ? cap : per_rank) / 3 / 4096) * 4096;
}

/// Elementwise rate: all bytes over the summed best times of triads over 1, 2, 4, 8 MiB arrays.
double elementwise_rate(nlohmann::json& raw) {
  double bytes = 0, time = 0;
  for (double s : {1 * MiB, 2 * MiB, 4 * MiB, 8 * MiB}) {
    const int inner = static_cast<int>(std::ceil(64 * MiB / (3 * s)));
    const double rate = triad_rate(s, inner, 5);
    raw.push_back({{"array_bytes", s}, {"bytes_per_s", rate}});
    bytes += 3 * s;
    time += 3 * s / rate;
  }
  return bytes / time;
}

// ---- communication ----------------------------------------------------------------------------------------
struct alpha_beta {
  double alpha = 0, beta = 0;
};

/// t ≈ α + β·b by least squares on the relative error (weights 1/t²); α ≥ 0, β > 0.
alpha_beta fit(const std::vector<double>& b, const std::vector<double>& t) {
  double s0 = 0, s1 = 0, s2 = 0, y0 = 0, y1 = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    const double w = 1 / (t[i] * t[i]);
    s0 += w, s1 += w * b[i], s2 += w * b[i] * b[i], y0 += w * t[i], y1 += w * b[i] * t[i];
  }
  alpha_beta f;
  const double det = s0 * s2 - s1 * s1;
  if (det > 0) f = {(y0 * s2 - s1 * y1) / det, (s0 * y1 - s1 * y0) / det};
  if (f.alpha < 0 || det <= 0) f = {0, y1 / s2};
  if (f.beta <= 0) f.beta = t.back() / b.back();
  return f;
}

/// Message sizes in bytes: 4 B … 16 MiB in ×4 steps (--quick: 4 B … 4 MiB in ×16 steps).
std::vector<double> message_sizes(bool quick) {
  std::vector<double> s;
  for (double b = 4; b <= 16 * MiB; b *= quick ? 16 : 4) s.push_back(b);
  return s;
}

/// Per-call seconds of op() at each size: the best of 3 batches of back-to-back calls (the slowest rank).
template <class Op>
std::vector<double> time_sizes(const std::vector<double>& sizes, bool quick, Op&& op) {
  std::vector<double> out;
  for (double bytes : sizes) {
    const std::size_t n = static_cast<std::size_t>(bytes / sizeof(float));
    std::vector<float> a(n, 1.0f), b(n, 0.0f);
    const int calls = static_cast<int>(std::clamp((quick ? 8 : 32) * MiB / bytes, 4.0, quick ? 50.0 : 200.0));
    op(a.data(), b.data(), n);  // warm-up
    out.push_back(best_time(3, [&] {
                    for (int i = 0; i < calls; ++i) op(a.data(), b.data(), n);
                  }) / calls);
  }
  return out;
}

struct comm_result {
  alpha_beta allreduce, p2p;
  nlohmann::json raw = nlohmann::json::object();
};

comm_result measure_comm(ts::mpi_comm& world, bool quick) {
  comm_result r;
  if (world.size() < 2) return r;
  const std::vector<double> sizes = message_sizes(quick);
  const auto ar = time_sizes(sizes, quick, [&](float* a, float* b, std::size_t n) { world.all_reduce(a, b, n); });
  const int rank = world.rank();
  const auto pp = time_sizes(sizes, quick, [&](float* a, float* b, std::size_t n) {
    if (rank == 0) {
      world.send(a, n, 1, 11);
      world.recv(b, n, 1, 12);
    } else if (rank == 1) {
      world.recv(b, n, 0, 11);
      world.send(a, n, 0, 12);
    }
  });
  std::vector<double> one_way(pp.size());
  for (std::size_t i = 0; i < pp.size(); ++i) one_way[i] = pp[i] / 2;
  r.allreduce = fit(sizes, ar);
  r.p2p = fit(sizes, one_way);
  r.raw = {{"bytes", sizes}, {"allreduce_s", ar}, {"p2p_one_way_s", one_way}};
  return r;
}

// ---- the device_desc --------------------------------------------------------------------------------------
/// gemm_half_size: per axis, the h that explains the rate lost at its smallest size (file comment).
double fit_half_size(const ts::host_profile& p) {
  std::vector<int> v[3];
  for (int a = 0; a < 3; ++a) v[a] = ts::host_profile_detail::axis_values(p.gemm, a);
  const double big = p.gemm_flops_per_s(v[0].back(), v[1].back(), v[2].back());
  double log_sum = 0;
  for (int a = 0; a < 3; ++a) {
    int x[3] = {v[0].back(), v[1].back(), v[2].back()};
    const double s = v[a].front(), L = v[a].back();
    x[a] = v[a].front();
    const double rho = p.gemm_flops_per_s(x[0], x[1], x[2]) / big;
    double h = rho >= 1 || s >= L ? 1.0 : rho * L <= s ? L : s * L * (1 - rho) / (rho * L - s);
    log_sum += std::log(std::clamp(h, 1.0, L));
  }
  return std::exp(log_sum / 3);
}

void derive_device(ts::host_profile& p, double memory_bw, int ranks_on_node) {
  ts::device_desc& d = p.device;
  d = ts::hw::host::desc;  // the generic values for what is not measured (attention_efficiency; links at 1 rank)
  d.name = ts::host_profile_detail::intern("host (" + p.cpu + ")");
  d.gemm_efficiency = 0.9;
  d.peak_fp32 = p.best_gemm_flops_per_s() / d.gemm_efficiency;
  d.peak_bf16 = d.peak_fp32;
  d.memory_bytes = meminfo_bytes("MemAvailable") / ranks_on_node;
  d.memory_bw = memory_bw;
  d.memory_efficiency = 1.0;
  d.gemm_half_size = fit_half_size(p);
  d.reserved_bytes = 256 * MiB;
  if (p.ranks_measured >= 2) {
    const double R = p.ranks_measured;
    d.intra_bw = d.inter_bw = 2 * (R - 1) / R / p.allreduce_beta_s_per_byte;
    d.intra_latency = d.inter_latency = p.allreduce_alpha_s / (2 * (R - 1));
  }
}

// ---- output -----------------------------------------------------------------------------------------------
void print_table(std::FILE* o, const ts::host_profile& p, double seconds) {
  const ts::device_desc& d = p.device;
  const auto& best = *std::max_element(p.gemm.begin(), p.gemm.end(),
                                       [](const auto& a, const auto& b) { return a.flops_per_s < b.flops_per_s; });
  const auto& small = p.gemm.front();
  std::fprintf(o, "tessera_calibrate: %s, %d rank(s) x %d thread(s), OpenBLAS %s, %.1f s\n", p.cpu.c_str(),
               p.ranks_measured, p.threads, ts::ops::host::openblas::core().c_str(), seconds);
  std::fprintf(o, "  GEMM fp32 best        %10.2f GFLOP/s per rank (%dx%dx%d)\n", best.flops_per_s / 1e9, best.m,
               best.n, best.k);
  std::fprintf(o, "  GEMM fp32 smallest    %10.2f GFLOP/s per rank (%dx%dx%d)\n", small.flops_per_s / 1e9, small.m,
               small.n, small.k);
  for (const ts::attention_rate& a : p.attention)
    std::fprintf(o, "  attention D=%-3d       %10.2f GFLOP/s forward, %.2f backward\n", a.head_dim,
                 a.forward_flops_per_s / 1e9, a.backward_flops_per_s / 1e9);
  std::fprintf(o, "  share of a core       %10.2f per rank (all ranks sustaining a GEMM)\n", p.sustained_share);
  std::fprintf(o, "  memory bandwidth      %10.2f GB/s per rank (triad, all ranks at once)\n", d.memory_bw / 1e9);
  std::fprintf(o, "  elementwise 1-8 MiB   %10.2f GB/s per rank\n", p.elementwise_bytes_per_s / 1e9);
  if (p.ranks_measured < 2) {
    std::fprintf(o, "  all-reduce, p2p       not measured with 1 rank (alpha = beta = 0; generic host links)\n");
  } else {
    std::fprintf(o, "  all-reduce            alpha %8.2f us, 1/beta %8.2f GB/s\n", p.allreduce_alpha_s * 1e6,
                 1e-9 / p.allreduce_beta_s_per_byte);
    std::fprintf(o, "  p2p (0 <-> 1)         alpha %8.2f us, 1/beta %8.2f GB/s\n", p.p2p_alpha_s * 1e6,
                 1e-9 / p.p2p_beta_s_per_byte);
  }
  std::fprintf(o, "  device: peak_fp32 %.2f GFLOP/s (best / 0.9), gemm_half_size %.0f, memory %.0f MiB per rank\n",
               d.peak_fp32 / 1e9, d.gemm_half_size, d.memory_bytes / MiB);
}

std::string cpp_string(const std::string& s) {
  std::string o;
  for (char c : s) (c == '"' || c == '\\') ? (o += '\\', o += c) : o += c;
  return o;
}

void print_cpp(const ts::host_profile& p) {
  const ts::device_desc& d = p.device;
  std::printf("// measured by tessera_calibrate: %d rank(s) x %d thread(s) on %s\n", p.ranks_measured, p.threads,
              p.cpu.c_str());
  std::printf("struct calibrated_host {\n  static constexpr tessera::device_desc desc{\n      \"%s\",\n",
              cpp_string(d.name).c_str());
  std::printf("      %.6e, %.6e, %.6e, %.6e,\n", d.peak_bf16, d.peak_fp32, d.memory_bytes, d.memory_bw);
  std::printf("      %.6e, %.6e, %.6e, %.6e,\n", d.intra_bw, d.intra_latency, d.inter_bw, d.inter_latency);
  std::printf("      %.4f, %.1f, %.4f, %.4f, %.6e};\n};\n", d.gemm_efficiency, d.gemm_half_size,
              d.attention_efficiency, d.memory_efficiency, d.reserved_bytes);
}

/// "" when `out` can be written (a temporary file beside it is created and removed), else why not.
std::string cannot_write(const std::string& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(out, ec)) return "it is a directory";
  const std::string probe = out + ".tmp" + std::to_string(getpid());
  std::FILE* f = std::fopen(probe.c_str(), "wb");
  if (!f) return std::strerror(errno);
  std::fclose(f);
  std::remove(probe.c_str());
  return {};
}

void write_atomically(const std::string& out, const nlohmann::json& doc) {
  const std::string tmp = out + ".tmp" + std::to_string(getpid());
  {
    std::ofstream f(tmp, std::ios::binary);
    f << doc.dump(2) << "\n";
    f.close();
    ts::check(f.good(), "cannot write --out '", out, "' (writing ", tmp, " failed)");
  }
  if (std::rename(tmp.c_str(), out.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw ts::usage_error(ts::cat("cannot write --out '", out, "': rename from ", tmp, ": ", why));
  }
}

// ---- main -------------------------------------------------------------------------------------------------
/// Parses the flags; returns -1 to go on, else the exit code (messages on rank 0 only).
int parse(int argc, char** argv, int rank, options& o) {
  CLI::App app{"tessera_calibrate: measure this host (GEMM rates, memory bandwidth, MPI all-reduce and p2p) "
               "for the layout planner; run under mpirun with the ranks per node training will use"};
  app.add_option("--out", o.out, "the profile JSON to write (rank 0; atomically)")->required();
  auto* threads = app.add_option("--threads", o.threads, "threads per rank (default: cores / ranks on the node)");
  app.add_flag("--quick", o.quick, "a small grid and short runs (for tests; numbers less accurate)");
  app.add_flag("--emit-cpp", o.emit_cpp, "also print a C++ `struct calibrated_host` to stdout (table to stderr)");
  try {
    app.parse(argc, argv);
    ts::check(threads->count() == 0 || o.threads >= 1, "--threads must be at least 1 (got ", o.threads, ")");
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return rank == 0 ? app.exit(e) : 0;  // --help
    if (rank == 0) std::fprintf(stderr, "tessera_calibrate: error: %s\nRun with --help for usage.\n", e.what());
    return ts::usage_exit_code;
  } catch (const ts::usage_error& e) {
    if (rank == 0) std::fprintf(stderr, "tessera_calibrate: error: %s\n", e.what());
    return ts::usage_exit_code;
  }
  return -1;
}

/// Every measurement, all ranks together; the profile (complete on every rank) and raw data for the JSON.
ts::host_profile measure(ts::mpi_comm& world, const options& o, int ranks_on_node, nlohmann::json& raw) {
  const bool talk = world.rank() == 0;
  ts::host_profile p;
  p.cpu = cpu_brand();
  p.threads = o.threads;
  p.ranks_measured = world.size();
  const std::vector<int> sizes = o.quick ? std::vector<int>{64, 256, 512} : std::vector<int>{64, 256, 1024, 4096};
  const std::size_t shapes = sizes.size() * sizes.size() * sizes.size();
  if (talk) std::fprintf(stderr, "tessera_calibrate: GEMM rates (%zu shapes)...\n", shapes);
  // the trainer's own start-up measurement, taken as it takes it: rank 0 measures, the others wait
  p.reference_peak_flops = world.rank() == 0 ? ts::ops::host::measure_peak_flops<float>() : 0.0;
  world.broadcast(&p.reference_peak_flops, 1, 0);
  p.gemm = measure_gemm(sizes);
  if (talk) std::fprintf(stderr, "tessera_calibrate: attention kernel, share of a core under load...\n");
  p.attention = measure_attention();
  p.sustained_share = measure_cpu_share(p.gemm, o.quick);
  if (talk) std::fprintf(stderr, "tessera_calibrate: memory bandwidth...\n");
  const double array_bytes = stream_array_bytes(o.quick, ranks_on_node);
  const double memory_bw = triad_rate(array_bytes, 1, o.quick ? 3 : 5);
  raw["memory"] = {{"array_bytes", array_bytes}, {"bytes_per_s", memory_bw}};
  raw["elementwise"] = nlohmann::json::array();
  p.elementwise_bytes_per_s = elementwise_rate(raw["elementwise"]);
  if (talk) std::fprintf(stderr, "tessera_calibrate: MPI all-reduce and p2p...\n");
  const comm_result c = measure_comm(world, o.quick);
  p.allreduce_alpha_s = c.allreduce.alpha, p.allreduce_beta_s_per_byte = c.allreduce.beta;
  p.p2p_alpha_s = c.p2p.alpha, p.p2p_beta_s_per_byte = c.p2p.beta;
  raw["comm"] = c.raw;
  derive_device(p, memory_bw, ranks_on_node);
  return p;
}

int run(options o) {
  ts::mpi_comm world = ts::mpi_comm::world();
  const int rank = world.rank();
  const std::string why = rank == 0 ? cannot_write(o.out) : std::string();
  int bad = why.empty() ? 0 : 1;
  MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (bad) {
    if (rank == 0)
      std::fprintf(stderr, "tessera_calibrate: error: cannot write --out '%s': %s\n", o.out.c_str(), why.c_str());
    return ts::usage_exit_code;
  }
  const int ranks_on_node = world.split_by_node().size();
  if (o.threads == 0) o.threads = ts::train_detail::default_threads(ranks_on_node);
  omp_set_num_threads(o.threads);
  openblas_set_num_threads(o.threads);
  const auto t0 = clk::now();
  nlohmann::json raw;
  const ts::host_profile p = measure(world, o, ranks_on_node, raw);
  const double seconds = seconds_since(t0);
  if (rank != 0) return 0;
  nlohmann::json doc = ts::to_json(p);
  raw["openblas_core"] = ts::ops::host::openblas::core();
  raw["bf16_hardware"] = ts::cpu::cpu_has_bf16_hardware();
  raw["quick"] = o.quick;
  raw["seconds"] = seconds;
  doc["raw"] = raw;
  if (p.ranks_measured < 2)
    doc["notes"] = "1 rank: all-reduce and p2p not measured (alpha = beta = 0); device links are ts::hw::host's";
  write_atomically(o.out, doc);
  print_table(o.emit_cpp ? stderr : stdout, p, seconds);
  std::fprintf(o.emit_cpp ? stderr : stdout, "wrote %s\n", o.out.c_str());
  if (o.emit_cpp) print_cpp(p);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ts::ops::host::openblas::restart_with_cpu_kernels();  // as the trainer does: measure the kernels it runs
  ts::mpi_environment env(argc, argv);
  options o;
  if (const int rc = parse(argc, argv, env.rank(), o); rc >= 0) return rc;
  try {
    return run(o);
  } catch (const ts::usage_error& e) {
    std::fprintf(stderr, "tessera_calibrate: error: %s (rank %d)\n", e.what(), env.rank());
    return ts::usage_exit_code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tessera_calibrate: error: %s (rank %d)\n", e.what(), env.rank());
    std::fflush(stderr);
    env.abort(1);
  }
}
