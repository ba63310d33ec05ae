// The grid_sample emulator's C interface that C++ callers share (the cost
// model's driver, bench/grid_cost_model_driver.cpp): one declaration, which
// grid_emulator.cpp's definitions must match. grid_harness.py calls the same
// functions through ctypes.
#pragma once

extern "C" {

// From now on, before each launch, `count` sampled threads between calls of
// `before` and `after` with the kernel's name (0: none); their writes are
// undone, then the launch runs whole. For the cost model.
void emu_grid_sample_threads(
    unsigned long long count, void (*before)(const char*), void (*after)(const char*));

// Plans and runs one call: pass 0 forward, 1 the jvp in the grid, 2
// backward (dx and/or dgrid). Shapes have `ndim` entries: x (*batch,
// *spatial, C), the grid (*batch, *out, dims); the tangent is the grid's
// shape, out and the cotangent (*batch, *out, C), dx x's shape, dgrid the
// grid's. Arrays the pass does not use may be null. x and the cotangent
// start `x_offset` / `cotangent_offset` bytes into their buffers; with
// `order_seed` != 0 the threadgroups of each launch, and the threads of each
// group, run in a shuffled order. Returns 0, or 1 with a message in
// `error`; `kernel` receives the launched kernels' names, joined by '+'.
int emu_grid_run(
    int pass, int mode, int padding, int align_corners, int want_dx, int want_dgrid,
    int ndim, const int* x_shape, const int* grid_shape, const char* dtype, int elem_size,
    long long x_offset, long long cotangent_offset, unsigned int max_threads_per_group,
    unsigned long long order_seed, const void* x, const void* grid, const void* tangent,
    const void* cotangent, void* out, void* dx, void* dgrid, char* kernel, char* error,
    int text_capacity);

} // extern "C"
