// The Metal kernels' tap tables (layout in kernels/kernel_params.h), built
// on the host once per call from the math header's taps, windows and output
// ranges: the kernels read each position's taps and weights instead of
// recomputing them in every thread.
//
// The rows are those of the CPU path's gather tables (cpu/gather_table.h),
// from the same functions in the same order: forward, each output's taps or
// window; backward, each input's outputs (output_range + weight_of_input, or
// the transposed forward window rows).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernel_params.h"

namespace mlx_upsample::metal {

// uint2 words: (first, end) row pairs and (offset, weight bits) taps.
struct TapTables {
  std::vector<uint32_t> words; // two per uint2 word

  uint32_t size() const {
    return static_cast<uint32_t>(words.size() / 2);
  }
  size_t bytes() const {
    return words.size() * sizeof(uint32_t);
  }
};

// Appends the rows of one axis (one per position of the array written,
// forward the outputs, backward the inputs) with source offsets index *
// `stride`; returns the word of its first row pair (AxisParams::rows).
// Throws std::invalid_argument if an offset does not fit in 32 bits.
uint32_t append_axis(
    TapTables& t,
    const upsample::AxisMap& a,
    int mode,
    bool backward,
    uint64_t stride);

// The magic number and shift of upsample::divide for divisor d >= 1.
upsample::Divisor magic_divisor(uint32_t d);

} // namespace mlx_upsample::metal
