#include "cpu/convert.h"

#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define UPSAMPLE_X86_F16C 1
#endif

namespace mlx_upsample::cpu {

namespace mx = mlx::core;

namespace {

#ifdef UPSAMPLE_X86_F16C
// The baseline x86-64 target has no half conversion instructions; use F16C
// (every x86 CPU since 2012) when the running CPU has it.
const bool has_f16c = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");

__attribute__((target("avx,f16c"))) void
half_to_float_f16c(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) {
    dst[i] = _cvtsh_ss(src[i]);
  }
}

__attribute__((target("avx,f16c"))) void
float_to_half_f16c(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
  }
  for (; i < n; ++i) {
    dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
  }
}
#endif

} // namespace

void to_float(const mx::float16_t* src, float* dst, int64_t n) {
#ifdef UPSAMPLE_X86_F16C
  if (has_f16c) {
    return half_to_float_f16c(reinterpret_cast<const uint16_t*>(src), dst, n);
  }
#endif
  for (int64_t i = 0; i < n; ++i) {
    dst[i] = static_cast<float>(src[i]);
  }
}

void from_float(const float* src, mx::float16_t* dst, int64_t n) {
#ifdef UPSAMPLE_X86_F16C
  if (has_f16c) {
    return float_to_half_f16c(src, reinterpret_cast<uint16_t*>(dst), n);
  }
#endif
  for (int64_t i = 0; i < n; ++i) {
    dst[i] = static_cast<mx::float16_t>(src[i]);
  }
}

// bfloat16 is the top half of a float32: plain integer code the compiler
// vectorises.
void to_float(const mx::bfloat16_t* src, float* dst, int64_t n) {
  const uint16_t* bits = reinterpret_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u = uint32_t(bits[i]) << 16;
    std::memcpy(dst + i, &u, 4);
  }
}

// Round to nearest even, NaN kept a (quiet) NaN, as MLX converts.
void from_float(const float* src, mx::bfloat16_t* dst, int64_t n) {
  uint16_t* bits = reinterpret_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, src + i, 4);
    bool nan = (u & 0x7fffffffu) > 0x7f800000u;
    uint16_t rounded = uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    bits[i] = nan ? uint16_t((u >> 16) | 0x40u) : rounded;
  }
}

} // namespace mlx_upsample::cpu
