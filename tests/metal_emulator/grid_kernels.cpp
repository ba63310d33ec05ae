// kernels/grid_sample.metal compiled as C++: every instantiate_kernel and
// plain_kernel in it registers one kernel with the emulator.
#include <metal_stdlib>

#include "grid_sample.metal"
