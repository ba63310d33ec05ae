// The CPU kernels' outputs: allocated through MLX, with what the system
// refusing them means turned into an error of the call.
#pragma once

#include <string>

#include "mlx/array.h"

namespace mlx_upsample::cpu {

// Gives `a` a fresh buffer of its size. MLX's CPU allocator hands back a null
// buffer when the system refuses the memory (an address-space limit, no
// overcommit): that throws OutOfMemory, "<call>: out of memory for its
// result (...)", before a kernel would write through it. Large buffers are
// asked for transparent huge pages (a hint).
void allocate(mlx::core::array& a, const std::string& call);

} // namespace mlx_upsample::cpu
