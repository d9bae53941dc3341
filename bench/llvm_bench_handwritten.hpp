// Hand-written loss+gradient loops: the "a person would write this" baseline.
#pragma once

#include <cstddef>
#include <span>

namespace lossforge::bench {

// One per llvm_bench workload, with the inputs of its loss in their order:
// n elements or box pairs, or `rows` rows of `classes` values; one loss per
// element, pair or row, and the gradient of the pred input, shaped like it.
void focal_loss_grad(const float* x, const float* y, float* loss, float* grad, size_t n, float alpha, float gamma);
void cse_autoloss_b_cls_loss_grad(const float* x, const float* q, const float* py, const float* ny, float* loss,
                                  float* grad, size_t n);
void cross_entropy_loss_grad(const float* x, const float* y, float* loss, float* grad, size_t rows, size_t classes);
void cse_autoloss_a_cls_loss_grad(const float* x, const float* y, const float* z, float* loss, float* grad,
                                  size_t rows, size_t classes);
// Cross-entropy again, written with AVX2 intrinsics and libmvec's 8-lane
// expf (llvm_bench_ce_avx2.cpp): what a person tuning this loss for the
// host would write. False (nothing written) where the bench was built
// without AVX2, FMA or libmvec.
//   avx2: one row at a time in the order the JIT's kernel takes (max, exp,
//     sums, ln Σ, gradient), the nearest baseline to the JIT's code;
//   deferred_log: the same, but the rows' ln Σ taken 8 rows at a time, one
//     vector logf instead of 8 scalar ones;
//   row_blocks: 8 rows a block in three passes (the maxima, then the
//     exponentials and sums, then the gradients), the horizontal steps of
//     the 8 rows' accumulators as one transpose and one vector logf.
bool cross_entropy_loss_grad_avx2(const float* x, const float* y, float* loss, float* grad, size_t rows,
                                  size_t classes);
bool cross_entropy_loss_grad_avx2_deferred_log(const float* x, const float* y, float* loss, float* grad,
                                               size_t rows, size_t classes);
bool cross_entropy_loss_grad_avx2_row_blocks(const float* x, const float* y, float* loss, float* grad, size_t rows,
                                             size_t classes);
void giou_loss_grad(const float* p, const float* g, float* loss, float* grad, size_t n);
void cse_autoloss_b_reg_loss_grad(const float* p, const float* g, float* loss, float* grad, size_t n);

// The memory-traffic floor of a loss+gradient kernel over `rows` rows: reads
// every value of every input once (inputs[k] holds rows x widths[k] values),
// writes one value per row to `loss` and copies input pred[j] to grads[j],
// the least any kernel of that loss must move. It computes nothing but an OR
// of the bits it reads (integer ops vectorise in any order; float sums would
// not without -ffast-math).
void memory_floor(std::span<const float* const> inputs, std::span<const size_t> widths, size_t rows, float* loss,
                  std::span<const size_t> pred, std::span<float* const> grads);

}  // namespace lossforge::bench
