// The 16-bit storage types of the CUDA kernels (compiler/codegen_cuda.hpp):
// IEEE binary16 (`half`) and bfloat16. A kernel of dtype f16 or bf16 reads its
// inputs and weights in that type, computes in float and writes the gradients
// back in it, rounded to nearest even; the per-row loss stays float.
//
// Embedded as text into generated CUDA sources that need it (so NVRTC needs no
// CUDA headers), and included by the host code that converts arrays for those
// kernels. On the device the conversions of `half` are the cvt instructions;
// on the host, the same rounding written out with integer operations.
#pragma once
#ifndef LOSSFORGE_STORAGE_TYPES
#define LOSSFORGE_STORAGE_TYPES

#if !defined(LF_HD)
#if defined(__CUDACC__)
#define LF_HD __host__ __device__
#else
#define LF_HD
#endif
#endif

#if !defined(__CUDACC_RTC__)
#include <cmath>
#include <cstring>
#endif

namespace lossforge::storage {

LF_HD inline unsigned float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  unsigned u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

LF_HD inline float bits_float(unsigned u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// The cvt instructions on the device; the integer rounding on the host, and
// under the host emulation of the kernels (tests/aot/cuda_host_emulation.hpp).
#if defined(__CUDA_ARCH__) && !defined(LOSSFORGE_CUDA_HOST_EMULATION)
#define LOSSFORGE_HALF_CVT 1
#endif

// float -> binary16, round to nearest even; overflow gives infinity, NaN a quiet NaN.
LF_HD inline unsigned short half_from_float(float f) {
#if defined(LOSSFORGE_HALF_CVT)
  unsigned short h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
#else
  const unsigned x = float_bits(f);
  const unsigned sign = (x >> 16) & 0x8000u;
  const unsigned magnitude = x & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return static_cast<unsigned short>(sign | 0x7e00u);  // NaN
  if (magnitude >= 0x477ff000u) return static_cast<unsigned short>(sign | 0x7c00u);  // >= 65520 rounds to infinity
  if (magnitude >= 0x38800000u) {  // a normal half (>= 2^-14): rebias the exponent, round off 13 bits
    const unsigned rebiased = magnitude - 0x38000000u;
    return static_cast<unsigned short>(sign | ((rebiased + 0x0fffu + ((rebiased >> 13) & 1u)) >> 13));
  }
  // Zero or a subnormal half: a whole number of 2^-24 (the multiplication is exact).
  return static_cast<unsigned short>(sign | static_cast<unsigned>(std::nearbyint(bits_float(magnitude) * 0x1p24f)));
#endif
}

LF_HD inline float half_to_float(unsigned short h) {
#if defined(LOSSFORGE_HALF_CVT)
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
#else
  const unsigned sign = static_cast<unsigned>(h & 0x8000u) << 16;
  const unsigned exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  if (exponent == 0x1fu) return bits_float(sign | 0x7f800000u | (mantissa << 13));  // infinity, NaN
  if (exponent == 0) {  // zero, subnormal
    const float value = static_cast<float>(mantissa) * 0x1p-24f;
    return sign ? -value : value;
  }
  return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
#endif
}

// float -> bfloat16 (the top half of a float), round to nearest even.
LF_HD inline unsigned short bfloat16_from_float(float f) {
  const unsigned x = float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<unsigned short>((x >> 16) | 0x40u);  // NaN
  return static_cast<unsigned short>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

LF_HD inline float bfloat16_to_float(unsigned short b) { return bits_float(static_cast<unsigned>(b) << 16); }

// The element types: read as float, assigned from float (rounded).
struct half {
  unsigned short bits;
  LF_HD operator float() const { return half_to_float(bits); }
  LF_HD half& operator=(float f) {
    bits = half_from_float(f);
    return *this;
  }
};

struct bfloat16 {
  unsigned short bits;
  LF_HD operator float() const { return bfloat16_to_float(bits); }
  LF_HD bfloat16& operator=(float f) {
    bits = bfloat16_from_float(f);
    return *this;
  }
};

}  // namespace lossforge::storage

#endif  // LOSSFORGE_STORAGE_TYPES
