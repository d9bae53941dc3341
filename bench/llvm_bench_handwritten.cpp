// The benchmark losses with their gradients written by hand in C++, the way a
// person would for speed: plain loops over the rows, the gradient derived on
// paper, the numerically stable forms (log-sum-exp with the row maximum,
// softplus) where the DSL text is literal. The baseline the LLVM back end is
// measured against. Compiled with -O3 -march=native (bench/CMakeLists.txt),
// IEEE math (no -ffast-math), as the JIT's code is; llvm_bench checks each
// against the interpreter before timing it.
#include "llvm_bench_handwritten.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

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

namespace {

// The box geometry of the reg preset (SPEC §2): I = inter(p, g),
// U = area(p) + area(g) - I + 1e-7, E = the enclosing box's area + 1e-7.
struct BoxPair {
  const float* b;  // pred
  const float* t;  // target
  float ix1, iy1, ix2, iy2, iw, ih, ex1, ey1, ex2, ey2, ew, eh, pw, ph;
  float I, U, E;
  BoxPair(const float* b, const float* t) : b(b), t(t) {
    ix1 = std::max(b[0], t[0]), iy1 = std::max(b[1], t[1]);
    ix2 = std::min(b[2], t[2]), iy2 = std::min(b[3], t[3]);
    iw = std::max(ix2 - ix1, 0.0f), ih = std::max(iy2 - iy1, 0.0f);
    ex1 = std::min(b[0], t[0]), ey1 = std::min(b[1], t[1]);
    ex2 = std::max(b[2], t[2]), ey2 = std::max(b[3], t[3]);
    ew = std::max(ex2 - ex1, 0.0f), eh = std::max(ey2 - ey1, 0.0f);
    pw = b[2] - b[0], ph = b[3] - b[1];
    I = iw * ih;
    U = pw * ph + (t[2] - t[0]) * (t[3] - t[1]) - I + 1e-7f;
    E = ew * eh + 1e-7f;
  }
  // d loss / d pred box from d loss / d I, d area(p) and d E (each total).
  void gradient(float dI, float d_area_p, float dE, float* d) const {
    d[0] = -d_area_p * ph, d[1] = -d_area_p * pw, d[2] = d_area_p * ph, d[3] = d_area_p * pw;
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
  }
};

}  // namespace

// GIoU = 1 - I/U + (E - U)/E = 2 - I/U - U/E, gradient by the predicted box.
void giou_loss_grad(const float* p, const float* g, float* loss, float* grad, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const BoxPair box(p + 4 * i, g + 4 * i);
    const float I = box.I, U = box.U, E = box.E;
    loss[i] = 1 - I / U + (E - U) / E;
    // dL/dU = I/U² - 1/E, dL/dI = -1/U - dL/dU (I is also in U), dL/dE = U/E².
    const float dU = I / (U * U) - 1 / E;
    box.gradient(-1 / U - dU, dU, U / (E * E), grad + 4 * i);
  }
}

// CSE-Autoloss-B reg: -(num / den), num = (1 + I - E)/(U + 5) + 1 + E,
// den = E - (U + I)/3 (examples/losses/cse_autoloss_b.loss).
void cse_autoloss_b_reg_loss_grad(const float* p, const float* g, float* loss, float* grad, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const BoxPair box(p + 4 * i, g + 4 * i);
    const float I = box.I, U = box.U, E = box.E;
    const float u5 = U + 5, top = 1 + I - E;
    const float num = top / u5 + 1 + E;
    const float den = E - (U + I) / 3;
    loss[i] = -(num / den);
    const float d_num = -1 / den, d_den = num / (den * den);
    const float dU = d_num * (-top / (u5 * u5)) + d_den * (-1.0f / 3);
    const float dI = d_num / u5 + d_den * (-1.0f / 3) - dU;  // U holds -I
    const float dE = d_num * (1 - 1 / u5) + d_den;
    box.gradient(dI, dU, dE, grad + 4 * i);
  }
}

namespace {

// One row of cross-entropy against weights w: -Σ w (x - m - ln Σ e^(x - m)),
// m the row maximum; writes its gradient softmax(x) Σ w - w to g.
float weighted_cross_entropy(const float* x, const float* w, float* g, size_t classes) {
  const float m = *std::max_element(x, x + classes);
  float total = 0, sum_w = 0, dot = 0;
  for (size_t c = 0; c < classes; ++c) {
    g[c] = std::exp(x[c] - m);
    total += g[c];
    sum_w += w[c];
    dot += w[c] * (x[c] - m);
  }
  for (size_t c = 0; c < classes; ++c) g[c] = g[c] / total * sum_w - w[c];
  return -(dot - std::log(total) * sum_w);
}

}  // namespace

// Cross-entropy of each row against its label row y.
void cross_entropy_loss_grad(const float* x, const float* y, float* loss, float* grad, size_t rows, size_t classes) {
  for (size_t r = 0; r < rows; ++r)
    loss[r] = weighted_cross_entropy(x + r * classes, y + r * classes, grad + r * classes, classes);
}

// CSE-Autoloss-A cls: cross-entropy against the weights w = y (1 + sin z)
// (examples/losses/cse_autoloss_a.loss, log(softmax) as log-sum-exp).
void cse_autoloss_a_cls_loss_grad(const float* x, const float* y, const float* z, float* loss, float* grad,
                                  size_t rows, size_t classes) {
  std::vector<float> w(classes);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < classes; ++c) w[c] = y[r * classes + c] * (1 + std::sin(z[r * classes + c]));
    loss[r] = weighted_cross_entropy(x + r * classes, w.data(), grad + r * classes, classes);
  }
}

// CSE-Autoloss-B cls (examples/losses/cse_autoloss_b.loss), p = σ(x):
//   -(Q (1 + serf(σ(NY))) log p + (sgdf(x) - Q) ((1 - Q) - (1 - p)) log(1 - p)),
// log p = -softplus(-x) and log(1 - p) = -softplus(x); serf(a) =
// (erf(√π a / 4) + 1)/2, sgdf(a) = (2/π) atan(tanh(π a / 8)) + 1/2, whose
// derivative is 1 / (4 cosh(π a / 4)).
void cse_autoloss_b_cls_loss_grad(const float* x, const float* q, const float* py, const float* ny, float* loss,
                                  float* grad, size_t n) {
  (void)py;  // an input of the preset the formula does not read
  constexpr float pi = std::numbers::pi_v<float>, sqrt_pi = 1.77245385f;
  for (size_t i = 0; i < n; ++i) {
    const float xi = x[i], qi = q[i];
    const float e = std::exp(-std::fabs(xi));
    const float p = xi >= 0 ? 1 / (1 + e) : e / (1 + e);
    const float softplus = (xi > 0 ? xi : 0) + std::log1p(e);
    const float log_p = xi - softplus, log_1mp = -softplus;
    const float s = 1 / (1 + std::exp(-ny[i]));
    const float w = qi * (1 + (std::erf(sqrt_pi * s / 4) + 1) / 2);
    const float a = (2 / pi) * std::atan(std::tanh(pi * xi / 8)) + 0.5f - qi;
    const float b = (1 - qi) - (1 - p);
    loss[i] = -(w * log_p + a * b * log_1mp);
    const float da = 0.25f / std::cosh(pi * xi / 4), db = p * (1 - p), dlog_1mp = -p;
    grad[i] = -(w * (1 - p) + da * b * log_1mp + a * db * log_1mp + a * b * dlog_1mp);
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
