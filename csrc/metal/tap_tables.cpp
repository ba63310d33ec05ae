#include "metal/tap_tables.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "gather_table.h"

namespace mlx_upsample::metal {

namespace {

uint32_t weight_bits(float w) {
  uint32_t bits;
  std::memcpy(&bits, &w, sizeof(bits));
  return bits;
}

} // namespace

uint64_t axis_words_bound(const AxisGather& axis) {
  uint64_t rows = static_cast<uint64_t>(axis.rows());
  return 2 * (rows + static_cast<uint64_t>(table_entries_bound(axis)));
}

double append_axis_piece_bytes(const AxisGather& axis) {
  // A piece's share of the whole table's peak, twice over for the outputs a
  // backward piece shares with its neighbours at its edges.
  double rows = axis.rows();
  return table_bytes_bound(axis) * std::min(1.0, 2.0 * BUILDER_PIECE_ROWS / rows);
}

uint32_t append_axis(TapTables& t, const AxisGather& axis, uint64_t stride) {
  int rows = axis.rows();
  uint64_t bound = axis_words_bound(axis);
  uint64_t largest = uint64_t(axis.sources() - 1);
  if (largest * stride > 0xFFFFFFFFull) {
    throw std::invalid_argument(
        "[upsample] a Metal tap offset exceeds 32 bits (stride " +
        std::to_string(stride) + ")");
  }
  // The row pairs first, filled in as the taps after them are appended.
  uint32_t first_row = t.size();
  size_t pairs = t.words.size();
  t.words.reserve(t.words.size() + bound);
  t.words.resize(pairs + 2 * size_t(rows));
  uint32_t tap = first_row + static_cast<uint32_t>(rows);
  GatherTable piece;
  for (int r0 = 0; r0 < rows; r0 += BUILDER_PIECE_ROWS) {
    build_rows(axis, r0, std::min(rows, r0 + BUILDER_PIECE_ROWS), piece);
    for (int r = 0; r < piece.rows; ++r) {
      size_t pair = pairs + 2 * size_t(r0 + r);
      t.words[pair] = tap;
      for (int64_t e = piece.begin(r); e < piece.begin(r) + piece.count(r); ++e) {
        // The nearest forward rows have no weights: every one is 1.
        float w = piece.weight.empty() ? 1.0f : piece.weight[e];
        t.words.push_back(static_cast<uint32_t>(uint64_t(piece.index[e]) * stride));
        t.words.push_back(weight_bits(w));
      }
      tap += static_cast<uint32_t>(piece.count(r));
      t.words[pair + 1] = tap;
    }
  }
  return first_row;
}

upsample::Divisor magic_divisor(uint32_t d) {
  if (d == 0) {
    throw std::invalid_argument("[upsample] division by a zero-length axis");
  }
  uint32_t shift = 0;
  while ((uint64_t(1) << shift) < d) {
    ++shift;
  }
  // ceil(2^(31 + shift) / d) < 2^32 (kernel_params.h).
  uint64_t magic = ((uint64_t(1) << (31 + shift)) + d - 1) / d;
  return {static_cast<uint32_t>(magic), shift};
}

} // namespace mlx_upsample::metal
