// A separable resampling as a sequence of one-axis gather passes.
//
// Forward and backward are the same machine: pass p turns an array viewed as
// (outer, src_len, inner) into (outer, dst_len, inner) with
//   dst[o, i, :] = sum_{e in row i} weight[e] * src[o, index[e], :]
// where row i of the pass's gather table lists the source rows read by i.
// Forward tables come from the taps (or, for the antialias and area modes,
// the window) of each output (math header); backward tables list, for each
// input, the outputs that read it (output_range, or the transposed forward
// table for windows), so the backward pass is a deterministic gather with no
// atomics.
#pragma once

#include <cstdint>
#include <vector>

#include "upsample_params.h"

namespace mlx_upsample::cpu {

struct GatherTable {
  int taps; // entries per row when uniform, else 0
  std::vector<int> offsets; // dst_len + 1
  std::vector<int> index;
  std::vector<float> weight;

  // Every row reads exactly its own index with weight 1.
  bool is_identity() const;
};

GatherTable forward_table(const upsample::AxisMap& a, int mode);
GatherTable backward_table(const upsample::AxisMap& a, int mode);

struct AxisPass {
  int axis;
  int64_t outer;
  int64_t inner;
  int src_len;
  int dst_len;
  GatherTable table;
};

// The passes that take `src_shape` (N, *spatial, C) to `dst_shape`, cheapest
// order first (the axes that shrink the data most run first), skipping axes
// whose table is the identity.
std::vector<AxisPass> plan_passes(
    const std::vector<int>& src_shape,
    const std::vector<int>& dst_shape,
    std::vector<GatherTable> tables);

} // namespace mlx_upsample::cpu
