// UPSAMPLE_HOT_LOOP marks the functions that hold the CPU kernels' inner
// loops. On x86-64 Linux each is compiled twice, for AVX2 and for the
// baseline ISA, and the dynamic linker picks the clone the running CPU
// supports (function multiversioning): the wheel stays portable, yet the
// loops run 8 floats wide where they can. `flatten` inlines every helper the
// function calls, so that all of its loop code is compiled for the clone's
// ISA. The clones compute identical results: no FMA contraction (CMake sets
// -ffp-contract=off) and the same order of operations per element.
#pragma once

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__)
#define UPSAMPLE_HOT_LOOP __attribute__((target_clones("avx2", "default"), flatten))
#else
#define UPSAMPLE_HOT_LOOP
#endif
