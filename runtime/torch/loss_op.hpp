// A lossforge loss as a LibTorch operator with a gradient.
//
//   auto focal = lossforge::torch_ops::load_loss("examples/losses/focal.loss", "sigmoid_focal");
//   torch::Tensor l = focal({x, y}, {.reduction = Reduction::Mean, .weight = w, .avg_factor = 12.0});
//   l.backward();                                    // x.grad() is filled
//
// The result carries a custom autograd Function. Its forward runs the fused
// loss+gradient kernel once per call -- on CPU tensors the LLVM CompiledLoss
// (runtime/llvm_engine.hpp, through the default kernel cache), or the
// interpreter in a build without LLVM; on CUDA tensors (cuda:0) the NVRTC
// CudaLoss (runtime/cuda/cuda_engine.hpp), launched on PyTorch's current
// stream without a synchronisation -- and keeps the per-element gradient of
// every pred input; its backward only scales that gradient by the incoming
// gradient, the weights and the reduction's factor. No graph of small torch ops
// is built, so memory and time do not grow with the size of the formula.
//
// Inputs, one tensor per loss input in signature order, on one device, of one
// float dtype, contiguous, shaped by the input's type. float32 and float64
// kernels compute in their dtype; float16 and bfloat16 inputs are storage
// around float arithmetic (the CUDA kernels of that dtype, on the CPU the
// float kernel on widened copies): the loss comes out float32, the gradients
// in the inputs' dtype.
//   real      [N]        one value per element (row)
//   real[C]   [N, C]     a row of C class values
//   box       [N, 4]     x1, y1, x2, y2
// Gradients flow to the `pred` inputs (and to `weight` when it requires one);
// the other inputs are constants, as the DSL declares them.
//
// Reductions follow SPEC §4 (mmdetection's weight_reduce_loss): the per-row
// loss l is multiplied by the optional per-row weight w, then
//   None -> w·l (shape [N]),  Sum -> Σ w·l,  Mean -> Σ w·l / N,
//   Mean with avg_factor -> Σ w·l / avg_factor.
//
// Every check throws lossforge::InputError with one line naming the input.
// CUDA tensors throw UnavailableError in a build without the CUDA back end or
// against a LibTorch without CUDA (Debian's), where none can be made anyway.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "compiler/loss.hpp"

namespace lossforge::torch_ops {

enum class Reduction { None, Sum, Mean };

struct LossOptions {
  Reduction reduction = Reduction::Mean;
  at::Tensor weight;                      // optional per-row weights, shape [N], same dtype and device
  std::optional<double> avg_factor;       // Mean only: divide the weighted sum by this instead of N
  std::vector<double> params;             // values for the loss's params in order; empty: the defaults
};

class TorchLoss {
 public:
  // A checked loss (from compiler/frontend.hpp, a .loss file or a formula).
  explicit TorchLoss(Loss loss);

  // The loss applied to `inputs` (one per Loss::inputs entry); see the header comment.
  at::Tensor operator()(const std::vector<at::Tensor>& inputs, const LossOptions& options = {}) const;

  const Loss& loss() const;
  // The inputs as a short signature, for messages: "(pred X: real, Q: real, ...)".
  std::string signature() const;

  struct State;  // the loss and its compiled kernels, shared by copies

 private:
  std::shared_ptr<State> state_;
};

// The loss `name` of a .loss file; with an empty name the file must define
// exactly one. Throws CompileError for bad text, InputError otherwise.
TorchLoss load_loss(const std::string& path, const std::string& name = "");
// A bare formula (infix or DEAP prefix) over a signature preset (SPEC §2).
TorchLoss load_formula(const std::string& text, const std::string& preset);

}  // namespace lossforge::torch_ops
