// The package's Metal library (mlx_upsample.metallib, next to the extension
// module), shared by the upsample and grid_sample backends.
#pragma once

#include <string>

#include "mlx/array.h"
#include "mlx/backend/metal/device.h"

namespace mlx_upsample::metal {

// Loaded once per device by MLX, under a name of its own (MLX caches
// libraries by name: ours must not collide with another extension's).
MTL::Library* library(mlx::core::metal::Device& device);

// The element type as the launch plans' `dtype` and the kernels' names
// spell it ("float32", "float16", "bfloat16"; "non-float" otherwise).
std::string kernel_type_name(mlx::core::Dtype t);

} // namespace mlx_upsample::metal
