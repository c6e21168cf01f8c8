// tessera/train/options.hpp — the command line of every ts::train program (docs/training.md), with CLI11.
#pragma once
#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "tessera/optim/adamw.hpp"

namespace tessera {

struct train_options {
  std::string data;
  int steps = 100;
  int batch = 0;  ///< 0 = dp × M
  double lr = 3e-4, min_lr = 0.0;
  int warmup = 0;
  double weight_decay = 0.0, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, grad_clip = 1.0;
  std::uint64_t seed = 1234;
  bool shuffle = false;
  bool eval_only = false;
  int eval_batches = 8;
  std::string init_from, export_to, save_dir, resume_dir, log_json;
  std::string export_dtype = "f32";  ///< f32 or bf16
  int save_every = 0;    ///< 0 = only at the end
  int stop_after = 0;    ///< 0 = run to --steps
  int sample = 0;        ///< tokens to generate at the end
  std::string prompt = "\n";
  double temperature = 0.8;
  std::string backend;  ///< "" = default
  std::string comm = "auto";  ///< --backend cuda: auto, staged or nccl
  int threads = 0;      ///< 0 = the CPUs this rank may use, at most cores / ranks on this node
  double peak_tflops = 0;
  int log_every = 1;
  double bucket_mb = 25;  ///< dp gradient all-reduce bucket size
  bool quiet = false;
  bool profile = false;
  std::string trace;  ///< --trace FILE: the last step of every rank as a Chrome/Perfetto trace
  double hang_timeout = 0;               ///< seconds; 0 = automatic, < 0 = no watchdog
  int snapshot_every = 0;                ///< in-memory snapshots every N steps (0 = none)
  std::string snapshot_dir;              ///< "" = /dev/shm/tessera-snapshots-<job>
  std::vector<std::string> inject_faults;  ///< KIND@STEP[:RANK] (train/faults.hpp)
};

/// Registers every flag on `app`.
inline void add_train_flags(CLI::App& app, train_options& o) {
  // a flag given twice takes its last value (so scripts can put defaults first and users override them)
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--data", o.data, "training/eval tokens: an llm.c token shard or any file read as bytes")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--steps", o.steps, "optimizer steps")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--batch", o.batch, "global sequences per step (default dp x microbatches)")
      ->check(CLI::PositiveNumber);
  app.add_option("--lr", o.lr, "AdamW learning rate (peak)")->capture_default_str();
  app.add_option("--min-lr", o.min_lr, "learning rate at the end of the cosine decay")->capture_default_str();
  app.add_option("--warmup", o.warmup, "linear warmup steps")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--weight-decay", o.weight_decay, "decoupled weight decay (matrices and embeddings)")
      ->capture_default_str();
  app.add_option("--beta1", o.beta1, "AdamW beta1")->capture_default_str();
  app.add_option("--beta2", o.beta2, "AdamW beta2")->capture_default_str();
  app.add_option("--eps", o.eps, "AdamW epsilon (added after the square root)")->capture_default_str();
  app.add_option("--grad-clip", o.grad_clip, "global gradient-norm clipping (0 = off)")->capture_default_str();
  app.add_option("--seed", o.seed, "parameter init and shuffling")->capture_default_str();
  app.add_flag("--shuffle", o.shuffle, "sample training windows by a seeded permutation");
  app.add_flag("--eval-only", o.eval_only, "no update: print and log the mean loss over the first K batches");
  app.add_option("--eval-batches", o.eval_batches, "K batches for --eval-only")->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--init-from", o.init_from, "load parameters from a safetensors file (HF names)")
      ->check(CLI::ExistingFile);
  app.add_option("--export", o.export_to, "write the final parameters as one safetensors file (HF names)");
  app.add_option("--export-dtype", o.export_dtype, "dtype of --export: f32 or bf16")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "bf16"}));
  app.add_option("--save", o.save_dir, "write sharded checkpoints under DIR (DIR/step_<8 digits>/)");
  app.add_option("--save-every", o.save_every, "checkpoint every N steps (and after the last step); 0 = at the end only")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--resume", o.resume_dir,
                 "continue from the newest complete checkpoint in DIR (any layout: it is resharded on load)");
  app.add_option("--stop-after", o.stop_after,
                 "stop once N steps (counted from step 0) are done, saving a checkpoint first with --save; "
                 "--resume continues as if never stopped")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--sample", o.sample, "at the end, generate N tokens after --prompt and print them (rank 0)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--prompt", o.prompt, "text (bytes) that --sample continues")->capture_default_str();
  app.add_option("--temperature", o.temperature, "sampling temperature of --sample (0 = greedy)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--log-json", o.log_json, "write one JSON object per line to FILE");
  app.add_option("--backend", o.backend, "host or cuda (default: cuda if built with CUDA and a GPU exists)")
      ->check(CLI::IsMember({"host", "cuda"}));
  app.add_option("--comm", o.comm,
                 "--backend cuda: nccl (a GPU per rank), staged (through host memory and MPI; ranks may share a GPU) "
                 "or auto (nccl when every rank of a multi-rank job has a GPU of its own, else staged)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "staged", "nccl"}));
  app.add_option("--threads", o.threads,
                 "CPU threads per rank (default: the CPUs this rank may use, at most cores / ranks on this node)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--peak-tflops", o.peak_tflops, "peak TFLOP/s per rank for MFU (default: measured)");
  app.add_option("--log-every", o.log_every, "progress line every N steps")->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--bucket-mb", o.bucket_mb, "size of the gradient buckets all-reduced over dp (MiB)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--quiet", o.quiet, "no progress lines on stderr");
  app.add_option("--hang-timeout", o.hang_timeout,
                 "end the job with a report naming the rank(s) behind when a rank makes no progress for S seconds "
                 "(0 = automatic: 600 s until the first step, then max(60 s, 20 x the slowest step); -1 = off)")
      ->capture_default_str();
  app.add_option("--snapshot-every", o.snapshot_every,
                 "keep the newest state of every rank in node-local memory every N steps, with a replica on a peer "
                 "rank: a restarted job resumes from it when it is newer than the disk checkpoint (0 = off)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--snapshot-dir", o.snapshot_dir,
                 "node-local directory of the snapshots (default /dev/shm/tessera-snapshots-<hash of --save>)");
  app.add_option("--inject-fault", o.inject_faults,
                 "test a job's survival: KIND@STEP[:RANK] with KIND kill, hang, exception, nan, slow or corrupt (repeatable; "
                 "each fires once per job under scripts/tessera-run)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--trace", o.trace,
                 "write the last step of every rank (operators, communication from start to completion, pipeline "
                 "actions) to FILE as a Chrome/Perfetto trace (chrome://tracing, ui.perfetto.dev)");
  app.add_flag("--profile", o.profile,
               "time every operator (after one warm-up step) and print rank 0's breakdown per step, with each "
               "GEMM shape's speed against the same GEMM run alone");
}

/// The optimizer's part of the options.
inline adamw_config adamw_of(const train_options& o) {
  return {.lr = o.lr, .min_lr = o.min_lr, .warmup = o.warmup, .steps = o.steps, .beta1 = o.beta1, .beta2 = o.beta2,
          .eps = o.eps, .weight_decay = o.weight_decay, .grad_clip = o.grad_clip};
}

}  // namespace tessera
