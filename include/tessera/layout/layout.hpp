// tessera/layout/layout.hpp — the layout layer: axes, meshes, placements, shard shapes, transitions.
#pragma once
#include "tessera/layout/axis.hpp"
#include "tessera/layout/mesh.hpp"
#include "tessera/layout/placement.hpp"
#include "tessera/layout/requirements.hpp"
#include "tessera/layout/shard_shape.hpp"
#include "tessera/layout/transition.hpp"
