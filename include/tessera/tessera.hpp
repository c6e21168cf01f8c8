// tessera/tessera.hpp — the umbrella header: everything a program needs.
//
// Host programs get the host backend (MPI). Compiled by nvcc (-x cu), the CUDA backend (cuda_system,
// NCCL) comes too.
#pragma once
#include "tessera/comm/communicator.hpp"
#include "tessera/comm/consensus.hpp"
#include "tessera/comm/loopback.hpp"
#include "tessera/comm/mesh_comms.hpp"
#include "tessera/comm/mpi.hpp"
#include "tessera/comm/redistribute.hpp"
#include "tessera/comm/staged.hpp"
#include "tessera/core/box.hpp"
#include "tessera/core/core.hpp"
#include "tessera/core/host_system.hpp"
#include "tessera/layout/layout.hpp"
#include "tessera/model/config.hpp"
#include "tessera/model/params.hpp"
#include "tessera/model/transformer.hpp"
#include "tessera/optim/adamw.hpp"
#include "tessera/ops/all.hpp"
#include "tessera/ops/host.hpp"
#include "tessera/schedule/schedule.hpp"
#include "tessera/train/checkpoint.hpp"
#include "tessera/train/data.hpp"
#include "tessera/train/plan.hpp"
#include "tessera/train/train.hpp"
#include "tessera/train/trainer.hpp"
#include "tessera/train/training_run.hpp"
#if defined(__CUDACC__)
#include "tessera/comm/nccl.hpp"
#include "tessera/core/cuda_system.hpp"
#endif
