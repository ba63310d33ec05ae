// A copy of any strided array into row-contiguous memory, for the inputs the
// CPU primitives do not read in place (layout.h). MLX's own copy routines are
// not exported from libmlx, so the primitives carry this one.
#pragma once

#include <cstdint>
#include <vector>

namespace mlx_upsample::cpu {

// dst[row-major index i] = src[sum_k i_k * strides[k]] over `shape`, strides
// in elements of `elem_bytes` (1, 2, 4 or 8) bytes; runs on the kernels'
// threads.
void strided_copy(
    const void* src,
    void* dst,
    std::vector<int64_t> shape,
    std::vector<int64_t> strides,
    int elem_bytes);

} // namespace mlx_upsample::cpu
