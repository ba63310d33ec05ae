// The parameters of one grid_sample call and the kernels' parameter block
// they give for an input's sizes.
//
// Plain C++ (no MLX): shared by the primitives, the CPU path, the Metal
// launch plan and the Metal emulator used in the tests.
#pragma once

#include <string>
#include <vector>

#include "grid_sample_math.h"

namespace mlx_upsample {

// What defines the operator, independent of the shapes (a shapeless-compiled
// graph re-uses it). The mode is one of upsample::Mode's tap modes: nearest,
// linear (torch's "bilinear", trilinear in 3-D) or cubic ("bicubic", 2-D).
struct GridSampleParams {
  upsample::Mode mode;
  upsample::Padding padding;
  bool align_corners;

  bool operator==(const GridSampleParams& o) const {
    return mode == o.mode && padding == o.padding && align_corners == o.align_corners;
  }
  // "bilinear, padding_mode=zeros, align_corners=False", in torch's words.
  std::string describe(int dims) const;
};

// torch's names: "nearest", "bilinear" or "bicubic" ("trilinear" does not
// exist there: a 3-D "bilinear" is trilinear); "zeros", "border" or
// "reflection".
const char* grid_mode_name(upsample::Mode m);
const char* padding_name(upsample::Padding p);

// Throws std::invalid_argument for a mode grid_sample does not have, or
// cubic in 3-D (torch has no tricubic).
void validate(const GridSampleParams& p, int dims);

// The kernels' parameter block for an input of spatial sizes `spatial`
// (D, H, W or H, W: the array's order).
upsample::GridSampleArgs grid_sample_args(
    const GridSampleParams& p,
    const std::vector<int>& spatial);

} // namespace mlx_upsample
