// The emulator's C interface that C++ callers share (the cost model's driver,
// bench/cost_model_driver.cpp): one declaration, which emulator.cpp's
// definitions must match. The Python harness (harness.py) calls the same
// functions through ctypes.
#pragma once

extern "C" {

// Threads run per launch from now on (0: every thread of the grid), and the
// function called after each launch (nullptr: none). For the cost model only:
// a sampled launch leaves most of its output unwritten.
void emu_sample_threads(unsigned long long count, void (*callback)(const char*));

// Runs the kernels eval_gpu would launch, for a source array that starts
// `src_offset` bytes into its Metal buffer and pipelines that allow
// `max_threads_per_group` threads. The source is a view of `src_strides`
// (elements; nullptr: row-contiguous) on the memory `src`, which holds
// `src_elements` elements of which `view_start` come before the view's
// first; the buffer ends where that memory does. Both shapes have `ndim`
// entries, (*batch, *spatial, C) with `dims` spatial axes; the result is
// row-contiguous. `passes`: 0
// the plan's choice, 1 or 2 forces one launch or two (Passes). `family`
// and `mode` are values of mlx_upsample::Family and upsample::Mode. Returns
// 0, or 1 with a message in `error`. `kernel` receives the launched
// kernels' names, joined by '+'.
int emu_run(
    int family,
    int mode,
    int align_corners,
    int recompute_scale,
    const double* scales,
    const int* sizes,
    int dims,
    int backward,
    int ndim,
    const int* src_shape,
    const long long* src_strides,
    const int* dst_shape,
    const char* dtype,
    int elem_size,
    long long src_offset,
    long long src_elements,
    long long view_start,
    unsigned int max_threads_per_group,
    int passes,
    const void* src,
    void* dst,
    char* kernel,
    char* error,
    int text_capacity);

} // extern "C"
