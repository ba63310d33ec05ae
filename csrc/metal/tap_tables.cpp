#include "metal/tap_tables.h"

#include <cstring>
#include <stdexcept>
#include <string>

namespace mlx_upsample::metal {

namespace {

struct Tap {
  int index;
  float weight;
};

// Forward rows: each output's taps (tap modes, indices repeated at the
// edges) or its window (antialias, area), in tap order.
std::vector<std::vector<Tap>> forward_rows(const upsample::AxisMap& a, int mode) {
  std::vector<std::vector<Tap>> rows(a.out_size);
  for (int i = 0; i < a.out_size; ++i) {
    if (upsample::is_window_mode(mode)) {
      upsample::TapWindow w = upsample::tap_window(a, mode, i);
      for (int k = 0; k < w.count; ++k) {
        rows[i].push_back({w.first + k, upsample::tap_weight(a, mode, w, w.first + k)});
      }
    } else {
      upsample::Taps t = upsample::axis_taps(a, mode, i);
      for (int k = 0; k < t.count; ++k) {
        rows[i].push_back({t.index[k], t.weight[k]});
      }
    }
  }
  return rows;
}

// Backward rows: the outputs that read each input, ascending. For windows
// the transposed forward rows (the rows output_range + weight_of_input give,
// as windows are contiguous, in O(taps) rather than O(taps * window)).
std::vector<std::vector<Tap>> backward_rows(const upsample::AxisMap& a, int mode) {
  std::vector<std::vector<Tap>> rows(a.in_size);
  if (upsample::is_window_mode(mode)) {
    std::vector<std::vector<Tap>> fwd = forward_rows(a, mode);
    for (int i = 0; i < a.out_size; ++i) {
      for (const Tap& t : fwd[i]) {
        rows[t.index].push_back({i, t.weight});
      }
    }
    return rows;
  }
  for (int j = 0; j < a.in_size; ++j) {
    upsample::OutputRange r = upsample::output_range(a, mode, j);
    for (int i = r.begin; i < r.end; ++i) {
      rows[j].push_back({i, upsample::weight_of_input(a, mode, i, j)});
    }
  }
  return rows;
}

uint32_t weight_bits(float w) {
  uint32_t bits;
  std::memcpy(&bits, &w, sizeof(bits));
  return bits;
}

} // namespace

uint32_t append_axis(
    TapTables& t,
    const upsample::AxisMap& a,
    int mode,
    bool backward,
    uint64_t stride) {
  std::vector<std::vector<Tap>> rows =
      backward ? backward_rows(a, mode) : forward_rows(a, mode);
  uint64_t taps = 0;
  for (const auto& row : rows) {
    taps += row.size();
  }
  uint64_t first_row = t.size();
  if (first_row + rows.size() + taps > 0xFFFFFFFFull) {
    throw std::invalid_argument("[upsample] the Metal tap tables exceed 2^32 entries");
  }
  uint64_t largest = backward ? uint64_t(a.out_size - 1) : uint64_t(a.in_size - 1);
  if (largest * stride > 0xFFFFFFFFull) {
    throw std::invalid_argument(
        "[upsample] a Metal tap offset exceeds 32 bits (stride " +
        std::to_string(stride) + ")");
  }
  uint32_t tap = static_cast<uint32_t>(first_row + rows.size());
  t.words.reserve(t.words.size() + 2 * (rows.size() + taps));
  for (const auto& row : rows) {
    t.words.push_back(tap);
    tap += static_cast<uint32_t>(row.size());
    t.words.push_back(tap);
  }
  for (const auto& row : rows) {
    for (const Tap& e : row) {
      t.words.push_back(static_cast<uint32_t>(uint64_t(e.index) * stride));
      t.words.push_back(weight_bits(e.weight));
    }
  }
  return static_cast<uint32_t>(first_row);
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
