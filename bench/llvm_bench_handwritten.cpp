// Focal loss and GIoU loss with their gradients written by hand in C++, the
// way a person would for speed: the baseline the LLVM back end is measured
// against. Compiled with -O3 -march=native (bench/CMakeLists.txt), IEEE math
// (no -ffast-math), as the JIT's code is.
#include "llvm_bench_handwritten.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace lossforge::bench {

// FL = α_t (1 - p_t)^γ (softplus(x) - x y) with p = σ(x); the same formula as
// examples/losses/focal.loss, differentiated by hand.
void focal_loss_grad(const float* x, const float* y, float* loss, float* grad, size_t n, float alpha, float gamma) {
  for (size_t i = 0; i < n; ++i) {
    const float xi = x[i], yi = y[i];
    const float e = std::exp(-std::fabs(xi));
    const float p = xi >= 0 ? 1 / (1 + e) : e / (1 + e);
    const float pt = p * yi + (1 - p) * (1 - yi);
    const float at = alpha * yi + (1 - alpha) * (1 - yi);
    const float ce = (xi > 0 ? xi : 0) + std::log1p(e) - xi * yi;
    const float w = 1 - pt;
    const float wg = std::pow(w, gamma);
    loss[i] = at * wg * ce;
    const float dpt = p * (1 - p) * (2 * yi - 1);
    const float dwg = gamma == 0 ? 0 : -gamma * std::pow(w, gamma - 1) * dpt;
    grad[i] = at * (dwg * ce + wg * (p - yi));
  }
}

// GIoU = 1 - I/U + (E - U)/E = 2 - I/U - U/E, gradient by the predicted box.
void giou_loss_grad(const float* p, const float* g, float* loss, float* grad, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float* b = p + 4 * i;
    const float* t = g + 4 * i;
    const float ix1 = std::max(b[0], t[0]), iy1 = std::max(b[1], t[1]);
    const float ix2 = std::min(b[2], t[2]), iy2 = std::min(b[3], t[3]);
    const float iw = std::max(ix2 - ix1, 0.0f), ih = std::max(iy2 - iy1, 0.0f);
    const float ex1 = std::min(b[0], t[0]), ey1 = std::min(b[1], t[1]);
    const float ex2 = std::max(b[2], t[2]), ey2 = std::max(b[3], t[3]);
    const float ew = std::max(ex2 - ex1, 0.0f), eh = std::max(ey2 - ey1, 0.0f);
    const float I = iw * ih;
    const float ap = (b[2] - b[0]) * (b[3] - b[1]), ag = (t[2] - t[0]) * (t[3] - t[1]);
    const float U = ap + ag - I + 1e-7f;
    const float E = ew * eh + 1e-7f;
    loss[i] = 1 - I / U + (E - U) / E;
    // dL/dU = I/U² - 1/E, dL/dI = -1/U - dL/dU (I is also in U), dL/dE = U/E².
    const float dU = I / (U * U) - 1 / E;
    const float dI = -1 / U - dU;
    const float dE = U / (E * E);
    const float pw = b[2] - b[0], ph = b[3] - b[1];
    float d[4] = {-dU * ph, -dU * pw, dU * ph, dU * pw};  // through area(p)
    if (ix2 - ix1 > 0 && iy2 - iy1 > 0) {  // overlap: I = iw·ih
      if (b[0] > t[0]) d[0] -= dI * ih;
      if (b[2] < t[2]) d[2] += dI * ih;
      if (b[1] > t[1]) d[1] -= dI * iw;
      if (b[3] < t[3]) d[3] += dI * iw;
    }
    if (b[0] < t[0]) d[0] -= dE * eh;
    if (b[2] > t[2]) d[2] += dE * eh;
    if (b[1] < t[1]) d[1] -= dE * ew;
    if (b[3] > t[3]) d[3] += dE * ew;
    std::copy(d, d + 4, grad + 4 * i);
  }
}

// Rows in chunks that stay in L1 (the chunk's loss values), one input at a
// time, in flat vectorised passes: each input is read once from memory.
void memory_floor(std::span<const float* const> inputs, std::span<const size_t> widths, size_t rows, float* loss,
                  std::span<const size_t> pred, std::span<float* const> grads) {
  constexpr size_t kChunk = 1024;
  for (size_t first = 0; first < rows; first += kChunk) {
    const size_t n = std::min(kChunk, rows - first);
    uint32_t bits = 0;
    for (size_t k = 0; k < inputs.size(); ++k) {
      const size_t values = n * widths[k];
      const float* in = inputs[k] + first * widths[k];
      float* grad = nullptr;
      for (size_t j = 0; j < pred.size(); ++j)
        if (pred[j] == k) grad = grads[j] + first * widths[k];
      if (grad)
        for (size_t i = 0; i < values; ++i) {
          bits |= std::bit_cast<uint32_t>(in[i]);
          grad[i] = in[i];
        }
      else
        for (size_t i = 0; i < values; ++i) bits |= std::bit_cast<uint32_t>(in[i]);
    }
    std::fill(loss + first, loss + first + n, std::bit_cast<float>(bits));
  }
}

}  // namespace lossforge::bench
