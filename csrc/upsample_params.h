// The parameters of one upsample call and how they become per-axis maps.
//
// Plain C++ (no MLX): shared by the primitives, the CPU path, the Metal
// launch plan and the Metal emulator used in the tests.
#pragma once

#include <string>
#include <vector>

#include "upsample_math.h"

namespace mlx_upsample {

// Which reference the coordinate rules follow (docs/semantics.md).
enum class Family { MLX, PyTorch };

struct UpsampleParams;

// Every mode but the two nearest ones weighs its taps (float math).
bool is_weighted(upsample::Mode m);

// interpolate keeps uint8 in its linear and cubic modes (with and without
// antialias) and rounds like PyTorch's uint8 kernels; every other weighted
// case turns integers into float32 (mlx.nn's rule; PyTorch has no integer
// kernels there).
bool keeps_uint8(const UpsampleParams& p);

// Everything that defines the operator, independent of the input shape so
// that a shapeless-compiled graph can re-use it for new shapes. Per spatial
// axis either a scale factor (output = floor(N * scale)) or a fixed size.
struct UpsampleParams {
  Family family;
  // Antialiased linear and cubic are filters whose support widens with the
  // downscale factor; nearest-exact and area (adaptive average pooling
  // windows) are PyTorch rules (validate).
  upsample::Mode mode;
  bool align_corners;
  // PyTorch: derive the kernel scale from the sizes instead of 1 / scale.
  bool recompute_scale;
  std::vector<double> scales; // per axis; 0 where a size is given
  std::vector<int> sizes; // per axis; 0 where a scale is given

  int spatial_dims() const {
    return static_cast<int>(scales.size());
  }
  bool operator==(const UpsampleParams& o) const;
  std::string describe() const;
};

// Throws std::invalid_argument when the parameters are inconsistent.
void validate(const UpsampleParams& p);

// The output length of `axis` for an input length `in_size` (may be 0: the
// caller decides whether that is an error).
long long output_size(const UpsampleParams& p, int axis, int in_size);

upsample::AxisMap
axis_map(const UpsampleParams& p, int axis, int in_size, int out_size);

// How messages (UpsampleParams::describe) spell a mode: "nearest",
// "nearest-exact", "linear", "cubic", "antialias-linear", "antialias-cubic"
// or "area"; and a family: "mlx" or "pytorch".
const char* mode_name(upsample::Mode m);
const char* family_name(Family f);

} // namespace mlx_upsample
