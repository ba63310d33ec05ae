#include "cpu/gather_table.h"

#include <algorithm>
#include <cmath>

namespace mlx_upsample::cpu {

using upsample::AxisMap;
using upsample::Taps;

bool GatherTable::is_identity() const {
  int rows = static_cast<int>(offsets.size()) - 1;
  for (int i = 0; i < rows; ++i) {
    for (int e = offsets[i]; e < offsets[i + 1]; ++e) {
      bool own = index[e] == i;
      if (weight[e] != (own ? 1.0f : 0.0f)) {
        return false;
      }
    }
  }
  return true;
}

// `taps` of a table whose rows were built one by one: their common length
// if they all have one (a backward nearest x2 lists two outputs per input),
// which lets the kernels unroll the tap loop, else 0.
static int uniform_taps(const std::vector<int>& offsets) {
  int rows = static_cast<int>(offsets.size()) - 1;
  int length = rows > 0 ? offsets[1] : 0;
  for (int i = 0; i < rows; ++i) {
    if (offsets[i + 1] - offsets[i] != length) {
      return 0;
    }
  }
  return length;
}

// Window modes (antialias, area): one row per output listing its window,
// weights from the math header; rows may differ in length.
static GatherTable forward_window_table(const AxisMap& a, int mode) {
  GatherTable t;
  t.offsets.resize(size_t(a.out_size) + 1);
  t.offsets[0] = 0;
  for (int i = 0; i < a.out_size; ++i) {
    upsample::TapWindow w = upsample::tap_window(a, mode, i);
    for (int k = 0; k < w.count; ++k) {
      t.index.push_back(w.first + k);
      t.weight.push_back(upsample::tap_weight(a, mode, w, w.first + k));
    }
    t.offsets[i + 1] = static_cast<int>(t.index.size());
  }
  t.taps = uniform_taps(t.offsets);
  return t;
}

GatherTable forward_table(const AxisMap& a, int mode) {
  if (upsample::is_window_mode(mode)) {
    return forward_window_table(a, mode);
  }
  GatherTable t;
  t.taps = upsample::taps_per_output(mode);
  t.offsets.resize(size_t(a.out_size) + 1);
  t.index.resize(size_t(a.out_size) * t.taps);
  t.weight.resize(size_t(a.out_size) * t.taps);
  for (int i = 0; i < a.out_size; ++i) {
    Taps taps = upsample::axis_taps(a, mode, i);
    t.offsets[i] = i * t.taps;
    for (int k = 0; k < t.taps; ++k) {
      t.index[size_t(i) * t.taps + k] = taps.index[k];
      t.weight[size_t(i) * t.taps + k] = taps.weight[k];
    }
  }
  t.offsets[a.out_size] = a.out_size * t.taps;
  return t;
}

// Window modes: the transpose of the forward table. Input j's row lists the
// outputs whose window holds j, ascending, with the very weights of the
// forward rows: the same rows output_range + weight_of_input give (windows
// are contiguous), in O(taps) instead of O(taps * window) — a downscale to
// one output has a window as long as the whole axis.
static GatherTable backward_window_table(const AxisMap& a, int mode) {
  GatherTable fwd = forward_window_table(a, mode);
  GatherTable t;
  t.offsets.assign(size_t(a.in_size) + 1, 0);
  for (int j : fwd.index) {
    ++t.offsets[j + 1];
  }
  for (int j = 0; j < a.in_size; ++j) {
    t.offsets[j + 1] += t.offsets[j];
  }
  t.index.resize(fwd.index.size());
  t.weight.resize(fwd.weight.size());
  std::vector<int> fill(t.offsets.begin(), t.offsets.end() - 1);
  for (int i = 0; i < a.out_size; ++i) {
    for (int e = fwd.offsets[i]; e < fwd.offsets[i + 1]; ++e) {
      int slot = fill[fwd.index[e]]++;
      t.index[slot] = i;
      t.weight[slot] = fwd.weight[e];
    }
  }
  t.taps = uniform_taps(t.offsets);
  return t;
}

GatherTable backward_table(const AxisMap& a, int mode) {
  if (upsample::is_window_mode(mode)) {
    return backward_window_table(a, mode);
  }
  GatherTable t;
  t.offsets.resize(size_t(a.in_size) + 1);
  t.offsets[0] = 0;
  for (int j = 0; j < a.in_size; ++j) {
    upsample::OutputRange r = upsample::output_range(a, mode, j);
    for (int i = r.begin; i < r.end; ++i) {
      t.index.push_back(i);
      t.weight.push_back(upsample::weight_of_input(a, mode, i, j));
    }
    t.offsets[j + 1] = static_cast<int>(t.index.size());
  }
  t.taps = uniform_taps(t.offsets);
  return t;
}

int64_t table_entries_bound(const AxisMap& a, int mode) {
  int64_t outputs = a.out_size;
  if (!upsample::is_window_mode(mode)) {
    // The backward rows list, per output, the inputs between its lowest and
    // highest tap: at most its taps.
    return outputs * upsample::taps_per_output(mode);
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

double table_bytes_bound(const AxisMap& a, int mode, bool backward) {
  constexpr double OFFSET = sizeof(int);
  constexpr double ENTRY = sizeof(int) + sizeof(float);
  double entries = static_cast<double>(table_entries_bound(a, mode));
  double outputs = a.out_size, inputs = a.in_size;
  bool window = upsample::is_window_mode(mode);
  if (!backward) {
    // Window rows grow by push_back: up to twice their entries.
    return (outputs + 1) * OFFSET + entries * ENTRY * (window ? 2 : 1);
  }
  if (!window) {
    return (inputs + 1) * OFFSET + entries * ENTRY * 2;
  }
  // The forward table, then its transpose and the fill cursors.
  return table_bytes_bound(a, mode, false) + (inputs + 1) * OFFSET +
      entries * ENTRY + inputs * OFFSET;
}

} // namespace mlx_upsample::cpu
