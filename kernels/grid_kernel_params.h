// The parameter blocks of the grid_sample Metal kernels (kernels/grid_sample.metal),
// shared byte for byte by the host launch plan (csrc/metal/grid_launch_plan.cpp),
// the .metal source and the emulator.
//
// Grids (dispatchThreads, exact): a kernel over output points runs x along
// the last output axis (Wo) and y over the rows (batch entry and leading
// output axes, row-major), so point q = y * row + x; a kernel over input
// pixels likewise (W, then the rows of the input). Kernels that move
// channels split x into (position, chunk): a thread makes `chunk` channel
// packets of `vec` channels at its position, so that the coordinate math of
// a point is paid once for up to GRID_CHUNK_CHANNELS channels.
//
// Input gradient (Note [grid_sample input gradient on Metal] in the .metal
// source): per input pixel of the whole batch, a count, turned in place into
// the end of its segment of (key, weight) entries; key = point << tap_shift
// | tap, weight the float bits.
#pragma once

#include "grid_sample_math.h"
#include "kernel_params.h"

namespace upsample {

// Channels one thread makes at most (the plan's chunk of packets).
UPSAMPLE_CONSTANT constexpr unsigned int GRID_CHUNK_CHANNELS = 32;
// Counts one scan thread sums or spreads.
UPSAMPLE_CONSTANT constexpr unsigned int GRID_SCAN_BLOCK = 64;
// Segments up to this length are sorted in the registers of the threads that
// sum them (by insertion), longer ones in place by a heapsort launch.
UPSAMPLE_CONSTANT constexpr unsigned int GRID_SHORT_SEGMENT = 16;

struct GridKernelParams {
  GridSampleArgs args;
  unsigned int channels;
  unsigned int packets; // channel packets of a point or pixel
  unsigned int chunk; //   packets per thread
  unsigned int chunks; //  threads per position: ceil(packets / chunk)
  Divisor by_chunks; //    splits grid x into position and chunk
  unsigned int row; //     positions per grid row
  unsigned int points; //  output points per batch entry
  Divisor by_points; //    a point's batch entry
  unsigned int pixels; //  input pixels per batch entry
  unsigned int tap_shift; // log2 of the taps per point
};

// One level of the scan of the counts (level 0 the counts themselves).
struct GridScanParams {
  unsigned int count; // elements of the level
};

} // namespace upsample
