// interpolate on uint8 (linear and cubic, with and without antialias), as
// PyTorch's CPU kernels compute it, to the bit.
//
// PyTorch resamples uint8 one axis at a time, the last (contiguous) axis
// first, skipping axes whose size does not change, and rounds and clamps to
// uint8 after every axis. Each axis's weights are computed in double, then
// scaled to int16 with a precision chosen from the axis's largest weight;
// a pass sums int16 weight x uint8 pixel in int32 from half of one unit of
// that precision, shifts right and clamps to [0, 255]. Its vectorised
// (AVX2, up to 4 channels) and generic paths compute the same integers.
//
// The weights cannot come from the shared math header (double, which Metal
// lacks; and PyTorch's uint8 weights are not its float ones: windows
// truncated and renormalised at the edges, edge taps of cubic merged), so
// they are written here, for the CPU only; on a GPU stream the op raises
// NotImplementedError.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "upsample_params.h"

namespace mlx_upsample::cpu {

// One axis: output i reads inputs first[i] .. first[i] + count[i] - 1 with
// weights weight[i * stride ...] / 2^precision.
struct FixedPointAxis {
  int in_size = 0;
  int out_size = 0;
  int stride = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int16_t> weight;
  int precision = 0;
};

FixedPointAxis fixed_point_axis(const UpsampleParams& p, int axis, int in_size, int out_size);

// The sizes in bytes of the two arrays the passes alternate between: pass k
// of all but the last writes buffer k % 2. Zero where no pass uses one.
std::array<int64_t, 2> uint8_buffer_bytes(
    int64_t batch,
    int64_t channels,
    const std::vector<int>& src_sizes,
    const std::vector<int>& dst_sizes);

// dst = the resampling of src, both (batch, *sizes, channels) uint8,
// contiguous. Axes whose size does not change are skipped (PyTorch copies
// them, even when the scale is not 1); intermediate results are uint8 like
// PyTorch's, in `buffers`, of uint8_buffer_bytes each: allocated by the
// caller, before the work is enqueued, so that running out of memory is an
// error of the call and not of the stream's worker.
void uint8_resample(
    const uint8_t* src,
    uint8_t* dst,
    int64_t batch,
    int64_t channels,
    const std::vector<int>& src_sizes,
    const std::vector<int>& dst_sizes,
    const std::vector<FixedPointAxis>& axes,
    uint8_t* const buffers[2]);

} // namespace mlx_upsample::cpu
