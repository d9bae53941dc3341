// Cross-entropy written by hand with AVX2 intrinsics and glibc's libmvec, in
// three schedules of its rows (llvm_bench_handwritten.hpp): the JIT kernel's
// nearest peers, and what a person might try next to go faster. Compiled
// -O3 -march=native (bench/CMakeLists.txt); each returns false where the
// bench was built without AVX2, FMA or libmvec.
#include "llvm_bench_handwritten.hpp"

#if defined(__AVX2__) && defined(__FMA__) && defined(LOSSFORGE_BENCH_LIBMVEC)
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

extern "C" __m256 _ZGVdN8v_expf(__m256);  // glibc's libmvec
extern "C" __m256 _ZGVdN8v_logf(__m256);

namespace lossforge::bench {
namespace {

constexpr size_t kLanes = 8;

float horizontal_sum(__m256 v) {
  __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_add_ps(a, _mm_movehl_ps(a, a));
  return _mm_cvtss_f32(_mm_add_ss(a, _mm_movehdup_ps(a)));
}
float horizontal_max(__m256 v) {
  __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_max_ps(a, _mm_movehl_ps(a, a));
  return _mm_cvtss_f32(_mm_max_ss(a, _mm_movehdup_ps(a)));
}
// Lane k of the result: the sum (or maximum) of the lanes of v[k], for 8
// rows' accumulators at once: a transpose by shuffles, not 8 horizontal steps.
template <bool Max>
__m256 horizontal_8(const __m256 (&v)[kLanes]) {
  const auto op = [](__m256 a, __m256 b) { return Max ? _mm256_max_ps(a, b) : _mm256_add_ps(a, b); };
  __m256 pairs[4];  // rows 2i and 2i+1, their lanes folded to 4 each
  for (size_t i = 0; i < 4; ++i)
    pairs[i] = op(_mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]));
  const __m256 low = op(_mm256_shuffle_ps(pairs[0], pairs[1], 0x44), _mm256_shuffle_ps(pairs[0], pairs[1], 0xEE));
  const __m256 high = op(_mm256_shuffle_ps(pairs[2], pairs[3], 0x44), _mm256_shuffle_ps(pairs[2], pairs[3], 0xEE));
  return op(_mm256_permute2f128_ps(low, high, 0x20), _mm256_permute2f128_ps(low, high, 0x31));
}

// A row of `classes` values as vectors of 8: whole ones, then the rest under a mask.
struct Columns {
  explicit Columns(size_t classes) : classes(classes), blocks(classes / kLanes), rest(classes % kLanes) {
    alignas(32) int32_t lanes[kLanes];
    for (size_t l = 0; l < kLanes; ++l) lanes[l] = l < rest ? -1 : 0;
    tail = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
  }
  size_t classes, blocks, rest;
  __m256i tail;  // the lanes of the last block inside the row
  __m256 last(const float* row) const { return _mm256_maskload_ps(row + kLanes * blocks, tail); }
};

// The lanes of a row's maximum: lane l takes columns l, l + 8, ...
__m256 max_lanes(const float* x, const Columns& cols) {
  __m256 max = _mm256_set1_ps(x[0]);
  for (size_t b = 0; b < cols.blocks; ++b) max = _mm256_max_ps(max, _mm256_loadu_ps(x + kLanes * b));
  if (cols.rest) max = _mm256_blendv_ps(max, _mm256_max_ps(max, cols.last(x)), _mm256_castsi256_ps(cols.tail));
  return max;
}

// e = exp(x - m) in whole vectors (lanes past the row: 0), and the lanes of
// Σ e, Σ y and Σ y (x - m).
struct SumLanes {
  __m256 total, sum_y, dot;
};
SumLanes exps_and_sums(const float* x, const float* y, float m, float* e, const Columns& cols) {
  const __m256 shift = _mm256_set1_ps(m);
  for (size_t b = 0; b < cols.blocks; ++b)
    _mm256_storeu_ps(e + kLanes * b, _ZGVdN8v_expf(_mm256_sub_ps(_mm256_loadu_ps(x + kLanes * b), shift)));
  if (cols.rest)
    _mm256_storeu_ps(e + kLanes * cols.blocks, _mm256_and_ps(_ZGVdN8v_expf(_mm256_sub_ps(cols.last(x), shift)),
                                                             _mm256_castsi256_ps(cols.tail)));
  SumLanes s{_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (size_t b = 0; b < cols.blocks + (cols.rest ? 1 : 0); ++b) {
    const bool last = b == cols.blocks;
    const __m256 xv = last ? cols.last(x) : _mm256_loadu_ps(x + kLanes * b);
    const __m256 yv = last ? cols.last(y) : _mm256_loadu_ps(y + kLanes * b);
    s.total = _mm256_add_ps(s.total, _mm256_loadu_ps(e + kLanes * b));
    s.sum_y = _mm256_add_ps(s.sum_y, yv);
    s.dot = _mm256_fmadd_ps(yv, _mm256_sub_ps(xv, shift), s.dot);
  }
  return s;
}

// The gradient softmax(x) Σ y - y = e (Σ y / Σ e) - y.
void gradient(const float* e, const float* y, float* g, float total, float sum_y, const Columns& cols) {
  const float scale = sum_y / total;
  const __m256 scales = _mm256_set1_ps(scale);
  for (size_t b = 0; b < cols.blocks; ++b)
    _mm256_storeu_ps(g + kLanes * b,
                     _mm256_fmsub_ps(_mm256_loadu_ps(e + kLanes * b), scales, _mm256_loadu_ps(y + kLanes * b)));
  for (size_t c = kLanes * cols.blocks; c < cols.classes; ++c) g[c] = e[c] * scale - y[c];
}

// Rows one at a time, each with its own scalar logf: the JIT kernel's order.
void rows_one_by_one(const float* x, const float* y, float* loss, float* grad, size_t begin, size_t end,
                     const Columns& cols, float* e) {
  const size_t n = cols.classes;
  for (size_t r = begin; r < end; ++r) {
    const float m = horizontal_max(max_lanes(x + r * n, cols));
    const SumLanes s = exps_and_sums(x + r * n, y + r * n, m, e, cols);
    const float total = horizontal_sum(s.total), sum_y = horizontal_sum(s.sum_y);
    loss[r] = -(horizontal_sum(s.dot) - std::log(total) * sum_y);
    gradient(e, y + r * n, grad + r * n, total, sum_y, cols);
  }
}

}  // namespace

bool cross_entropy_loss_grad_avx2(const float* x, const float* y, float* loss, float* grad, size_t rows,
                                  size_t classes) {
  const Columns cols(classes);
  std::vector<float> e(kLanes * (cols.blocks + 1));
  rows_one_by_one(x, y, loss, grad, 0, rows, cols, e.data());
  return true;
}

bool cross_entropy_loss_grad_avx2_deferred_log(const float* x, const float* y, float* loss, float* grad,
                                               size_t rows, size_t classes) {
  const Columns cols(classes);
  std::vector<float> e(kLanes * (cols.blocks + 1));
  alignas(32) float totals[kLanes], sums_y[kLanes], dots[kLanes];
  const size_t n = classes;
  for (size_t r0 = 0; r0 < rows; r0 += kLanes) {
    const size_t count = std::min(kLanes, rows - r0);
    std::fill(totals, totals + kLanes, 1.0f);  // lanes past the rows: ln 1
    std::fill(sums_y, sums_y + kLanes, 0.0f);
    std::fill(dots, dots + kLanes, 0.0f);
    for (size_t k = 0; k < count; ++k) {
      const size_t r = r0 + k;
      const float m = horizontal_max(max_lanes(x + r * n, cols));
      const SumLanes s = exps_and_sums(x + r * n, y + r * n, m, e.data(), cols);
      totals[k] = horizontal_sum(s.total);
      sums_y[k] = horizontal_sum(s.sum_y);
      dots[k] = horizontal_sum(s.dot);
      gradient(e.data(), y + r * n, grad + r * n, totals[k], sums_y[k], cols);
    }
    const __m256 log_totals = _ZGVdN8v_logf(_mm256_load_ps(totals));
    alignas(32) float losses[kLanes];
    _mm256_store_ps(losses, _mm256_sub_ps(_mm256_mul_ps(log_totals, _mm256_load_ps(sums_y)), _mm256_load_ps(dots)));
    std::copy(losses, losses + count, loss + r0);
  }
  return true;
}

bool cross_entropy_loss_grad_avx2_row_blocks(const float* x, const float* y, float* loss, float* grad, size_t rows,
                                             size_t classes) {
  const Columns cols(classes);
  const size_t n = classes, stride = kLanes * (cols.blocks + 1);
  std::vector<float> e(kLanes * stride);  // one row of exponentials per row of the block
  size_t r0 = 0;
  for (; r0 + kLanes <= rows; r0 += kLanes) {
    __m256 lanes[kLanes];
    for (size_t k = 0; k < kLanes; ++k) lanes[k] = max_lanes(x + (r0 + k) * n, cols);
    alignas(32) float maxima[kLanes];
    _mm256_store_ps(maxima, horizontal_8<true>(lanes));
    __m256 totals[kLanes], sums_y[kLanes], dots[kLanes];
    for (size_t k = 0; k < kLanes; ++k) {
      const size_t r = r0 + k;
      const SumLanes s = exps_and_sums(x + r * n, y + r * n, maxima[k], e.data() + k * stride, cols);
      totals[k] = s.total;
      sums_y[k] = s.sum_y;
      dots[k] = s.dot;
    }
    const __m256 total = horizontal_8<false>(totals), sum_y = horizontal_8<false>(sums_y);
    _mm256_storeu_ps(loss + r0, _mm256_sub_ps(_mm256_mul_ps(_ZGVdN8v_logf(total), sum_y), horizontal_8<false>(dots)));
    alignas(32) float total_of[kLanes], sum_y_of[kLanes];
    _mm256_store_ps(total_of, total);
    _mm256_store_ps(sum_y_of, sum_y);
    for (size_t k = 0; k < kLanes; ++k)
      gradient(e.data() + k * stride, y + (r0 + k) * n, grad + (r0 + k) * n, total_of[k], sum_y_of[k], cols);
  }
  rows_one_by_one(x, y, loss, grad, r0, rows, cols, e.data());
  return true;
}

}  // namespace lossforge::bench
#else
namespace lossforge::bench {
bool cross_entropy_loss_grad_avx2(const float*, const float*, float*, float*, size_t, size_t) { return false; }
bool cross_entropy_loss_grad_avx2_deferred_log(const float*, const float*, float*, float*, size_t, size_t) {
  return false;
}
bool cross_entropy_loss_grad_avx2_row_blocks(const float*, const float*, float*, float*, size_t, size_t) {
  return false;
}
}  // namespace lossforge::bench
#endif
