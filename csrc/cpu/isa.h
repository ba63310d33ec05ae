// The CPU kernels' inner loops are compiled twice on x86-64 with GCC: for the
// baseline ISA and for AVX2 + F16C (every x86 CPU since 2013), and the kernel
// is picked at run time by what the CPU supports. The wheel stays portable,
// yet the loops run 8 floats wide and convert float16 with one instruction
// per 8 elements.
//
// A kernel source (a .inc file) is included once inside `namespace baseline`
// and once inside `namespace avx2` between UPSAMPLE_AVX2_BEGIN and _END, a
// `#pragma GCC target` region, and its caller names an entry point of it as
// UPSAMPLE_ISA_KERNEL(function), the one of this CPU's namespace. Why not
// -mavx2 on a second copy of the file: inline functions from shared headers
// (std::vector, ...) would then be compiled with AVX2 too, and the linker
// could keep that copy for the baseline path. The pragma applies only to
// functions defined inside the region. Both paths give the same results bit
// for bit: no FMA contraction (CMake sets -ffp-contract=off), the same order
// of operations per element, float16 rounded to nearest even either way.
#pragma once

// UPSAMPLE_PORTABLE_KERNELS builds only the baseline kernels, as every other
// platform does (macOS/Arm, Clang): the tests compile the kernels that way so
// that x86-only code outside the dispatch is caught on x86 too.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(UPSAMPLE_PORTABLE_KERNELS)
#define UPSAMPLE_AVX2_DISPATCH 1
#include <cstdlib>
#include <cstring>
#include <immintrin.h>
#define UPSAMPLE_AVX2_BEGIN \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,f16c\")")
#define UPSAMPLE_AVX2_END _Pragma("GCC pop_options")

namespace mlx_upsample::cpu {

// Whether to run the kernels in namespace avx2: the CPU has AVX2 and F16C,
// and MLX_UPSAMPLE_CPU_ISA is not "baseline" (which lets the tests compare
// the two paths on one machine).
inline bool use_avx2_kernels() {
  static const bool use = [] {
    const char* isa = std::getenv("MLX_UPSAMPLE_CPU_ISA");
    if (isa != nullptr && std::strcmp(isa, "baseline") == 0) {
      return false;
    }
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  }();
  return use;
}

} // namespace mlx_upsample::cpu

// `function` of the kernels for this CPU: avx2::function where
// use_avx2_kernels(), else baseline::function (the same function type).
#define UPSAMPLE_ISA_KERNEL(function) \
  (::mlx_upsample::cpu::use_avx2_kernels() ? avx2::function : baseline::function)
#else
#define UPSAMPLE_ISA_KERNEL(function) (baseline::function)
#endif
