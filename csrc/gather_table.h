// The one-axis gather tables of a separable resampling: the rows of both
// backends, built here once (the CPU kernels read GatherTable, the Metal
// kernels the same rows packed into their tap tables, metal/tap_tables.h).
//
// Forward and backward are the same machine: along one axis,
//   dst[..., i, ...] = sum_{e in row i} weight[e] * src[..., index[e], ...]
// where row i of the axis's gather table lists the source rows read by i.
// Forward tables come from the taps (or, for the antialias and area modes,
// the window) of each output (math header); backward tables list, for each
// input, the outputs that read it (the forward rows transposed), so the
// backward pass is a deterministic gather with no atomics.
//
// A table may hold only a range of rows (build_rows): a 1-D resampling of a
// long signal builds its table piece by piece, so that the table never
// costs more memory than a small part of the output.
#pragma once

#include <cstdint>
#include <vector>

#include "upsample_params.h"

namespace mlx_upsample {

// Rows of a table built at a time where it is never held whole. A piece of
// GATHER_PIECE_ROWS is what one thread of the CPU kernels builds and then
// gathers for every batch entry (TableBuild::InPieces): the unit the threads
// share out of a single long row. A piece of BUILDER_PIECE_ROWS is what the
// host builds only to read once (is_identity_axis, the Metal tap tables): it
// keeps the row builder's tables a few MB whatever the axis.
constexpr int GATHER_PIECE_ROWS = 4096;
constexpr int BUILDER_PIECE_ROWS = 1 << 16;

struct GatherTable {
  int rows = 0;
  // Entries per row when every row has as many (the kernels then unroll the
  // tap loop and `offsets` is empty: row r starts at r * taps), else 0.
  int taps = 0;
  std::vector<int64_t> offsets; // rows + 1 when taps == 0
  std::vector<int> index;
  // Empty when every weight is 1 (nearest forward), which the nearest kernel
  // does not read.
  std::vector<float> weight;

  int64_t begin(int row) const {
    return taps > 0 ? int64_t(row) * taps : offsets[row];
  }
  int count(int row) const {
    return taps > 0 ? taps : static_cast<int>(offsets[row + 1] - offsets[row]);
  }
  // Every row reads exactly its own index (first_row + row, for a table of
  // rows from first_row on) with weight 1.
  bool is_identity(int first_row = 0) const;
};

// What one axis's gather table is built from: the axis's map, the call's
// mode and its direction (forward, the rows are the outputs; backward, the
// inputs).
struct AxisGather {
  upsample::AxisMap map;
  upsample::Mode mode;
  bool backward;

  // The positions of the array written along the axis: the table's rows.
  int rows() const {
    return backward ? map.in_size : map.out_size;
  }
  // The positions of the array read, which the rows' entries index.
  int sources() const {
    return backward ? map.out_size : map.in_size;
  }
  // The nearest forward: rows of one tap of weight 1, which the kernels
  // copy instead of weighing.
  bool copies() const {
    return !backward && upsample::is_nearest_mode(mode);
  }
};

// How a CPU call has its tables: every axis's table built whole before the
// kernel runs; or, for one spatial axis whose table would be large next to
// the output (a long 1-D signal), a piece of rows at a time while the
// kernel runs, from the axis's AxisGather.
enum class TableBuild { Whole, InPieces };

// The tables a CPU kernel reads (the plans of csrc/cpu/ extend it): Whole,
// one per spatial axis in `tables`; InPieces, none, and the one `axis`
// whose rows the kernel builds.
struct KernelTables {
  TableBuild build;
  std::vector<GatherTable> tables;
  AxisGather axis;

  int spatial_dims() const {
    return build == TableBuild::InPieces ? 1 : static_cast<int>(tables.size());
  }
};

// Every spatial axis of a call that resamples spatial sizes `in_sizes` to
// `out_sizes` (the input's and the output's, forward and backward alike),
// each with the call's mode and direction.
std::vector<AxisGather> gather_axes(
    const UpsampleParams& p,
    bool backward,
    const std::vector<int>& in_sizes,
    const std::vector<int>& out_sizes);

// Rows [r0, r1) of the table of `axis` into `t` (row k of t is row r0 + k),
// re-using its storage. The nearest forward table has no weights.
void build_rows(const AxisGather& axis, int r0, int r1, GatherTable& t);

// Every row of the table of `axis`.
GatherTable build_table(const AxisGather& axis);

// Whether the axis maps every position onto itself with weight 1 (its rows
// are identity rows, GatherTable::is_identity), checked piece by piece so
// that a long axis costs no whole table. Every backend returns its input
// unchanged when all axes are (the CPU path and eval_gpu share its buffer):
// the same bits on each, where a sum over an identity row's zero-weight
// taps would make -0.0 +0.0 and 0 * inf NaN.
bool is_identity_axis(const AxisGather& axis);

// Upper bounds, in O(1), that let a call be refused before its tables are
// built and let a long 1-D call build its table in pieces: the entries of
// the table (forward and backward hold the same entries, transposed), and
// the bytes that building the whole table holds at its peak. Kept next to
// the builders they describe.
int64_t table_entries_bound(const AxisGather& axis);
double table_bytes_bound(const AxisGather& axis);

} // namespace mlx_upsample
