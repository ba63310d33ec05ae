#include "layout.h"

#include <cstdlib>
#include <numeric>

#include "cpu/strided_copy.h"
#include "cpu/thread_pool.h"
#include "memory_check.h"
#include "mlx/allocator.h"
#include "mlx/backend/common/utils.h"
#include "mlx/backend/cpu/encoder.h"

namespace mlx_upsample::layout {

namespace {

// The axes of a (*batch, *spatial, C) in channels-first memory order:
// (*batch, C, *spatial).
std::vector<int> channels_first_order(int ndim, int dims) {
  int lead = ndim - dims - 1;
  std::vector<int> order(ndim);
  std::iota(order.begin(), order.begin() + lead, 0);
  order[lead] = ndim - 1;
  std::iota(order.begin() + lead + 1, order.end(), lead);
  return order;
}

mx::array::Flags flags_of(const mx::Shape& shape, const mx::Strides& strides, bool dense) {
  auto [no_broadcast_size, row, col] = mx::check_contiguity(shape, strides);
  (void)no_broadcast_size;
  mx::array::Flags flags;
  flags.contiguous = dense;
  flags.row_contiguous = row;
  flags.col_contiguous = col;
  return flags;
}

// a's axes in channels-first order with a trailing unit channel axis: shape
// (*batch, C, *spatial, 1) on a's memory, with a's strides so permuted.
mx::array channels_first_view(const mx::array& a, int dims) {
  std::vector<int> order = channels_first_order(a.ndim(), dims);
  mx::Shape shape;
  mx::Strides strides;
  for (int axis : order) {
    shape.push_back(a.shape(axis));
    strides.push_back(a.strides(axis));
  }
  shape.push_back(1);
  strides.push_back(1);
  mx::array view(shape, a.dtype(), nullptr, {});
  view.copy_shared_buffer(
      a, strides, flags_of(shape, strides, a.flags().contiguous), a.data_size());
  return view;
}

mx::Shape channel_images_shape(const mx::Shape& shape, int dims) {
  std::vector<int> order = channels_first_order(static_cast<int>(shape.size()), dims);
  mx::Shape out;
  for (int axis : order) {
    out.push_back(shape[axis]);
  }
  out.push_back(1);
  return out;
}

// A row-contiguous copy of `a` (any strides), enqueued on s and held by the
// stream until the work enqueued after it ran.
mx::array row_contiguous_copy(
    const mx::array& a, double result_bytes, const char* what, mx::Stream s) {
  mx::array copy(a.shape(), a.dtype(), nullptr, {});
  check_memory(
      double(copy.nbytes()) + result_bytes,
      "[upsample] copying a strided " +
          shape_text(std::vector<int>(a.shape().begin(), a.shape().end())) + " " + what,
      "the row-contiguous copy and the call's result");
  mx::allocator::Data data = mx::allocator::malloc(copy.nbytes());
  if (data.buffer().ptr() == nullptr && copy.nbytes() > 0) {
    throw OutOfMemory(
        std::string("[upsample] out of memory for a row-contiguous copy of a strided ") + what +
        " (" + bytes_text(double(copy.nbytes())) + ")");
  }
  copy.set_data(std::move(data));
  cpu::prepare_threads();
  auto& encoder = mx::cpu::get_command_encoder(s);
  std::vector<int64_t> shape(a.shape().begin(), a.shape().end());
  std::vector<int64_t> strides(a.strides().begin(), a.strides().end());
  const void* in = a.data<void>();
  void* out = copy.data<void>();
  int elem_bytes = static_cast<int>(mx::size_of(a.dtype()));
  encoder.dispatch([=]() { cpu::strided_copy(in, out, shape, strides, elem_bytes); });
  encoder.add_temporary(copy);
  return copy;
}

} // namespace

bool is_channels_first(const mx::array& a, int dims) {
  if (a.flags().row_contiguous || !a.flags().contiguous || a.data_size() != a.size()) {
    return false;
  }
  return channels_first_view(a, dims).flags().row_contiguous;
}

bool is_channels_major(const mx::array& a, int dims) {
  const int c = a.ndim() - 1;
  if (a.shape(c) < 2 || a.flags().row_contiguous) {
    return false;
  }
  bool spatial = false;
  for (int k = c - dims; k < c; ++k) {
    if (a.shape(k) > 1) {
      spatial = true;
      if (std::abs(a.strides(k)) >= std::abs(a.strides(c))) {
        return false;
      }
    }
  }
  return spatial;
}

mx::array channel_images(const mx::array& a, int dims) {
  return channels_first_view(a, dims);
}

mx::array copy_to_channel_images(
    const mx::array& a, int dims, double result_bytes, const char* what, mx::Stream s) {
  return row_contiguous_copy(channels_first_view(a, dims), result_bytes, what, s);
}

mx::array copy_to_row_contiguous(
    const mx::array& a, double result_bytes, const char* what, mx::Stream s) {
  return row_contiguous_copy(a, result_bytes, what, s);
}

mx::array channel_images_like(const mx::array& dst, int dims) {
  return mx::array(channel_images_shape(dst.shape(), dims), dst.dtype(), nullptr, {});
}

void adopt_channel_images(mx::array& dst, const mx::array& images, int dims) {
  // images is (*batch, C, *spatial, 1), row-contiguous but where an identity
  // call shares its source's view: the stride of each of dst's axes is that
  // of the same axis there.
  std::vector<int> order = channels_first_order(dst.ndim(), dims);
  mx::Strides strides(dst.ndim());
  for (int k = 0; k < static_cast<int>(dst.ndim()); ++k) {
    strides[order[k]] = images.strides(k);
  }
  dst.copy_shared_buffer(
      images, strides, flags_of(dst.shape(), strides, images.flags().contiguous),
      images.data_size());
}

} // namespace mlx_upsample::layout
