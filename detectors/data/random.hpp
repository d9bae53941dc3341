// A small, portable random stream for the data component: the same numbers on
// every platform and standard library (std::*_distribution are not), and
// cheap to derive independent streams from (seed, purpose, index).
#pragma once

#include <cstdint>

namespace lossforge::data {

// SplitMix64's finaliser: a bijective mix of 64 bits.
constexpr uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  Random(uint64_t seed, uint64_t stream, uint64_t index) : state_(mix64(mix64(seed) ^ mix64(stream + 0x51ed27ULL) ^ index)) {}

  uint64_t next() { return mix64(state_ += 0x9e3779b97f4a7c15ULL); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [lo, hi] (hi >= lo).
  int64_t integer(int64_t lo, int64_t hi) {
    const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
    return lo + static_cast<int64_t>(span == 0 ? next() : next() % span);
  }
  // Approximately standard normal (Irwin–Hall of 4 uniforms, variance 1):
  // basic arithmetic only, so bit-identical everywhere.
  double normal() { return (uniform() + uniform() + uniform() + uniform() - 2.0) * 1.7320508075688772; }

 private:
  uint64_t state_;
};

}  // namespace lossforge::data
