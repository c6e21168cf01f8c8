// tests/fuzz/fuzz_seeds.cpp — the seed program: ts::train on the fuzz harnesses' tiny models, so their seeds
// are files the library itself writes (scripts/fuzz.sh: a checkpoint of the GPT under tp = 2, the HF
// exports of both models). argv[1] names the plan, the rest are ts::train's flags.
#include "../train/parity_plans.hpp"
#include "fuzz_models.hpp"

namespace {
constexpr parity::entry plans[] = {
    {"gpt", parity::run<fuzz::one_rank<fuzz::gpt>>},
    {"llama", parity::run<fuzz::one_rank<fuzz::llama>>},
    {"gpt_tp2", parity::run<tessera::plan<fuzz::gpt, tessera::mesh<tessera::tp<2>>, tessera::gpipe<1>>>},
};
}  // namespace

int main(int argc, char** argv) { return parity::dispatch(plans, argc, argv); }
