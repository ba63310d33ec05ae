// The Metal kernels' tap tables (layout in kernels/kernel_params.h), built
// on the host once per call from the math header's taps, windows and output
// ranges: the kernels read each position's taps and weights instead of
// recomputing them in every thread.
//
// The rows are the CPU path's gather table rows, built by the same builder
// (build_rows, gather_table.h) a piece at a time and packed as they come:
// forward, each output's taps or window; backward, each input's outputs
// (the forward rows transposed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "gather_table.h"
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

// The most uint32 words a table may hold: eval_gpu hands the words to an
// mx::array, whose shape is an int (plan_launch refuses larger tables).
constexpr uint64_t MAX_TABLE_WORDS = 0x7FFFFFFF;

// An upper bound, in O(1), on the uint32 words append_axis adds for `axis`
// (from table_entries_bound, gather_table.h), so that a call is refused
// before its tables are built.
uint64_t axis_words_bound(const AxisGather& axis);

// The bytes append_axis holds while it builds an axis, besides the words: a
// piece of rows of the row builder.
double append_axis_piece_bytes(const AxisGather& axis);

// Appends the rows of one axis (one per position of the array written,
// forward the outputs, backward the inputs) with source offsets index *
// `stride`; returns the word of its first row pair (AxisParams::rows).
// Throws std::invalid_argument if an offset does not fit in 32 bits; the
// caller keeps the table within MAX_TABLE_WORDS (axis_words_bound).
uint32_t append_axis(TapTables& t, const AxisGather& axis, uint64_t stride);

// The magic number and shift of upsample::divide for divisor d >= 1.
upsample::Divisor magic_divisor(uint32_t d);

} // namespace mlx_upsample::metal
