// kernels/upsample.metal compiled as C++: every instantiate_kernel in it
// registers one kernel with the emulator.
#include <metal_stdlib>

#include "upsample.metal"
