// What the ops (upsample, grid_sample) check and share before they build
// their primitives.
#pragma once

#include <string>

#include "mlx/array.h"
#include "mlx/stream.h"
#include "mlx/utils.h"

namespace mlx_upsample {

namespace mx = mlx::core;

// The largest output (or grid) the ops agree to build, in elements (an
// absurd size is almost always a typo).
constexpr long long MAX_OUTPUT_ELEMENTS = 1LL << 40;

// The dtypes the float kernels read and write (they compute in float32).
bool is_float(mx::Dtype t);

// "float32", as MLX prints it.
std::string dtype_name(mx::Dtype t);

// Our GPU kernels are Metal kernels. On an MLX whose GPU is another backend
// (CUDA on Linux, where the GPU is then the default device) the op would
// only fail at mx.eval, with a message about Metal; it is refused while it
// is built (std::invalid_argument naming `op`), with what works instead. A
// Metal build has nothing to refuse.
void check_device(const mx::StreamOrDevice& s, const char* op);

// vmap puts its axis in front: a batch axis more, no reshape (a
// shapeless-compiled graph replays a reshape with the sizes it was traced
// with).
mx::array vmap_axis_to_front(const mx::array& a, int axis, mx::Stream s);

} // namespace mlx_upsample
