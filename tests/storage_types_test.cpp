// The 16-bit storage types of the CUDA kernels (compiler/storage_types.hpp), on
// the host: binary16 against GCC's _Float16 (libgcc's conversions), bfloat16
// against the nearest-even rule worked out in double, both exhaustively over
// their 65,536 values and on random and hand-picked floats.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "compiler/storage_types.hpp"

namespace lossforge::storage {
namespace {

uint16_t bits_of(_Float16 h) {
  uint16_t b;
  std::memcpy(&b, &h, sizeof b);
  return b;
}
_Float16 from_bits(uint16_t b) {
  _Float16 h;
  std::memcpy(&h, &b, sizeof h);
  return h;
}

bool is_nan_half(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }
bool is_nan_bfloat16(uint16_t b) { return (b & 0x7f80u) == 0x7f80u && (b & 0x7fu) != 0; }

// Floats that probe the rounding: every tie and overflow edge named, then random bits.
std::vector<float> probe_floats() {
  std::vector<float> values = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e6f,
                               0x1p-14f, 0x1p-24f, 0x1p-25f, 0x1.8p-25f, 0x1.8p-24f, 0x1.4p-24f, 0x1p-26f,
                               1.0f + 0x1p-11f, 1.0f + 0x1p-8f, 1.0f + 0x1.8p-8f, 1.0f + 0x1.8p-11f,
                               std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min(),
                               std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
  std::mt19937 rng(7);
  for (int i = 0; i < 1000000; ++i) {
    const uint32_t u = rng();
    float f;
    std::memcpy(&f, &u, sizeof f);
    if (!std::isnan(f)) values.push_back(f);
  }
  std::uniform_real_distribution<float> around_one(-70000.0f, 70000.0f);
  for (int i = 0; i < 200000; ++i) values.push_back(around_one(rng));
  return values;
}

TEST(StorageTypes, HalfMatchesFloat16OnEveryValue) {
  for (uint32_t h = 0; h <= 0xffffu; ++h) {
    const float mine = half_to_float(static_cast<uint16_t>(h));
    const float reference = static_cast<float>(from_bits(static_cast<uint16_t>(h)));
    if (is_nan_half(static_cast<uint16_t>(h))) {
      EXPECT_TRUE(std::isnan(mine)) << std::hex << h;
      EXPECT_TRUE(is_nan_half(half_from_float(mine))) << std::hex << h;
      continue;
    }
    ASSERT_EQ(std::memcmp(&mine, &reference, sizeof mine), 0) << std::hex << h;
    ASSERT_EQ(half_from_float(mine), h) << std::hex << h;  // every half survives the round trip
  }
}

TEST(StorageTypes, HalfRoundsFloatsAsFloat16Does) {
  for (float f : probe_floats())
    ASSERT_EQ(half_from_float(f), bits_of(static_cast<_Float16>(f))) << std::hexfloat << f;
  EXPECT_TRUE(is_nan_half(half_from_float(std::numeric_limits<float>::quiet_NaN())));
}

TEST(StorageTypes, BFloat16IsTheTopHalfOfAFloat) {
  for (uint32_t b = 0; b <= 0xffffu; ++b) {
    const float f = bfloat16_to_float(static_cast<uint16_t>(b));
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    ASSERT_EQ(u, b << 16);
    if (is_nan_bfloat16(static_cast<uint16_t>(b))) {
      EXPECT_TRUE(is_nan_bfloat16(bfloat16_from_float(f))) << std::hex << b;
      continue;
    }
    ASSERT_EQ(bfloat16_from_float(f), b) << std::hex << b;
  }
}

// The nearest bfloat16 by exact arithmetic in double; ties go to the even one.
uint16_t nearest_bfloat16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  const uint16_t below = static_cast<uint16_t>(u >> 16);  // toward zero
  const uint16_t above = static_cast<uint16_t>(below + 1);  // away from zero (may be infinity)
  const double x = std::fabs(double(f));
  const double lo = std::fabs(double(bfloat16_to_float(below)));
  // Above the largest finite bfloat16 the next value is 2^128, where rounding overflows.
  const double hi = (above & 0x7fffu) == 0x7f80u ? std::ldexp(1.0, 128) : std::fabs(double(bfloat16_to_float(above)));
  if (x - lo < hi - x) return below;
  if (x - lo > hi - x) return above;
  return (below & 1u) ? above : below;
}

TEST(StorageTypes, BFloat16RoundsToNearestEven) {
  for (float f : probe_floats()) ASSERT_EQ(bfloat16_from_float(f), nearest_bfloat16(f)) << std::hexfloat << f;
  EXPECT_EQ(bfloat16_from_float(std::numeric_limits<float>::max()), 0x7f80u);  // overflows to infinity
  EXPECT_TRUE(is_nan_bfloat16(bfloat16_from_float(std::numeric_limits<float>::quiet_NaN())));
}

TEST(StorageTypes, ElementTypesConvertOnReadAndAssignment) {
  half h[2] = {};
  bfloat16 b[2] = {};
  h[1] = 0.1f;
  b[1] = 0.1f;
  EXPECT_EQ(h[1].bits, bits_of(static_cast<_Float16>(0.1f)));
  EXPECT_EQ(b[1].bits, 0x3dcdu);  // 0.1f = 0x3dcccccd rounds up
  const float read_half = h[1], read_bfloat16 = b[1];
  EXPECT_EQ(read_half, static_cast<float>(static_cast<_Float16>(0.1f)));
  EXPECT_EQ(read_bfloat16, bfloat16_to_float(0x3dcd));
  EXPECT_EQ(sizeof(half), 2u);
  EXPECT_EQ(sizeof(bfloat16), 2u);
}

}  // namespace
}  // namespace lossforge::storage
