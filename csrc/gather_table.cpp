#include "gather_table.h"

#include <algorithm>
#include <cmath>

namespace mlx_upsample {

using upsample::AxisMap;
using upsample::Taps;

bool GatherTable::is_identity(int first_row) const {
  for (int i = 0; i < rows; ++i) {
    for (int64_t e = begin(i); e < begin(i) + count(i); ++e) {
      float w = weight.empty() ? 1.0f : weight[e];
      if (w != (index[e] == first_row + i ? 1.0f : 0.0f)) {
        return false;
      }
    }
  }
  return true;
}

namespace {

// Sets `taps` for a table whose rows were built one by one: their common
// length if they all have one (a backward nearest x2 lists two outputs per
// input), which lets the kernels unroll the tap loop and drops the offsets.
void compact(GatherTable& t) {
  int length = t.rows > 0 ? static_cast<int>(t.offsets[1]) : 0;
  for (int i = 0; i < t.rows; ++i) {
    if (t.offsets[i + 1] - t.offsets[i] != length) {
      t.taps = 0;
      return;
    }
  }
  t.taps = length;
  if (length > 0) {
    t.offsets.clear();
  }
}

void forward_rows(const AxisMap& a, upsample::Mode mode, int r0, int r1, GatherTable& t) {
  t.rows = r1 - r0;
  t.offsets.clear();
  t.index.clear();
  t.weight.clear();
  if (!upsample::is_window_mode(mode)) {
    t.taps = upsample::taps_per_output(mode);
    bool unit_weights = upsample::is_nearest_mode(mode);
    t.index.resize(size_t(t.rows) * t.taps);
    t.weight.resize(unit_weights ? 0 : size_t(t.rows) * t.taps);
    for (int i = r0; i < r1; ++i) {
      Taps taps = upsample::axis_taps(a, mode, i);
      size_t e = size_t(i - r0) * t.taps;
      for (int k = 0; k < t.taps; ++k) {
        t.index[e + k] = taps.index[k];
        if (!unit_weights) {
          t.weight[e + k] = taps.weight[k];
        }
      }
    }
    return;
  }
  // Window modes (antialias, area): one row per output listing its window,
  // weights from the math header; rows may differ in length.
  t.offsets.resize(size_t(t.rows) + 1);
  t.offsets[0] = 0;
  for (int i = r0; i < r1; ++i) {
    upsample::TapWindow w = upsample::tap_window(a, mode, i);
    for (int k = 0; k < w.count; ++k) {
      t.index.push_back(w.first + k);
      t.weight.push_back(upsample::tap_weight(a, mode, w, w.first + k));
    }
    t.offsets[i - r0 + 1] = static_cast<int64_t>(t.index.size());
  }
  compact(t);
}

// Backward rows [j0, j1): the forward rows of the outputs that read them,
// transposed. Input j's row lists the outputs whose taps (or window) hold j,
// ascending (the outputs output_range(j) gives: tap indices, and windows,
// are contiguous, so every one of them has a tap on j), each with the total
// weight of its taps on j, summed in tap order from 0 (taps repeat at the
// edges); O(taps) per entry.
void backward_rows(const AxisMap& a, upsample::Mode mode, int j0, int j1, GatherTable& t) {
  t.rows = j1 - j0;
  t.offsets.assign(size_t(t.rows) + 1, 0);
  t.index.clear();
  t.weight.clear();
  if (t.rows == 0) {
    t.taps = 0;
    return;
  }
  // Every output that reads [j0, j1) lies between the first one that
  // reads j0 or beyond and the last one that reads j1 - 1 or before.
  int i0 = upsample::output_range(a, mode, j0).begin;
  int i1 = std::max(i0, upsample::output_range(a, mode, j1 - 1).end);
  GatherTable fwd;
  forward_rows(a, mode, i0, i1, fwd);
  const bool merge = !upsample::is_window_mode(mode);
  // Each (output, input) pair once: repeated taps are adjacent.
  auto for_each_pair = [&](auto f) {
    for (int r = 0; r < fwd.rows; ++r) {
      int64_t e = fwd.begin(r), end = e + fwd.count(r);
      while (e < end) {
        int j = fwd.index[e];
        int64_t last = e + 1;
        while (merge && last < end && fwd.index[last] == j) {
          ++last;
        }
        if (j >= j0 && j < j1) {
          f(i0 + r, j, e, last);
        }
        e = last;
      }
    }
  };
  for_each_pair([&](int, int j, int64_t, int64_t) { ++t.offsets[j - j0 + 1]; });
  for (int r = 0; r < t.rows; ++r) {
    t.offsets[r + 1] += t.offsets[r];
  }
  t.index.resize(t.offsets[t.rows]);
  t.weight.resize(t.offsets[t.rows]);
  std::vector<int64_t> fill(t.offsets.begin(), t.offsets.end() - 1);
  for_each_pair([&](int i, int j, int64_t e, int64_t last) {
    int64_t slot = fill[j - j0]++;
    t.index[slot] = i;
    float w = fwd.weight.empty() ? 1.0f : fwd.weight[e];
    if (merge) {
      w = 0.0f + w;
      for (int64_t k = e + 1; k < last; ++k) {
        w += fwd.weight.empty() ? 1.0f : fwd.weight[k];
      }
    }
    t.weight[slot] = w;
  });
  compact(t);
}

} // namespace

std::vector<AxisGather> gather_axes(
    const UpsampleParams& p,
    bool backward,
    const std::vector<int>& in_sizes,
    const std::vector<int>& out_sizes) {
  std::vector<AxisGather> axes;
  for (int a = 0; a < p.spatial_dims(); ++a) {
    axes.push_back({axis_map(p, a, in_sizes[a], out_sizes[a]), p.mode, backward});
  }
  return axes;
}

void build_rows(const AxisGather& axis, int r0, int r1, GatherTable& t) {
  if (axis.backward) {
    backward_rows(axis.map, axis.mode, r0, r1, t);
  } else {
    forward_rows(axis.map, axis.mode, r0, r1, t);
  }
}

GatherTable build_table(const AxisGather& axis) {
  GatherTable t;
  build_rows(axis, 0, axis.rows(), t);
  return t;
}

bool is_identity_axis(const AxisGather& axis) {
  if (axis.map.in_size != axis.map.out_size) {
    return false;
  }
  GatherTable t;
  for (int r0 = 0; r0 < axis.rows(); r0 += BUILDER_PIECE_ROWS) {
    int r1 = std::min(axis.rows(), r0 + BUILDER_PIECE_ROWS);
    build_rows(axis, r0, r1, t);
    if (!t.is_identity(r0)) {
      return false;
    }
  }
  return true;
}

int64_t table_entries_bound(const AxisGather& axis) {
  const AxisMap& a = axis.map;
  int64_t outputs = a.out_size;
  if (!upsample::is_window_mode(axis.mode)) {
    // The backward rows list, per output, the inputs between its lowest and
    // highest tap: at most its taps.
    return outputs * upsample::taps_per_output(axis.mode);
  }
  // The longest window (window_span), in double: a support can be huge.
  double window;
  if (a.rule == upsample::RULE_AREA) {
    // ceil((i + 1) n / m) - floor(i n / m) < n / m + 2.
    window = std::ceil(double(a.in_size) / a.out_size) + 1;
  } else if (a.rule == upsample::RULE_AA_CENTRED) {
    window = 2.0 * a.reach + 1;
  } else {
    // int(c + s + 0.5) - int(c - s + 0.5), one more for float rounding.
    window = std::ceil(2.0 * double(a.support)) + 2;
  }
  return outputs * static_cast<int64_t>(std::min(window, double(a.in_size)));
}

double table_bytes_bound(const AxisGather& axis) {
  constexpr double OFFSET = sizeof(int64_t);
  constexpr double INDEX = sizeof(int);
  constexpr double ENTRY = sizeof(int) + sizeof(float);
  double entries = static_cast<double>(table_entries_bound(axis));
  double outputs = axis.map.out_size, inputs = axis.map.in_size;
  bool window = upsample::is_window_mode(axis.mode);
  // Forward rows: tap rows have no offsets (nearest no weights either);
  // window rows grow by push_back, up to twice their entries, with offsets.
  double forward = window ? (outputs + 1) * OFFSET + entries * ENTRY * 2
                          : entries * (upsample::is_nearest_mode(axis.mode) ? INDEX : ENTRY);
  if (!axis.backward) {
    return forward;
  }
  // The forward rows, then their transpose and its fill cursors.
  return forward + (inputs + 1) * OFFSET + entries * ENTRY + inputs * OFFSET;
}

} // namespace mlx_upsample
