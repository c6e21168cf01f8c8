// tessera/train/slot_sharing.hpp — which pipeline ranks hold each parameter slot.
//
// A slot belongs to the model stages whose chunks use it: the embedding to the first (and, when tied,
// to the last), positions to the first, the final norm and head to the last, layer i's slots to the
// stage whose layer range holds i. A model stage is held by one pipeline rank — by two under Chimera
// (its two pipelines place each stage on two ranks). A slot held by several pipeline ranks is *shared*:
// its gradient is summed over them, its optimizer state is never sharded, and the first holder owns it
// for the norm, checkpoints and exports. A slot's unit (model/params.hpp) says where it belongs.
#pragma once
#include <set>
#include <string>
#include <vector>

#include "tessera/model/params.hpp"
#include "tessera/schedule/schedule.hpp"
#include "tessera/train/plan.hpp"

namespace tessera {

/// The pipeline ranks that hold model stage ms, ascending.
inline std::vector<int> stage_holders(const plan_desc& pd, int ms) {
  std::set<int> r;
  for (int g = 0; g < num_stages(pd.schedule); ++g)
    if (pd.model_stage(g) == ms) r.insert(stage_rank(pd.schedule, g));
  return {r.begin(), r.end()};
}

/// Whether model stage ms uses a slot of unit u.
inline bool stage_uses(const plan_desc& pd, int ms, const slot_unit& u) {
  const int last = pd.model_stages - 1;
  switch (u.where) {
    case slot_unit::part::input: return ms == 0 || (u.token_embedding && pd.model.tied_embeddings && ms == last);
    case slot_unit::part::layer: return u.layer >= pd.layer_begin[ms] && u.layer < pd.layer_begin[ms + 1];
    case slot_unit::part::output: return ms == last;
  }
  return false;
}

/// The pipeline ranks that hold a slot of unit u, ascending.
inline std::vector<int> slot_holders(const plan_desc& pd, const slot_unit& u) {
  std::set<int> r;
  for (int ms = 0; ms < pd.model_stages; ++ms)
    if (stage_uses(pd, ms, u))
      for (int x : stage_holders(pd, ms)) r.insert(x);
  return {r.begin(), r.end()};
}
inline std::vector<int> slot_holders(const plan_desc& pd, const std::string& name) {
  return slot_holders(pd, unit_of_slot(name));
}

/// Every distinct set of two or more pipeline ranks that share slots, in one order on every rank.
inline std::set<std::vector<int>> sharing_groups(const plan_desc& pd) {
  std::set<std::vector<int>> sets;
  for (int ms = 0; ms < pd.model_stages; ++ms) {
    auto h = stage_holders(pd, ms);
    if (h.size() > 1) sets.insert(h);
  }
  const auto embed = slot_holders(pd, "embed");
  if (embed.size() > 1) sets.insert(embed);
  return sets;
}

}  // namespace tessera
