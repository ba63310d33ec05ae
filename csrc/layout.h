// Memory layouts the CPU primitives read in place, and the layout they write.
//
// The kernels index (*batch, *spatial, C) row-contiguous arrays. An input
// whose memory is channels-first, (*batch, C, *spatial) row-contiguous (the
// channels-last view x_nchw.transpose(0, 2, 3, 1) of PyTorch-ported code,
// its 1-D and 3-D equivalents, or a vmapped one), is the same memory as the
// row-contiguous (*batch, C, *spatial, 1): C more batch axis and one channel
// per image. The primitives run the kernels on that view and hand back their
// (*batch, C, *out_spatial, 1) result as the (*batch, *out_spatial, C) array
// it is, so that channels-first memory in gives channels-first memory out
// (y.transpose(0, 3, 1, 2) is then a free, row-contiguous view), as PyTorch
// keeps memory_format. Everything is decided at eval time from the strides,
// where they are known: the op builds the same graph for every layout (a
// lazy transpose has no strides yet), which mx.compile(shapeless=True)
// replays for any shape.
//
// Channels-first memory order that is not dense or in order (such a view
// sliced with steps, or with a strided batch axis: is_channels_major) is
// copied to channels-first memory and computed the same way. Other layouts
// (channels-last slices, broadcasts, axes otherwise permuted) are copied to
// row-contiguous memory first, as mx.contiguous would.
#pragma once

#include "mlx/array.h"
#include "mlx/stream.h"

namespace mlx_upsample::layout {

namespace mx = mlx::core;

// a (*batch, *spatial, C) with `dims` spatial axes is not row-contiguous and
// its memory is (*batch, C, *spatial) row-contiguous.
bool is_channels_first(const mx::array& a, int dims);

// a's memory order is channels-first without being dense or in order: its
// channel axis (C > 1) steps farther than every spatial axis of length > 1
// (a channels-first view sliced with steps, a strided batch axis). It is
// copied, to channels-first memory, and its result is channels-first too.
bool is_channels_major(const mx::array& a, int dims);

// ---- helpers (layout.cpp) ----------------------------------------------------

// The (*batch, C, *spatial, 1) view of a's memory, a's strides so permuted:
// row-contiguous when a is channels-first.
mx::array channel_images(const mx::array& a, int dims);

// A fresh row-contiguous copy of a of shape (*batch, C, *spatial, 1) for any
// strides of a (held by the stream until the work enqueued after it ran).
// Refused (OutOfMemory, naming a as `what`: "input", ...) before it is
// allocated when it and the call's result, `result_bytes`, exceed MLX's
// memory limit; the call's own check counts the copy again with its tables
// and buffers (the kernels' held_bytes).
mx::array copy_to_channel_images(
    const mx::array& a, int dims, double result_bytes, const char* what, mx::Stream s);

// A fresh row-contiguous copy of a for any strides (held and checked as above).
mx::array copy_to_row_contiguous(
    const mx::array& a, double result_bytes, const char* what, mx::Stream s);

// An unallocated array of dst's (*batch, C, *spatial, 1) shape.
mx::array channel_images_like(const mx::array& dst, int dims);

// dst becomes the (*batch, *spatial, C) view of images' memory (images as
// the kernels write them, or an identity call's source).
void adopt_channel_images(mx::array& dst, const mx::array& images, int dims);

// a's memory as row-contiguous channel images (*batch, C, *spatial, 1): a
// view when a is channels-first, else a copy, whose bytes `held` gets.
inline mx::array as_channel_images(
    const mx::array& a,
    int dims,
    double result_bytes,
    const char* what,
    mx::Stream s,
    double& held) {
  if (is_channels_first(a, dims)) {
    return channel_images(a, dims);
  }
  mx::array copy = copy_to_channel_images(a, dims, result_bytes, what, s);
  held = static_cast<double>(copy.nbytes());
  return copy;
}

// a itself when row-contiguous, else a row-contiguous copy (as above).
inline mx::array as_row_contiguous(
    const mx::array& a, double result_bytes, const char* what, mx::Stream s, double& held) {
  if (a.flags().row_contiguous) {
    return a;
  }
  mx::array copy = copy_to_row_contiguous(a, result_bytes, what, s);
  held = static_cast<double>(copy.nbytes());
  return copy;
}

// Whether a primitive whose input (the forward's, or x for the backward) is
// `a` computes on channel images and so writes channels-first memory: a is
// channels-first (is_channels_first) or channels-major (is_channels_major).
inline bool computes_channel_images(const mx::array& a, int dims) {
  return !a.flags().row_contiguous && (is_channels_first(a, dims) || is_channels_major(a, dims));
}

// What a backend's kernel reads: row-contiguous arrays only (the CPU
// kernels: any other layout is handed to them as a copy), or any strides in
// place (the Metal kernels, whose launch plan takes the strides; they copy
// what they cannot read themselves, metal/launch_plan.h).
enum class Reads { RowContiguous, Strided };

// The kernels below are called as kernel(src, dst, held_bytes): a backend's
// upsample, which allocates dst; held_bytes is the copy of the input made for
// it (0 without one), which its memory check counts.

// Runs the kernel on `images`, src's channel images, for a channels-first
// dst: the kernel writes the result as row-contiguous channel images, which
// dst then views.
template <typename Kernel>
void run_on_channel_images(
    const mx::array& images, mx::array& dst, int dims, double held, Kernel kernel) {
  mx::array result = channel_images_like(dst, dims);
  kernel(images, result, held);
  adopt_channel_images(dst, result, dims);
}

// Runs the kernel for a kernel that reads any strides: src is the array read
// (the forward's input, or the backward's cotangent), `x` the array whose
// layout decides (the forward's input), dst the result (not yet allocated).
// Channel images (computes_channel_images) are viewed on src's memory as they
// lie, whatever its layout; the kernel writes them row-contiguous, which is
// channels-first dst.
template <typename Kernel>
void run_strided(const mx::array& src, const mx::array& x, mx::array& dst, int dims, Kernel kernel) {
  if (computes_channel_images(x, dims)) {
    run_on_channel_images(channel_images(src, dims), dst, dims, 0.0, kernel);
  } else {
    kernel(src, dst, 0.0);
  }
}

// Runs a kernel of row-contiguous arrays on `src` as it comes (`what` names
// it in a MemoryError): as channel images, viewed in place or copied, for a
// channels-first dst where `channels_first`, else as itself or a
// row-contiguous copy.
template <typename Kernel>
void run_row_contiguous(
    const mx::array& src,
    bool channels_first,
    mx::array& dst,
    int dims,
    mx::Stream s,
    const char* what,
    Kernel kernel) {
  double held = 0;
  const double result = static_cast<double>(dst.nbytes());
  if (channels_first) {
    mx::array in = as_channel_images(src, dims, result, what, s, held);
    run_on_channel_images(in, dst, dims, held, kernel);
  } else {
    mx::array in = as_row_contiguous(src, result, what, s, held);
    kernel(in, dst, held);
  }
}

// Runs the kernel for the forward primitive: src is the input as it comes,
// dst the primitive's output. Channels-first src gives channels-first dst;
// for a kernel that reads row-contiguous arrays only, any other layout is
// computed on row-contiguous memory.
template <typename Kernel>
void run_forward(
    const mx::array& src,
    mx::array& dst,
    int dims,
    mx::Stream s,
    Reads reads,
    Kernel kernel) {
  if (reads == Reads::Strided) {
    run_strided(src, src, dst, dims, kernel);
  } else {
    run_row_contiguous(src, computes_channel_images(src, dims), dst, dims, s, "input", kernel);
  }
}

// The same for the backward primitive: `cotangent` as it comes, `x` the
// forward input (evaluated: its strides are known). The result, the
// cotangent of x, is laid out as x is (channels-first when x is); a kernel
// of row-contiguous arrays reads a cotangent of that layout in place and
// copies any other.
template <typename Kernel>
void run_backward(
    const mx::array& cotangent,
    const mx::array& x,
    mx::array& dst,
    int dims,
    mx::Stream s,
    Reads reads,
    Kernel kernel) {
  if (reads == Reads::Strided) {
    run_strided(cotangent, x, dst, dims, kernel);
  } else {
    run_row_contiguous(
        cotangent, computes_channel_images(x, dims), dst, dims, s, "cotangent (backward)", kernel);
  }
}

} // namespace mlx_upsample::layout
