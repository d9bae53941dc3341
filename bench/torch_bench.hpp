// The LibTorch CPU eager + autograd rows of llvm_bench (bench/torch_bench.cpp).
// This header carries no torch include: only torch_bench.cpp pays for
// <torch/torch.h>, and only the torch_bench target links Torch.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "compiler/loss.hpp"
#include "runtime/tensor.hpp"

namespace lossforge::bench {

// One llvm_bench workload as the torch rows see it: `name` selects the torch
// formula (focal, cse_autoloss_b_cls, ce_c81, cse_autoloss_a_cls_c81, giou,
// cse_autoloss_b_reg), `loss` is the lossforge loss it must agree with, and
// `inputs` are the same float32 arrays in the loss's input order.
struct TorchWorkload {
  std::string name;
  Loss loss;
  std::vector<Array<float>> inputs;
  size_t units;      // rows per call
  const char* unit;  // "element", "row" or "pair"
  size_t per_unit;   // elements per row (real[C] rows), else 0
};

// Checks, once, that torch's loss values and pred gradients agree with the
// interpreter's on the first rows of each workload (throws std::runtime_error
// naming the workload otherwise; prints the largest deviations), then
// registers torch/1t/* and torch/2t/* (and, for ce_c81, the one-hot form
// ce_c81_onehot besides the fused integer-label cross_entropy).
void register_torch(const std::vector<TorchWorkload>& workloads);

}  // namespace lossforge::bench
