// The parameter block of every upsample Metal kernel (buffer 2) and the
// layout of its tap tables (buffer 3), shared byte for byte by the host
// launch plan (csrc/metal/), the .metal source and the emulator.
//
// The array read has any non-negative strides (a transposed, sliced, stepped
// or broadcast view read in place: src_batch, src_channel and the axes'
// strides); the array written is row-contiguous (N, *spatial, C).
//
// Grid: x walks a row of the array written (its last spatial axis times the
// channel packets of a position, packets fastest), y its rows: the batch
// entry and the leading spatial axes, flattened row-major. Neighbouring
// threads are neighbouring packets whatever the channel count (no idle
// lanes between positions). With one channel (a mono signal, a mask, the
// channel images of channels-first memory) a thread instead makes RUN
// neighbouring positions of the last axis (Note [runs] in upsample.metal). Splitting x takes one division, by the packets,
// and y one per leading axis, each a multiply-high with a precomputed magic
// number (Apple GPUs have no integer divider).
//
// Tap tables (the same rows for every mode, forward and backward): along
// each axis, row o of the array written lists the (source index, weight)
// pairs that make it, as uint2 words of one buffer:
//   word axes[a].rows + o     (first tap word, one past the last)
//   tap word                  (source offset, weight's bits)
// The offset is premultiplied by the axis's source stride in elements,
// relative to the batch entry (32 bits: the plan takes these kernels only
// where every offset in a batch entry fits), except in the rank-generic
// kernel, which keeps the index and multiplies by axes[a].stride in 64 bits.
#pragma once

#include "upsample_math.h"

namespace upsample {

UPSAMPLE_CONSTANT constexpr int MAX_DIMS = 8;

// Positions of the last axis per thread in the run kernels (one channel,
// Note [runs] in upsample.metal): a 4-vector store.
UPSAMPLE_CONSTANT constexpr int RUN = 4;

// q = n / d for n < 2^31 as mulhi(2n, magic) >> shift (magic_divisor on the
// host): magic = ceil(2^(31 + shift) / d) with shift = ceil(log2 d) is below
// 2^32 and exact for every such n (Granlund-Montgomery, N = 31).
struct Divisor {
  unsigned int magic;
  unsigned int shift;
};

inline unsigned int divide(unsigned int n, Divisor d) {
#ifdef __METAL_VERSION__
  unsigned int high = metal::mulhi(n << 1, d.magic);
#else
  unsigned int high =
      (unsigned int)(((unsigned long long)(n << 1) * d.magic) >> 32);
#endif
  return high >> d.shift;
}

struct AxisParams {
  unsigned int size; // positions along the axis of the array written
  unsigned int rows; // table word of row 0's (first, end) pair
  Divisor by_size; // splits a grid row (gid.y) into the leading axes (split_row)
  unsigned long stride; // source elements per index step (the view's stride)
};

struct KernelParams {
  int dims; // spatial dims in use (<= MAX_DIMS)
  unsigned int channels;
  unsigned int packets; // channel packets per position
  Divisor by_packets; // splits grid x
  // Batch entry n of the source lies at (n / batch_inner) * src_batch +
  // (n % batch_inner) * src_batch_inner: leading axes of up to two strides
  // (channel images of channels-last memory are (N, C) apart; batch_inner
  // is 1 for one stride).
  unsigned int batch_inner;
  unsigned long src_batch;
  unsigned long src_channel; // source elements per channel (1 where packets are wider)
  unsigned long src_batch_inner;
  Divisor by_batch_inner;
  AxisParams axes[MAX_DIMS];
};

} // namespace upsample
