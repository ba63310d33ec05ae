// The one-axis gather tables of a separable resampling.
//
// Forward and backward are the same machine: along one axis,
//   dst[..., i, ...] = sum_{e in row i} weight[e] * src[..., index[e], ...]
// where row i of the axis's gather table lists the source rows read by i.
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

// Upper bounds, in O(1), that let a call be refused before its tables are
// built: the entries of the forward table of `a` (the backward table holds
// the same entries, transposed), and the bytes that building the forward or
// backward table holds at its peak. Kept next to the builders they describe.
int64_t table_entries_bound(const upsample::AxisMap& a, int mode);
double table_bytes_bound(const upsample::AxisMap& a, int mode, bool backward);

} // namespace mlx_upsample::cpu
