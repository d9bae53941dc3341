// Hand-written loss+gradient loops: the "a person would write this" baseline.
#pragma once

#include <cstddef>

namespace lossforge::bench {

void focal_loss_grad(const float* x, const float* y, float* loss, float* grad, size_t n, float alpha, float gamma);
void giou_loss_grad(const float* p, const float* g, float* loss, float* grad, size_t n);

}  // namespace lossforge::bench
