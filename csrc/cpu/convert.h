// Bulk conversions between the half types and float32 for the CPU kernels:
// whole blocks at a time so that the hot loops only ever see float32.
#pragma once

#include <cstdint>

#include "mlx/types/half_types.h"

namespace mlx_upsample::cpu {

void to_float(const mlx::core::float16_t* src, float* dst, int64_t n);
void to_float(const mlx::core::bfloat16_t* src, float* dst, int64_t n);
void from_float(const float* src, mlx::core::float16_t* dst, int64_t n);
void from_float(const float* src, mlx::core::bfloat16_t* dst, int64_t n);

} // namespace mlx_upsample::cpu
