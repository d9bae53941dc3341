// The LLVM ORC CPU back end: a Loss compiled to native code by LLJIT.
//
//   LlvmOptions options;                       // f32, with gradients, 1 thread
//   CompiledLoss kernel = CompiledLoss::compile(loss, options);
//   Evaluation<float> out = kernel.evaluate<float>(inputs, {.gradients = true});
//
// compile() differentiates the loss (compiler/autodiff.hpp), generates one
// fused loss+gradient kernel (compiler/codegen_llvm.hpp), optimises it for the
// host CPU and links it into a JIT of its own. The result is a value: movable,
// owning its code, and safe to call from several threads at once. Inputs are
// checked exactly as the interpreter checks them (runtime/input_check.hpp), with
// the same messages. Large batches are split over `threads` threads.
//
// The object code is available (object_code()) and can be loaded again
// without compiling (load()): compile_cached() keeps it in a KernelCache.
//
// Only built with LLVM: everything here is declared under LOSSFORGE_HAVE_LLVM.
#pragma once

#if LOSSFORGE_HAVE_LLVM

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "compiler/codegen_llvm.hpp"
#include "compiler/kernel.hpp"
#include "runtime/interpreter.hpp"
#include "runtime/kernel_cache.hpp"
#include "runtime/tensor.hpp"

namespace lossforge {

struct LlvmOptions {
  DType dtype = DType::F32;
  bool gradients = true;  // compile the gradients of the pred inputs into the kernel
  // Threads per evaluation: 1 runs on the caller's thread; 0 means one per core.
  int threads = 1;
  // Rows below which a batch is not split (threads cost a few microseconds).
  size_t min_rows_per_thread = 16384;
  // Full for kernels that run on many rows; Quick compiles in about half the
  // time for slower row-wise code (llvm_codegen::OptLevel).
  llvm_codegen::OptLevel opt_level = llvm_codegen::OptLevel::Full;
};

class CompiledLoss {
 public:
  // Differentiates (when options.gradients) and compiles the loss as written
  // (compile_cached and the user paths compile it simplified). Throws Error
  // when LLVM fails (it should not), std::invalid_argument for a malformed Loss.
  static CompiledLoss compile(const Loss& loss, const LlvmOptions& options = {});
  // Compiles a kernel whose gradient roots were built elsewhere (tests).
  static CompiledLoss compile(const Kernel& kernel, const LlvmOptions& options = {});
  // The loss simplified (its canonical form), compiled through the kernel
  // cache: a hit loads the stored object code without running LLVM's
  // optimiser; a miss compiles and stores it. Keyed by the canonical hash, so
  // every spelling of the same loss shares one entry, and what it holds is
  // exactly what compiling the canonical form gives.
  static CompiledLoss compile_cached(const Loss& loss, const LlvmOptions& options, KernelCache& cache);
  // Loads object code from object_code() of a kernel of the same loss, dtype and
  // gradients setting, compiled on a machine like this one (the cache key's job).
  static CompiledLoss load(const Loss& loss, const LlvmOptions& options, std::string_view object_code);

  CompiledLoss(CompiledLoss&&) noexcept;
  CompiledLoss& operator=(CompiledLoss&&) noexcept;
  ~CompiledLoss();

  // Evaluates like interpret<T>(): T must match the dtype. options.gradients
  // needs a kernel compiled with gradients (std::invalid_argument otherwise).
  template <class T>
  Evaluation<T> evaluate(std::span<const Array<T>> inputs, const EvalOptions& options = {}) const;
  // The same on memory the caller owns, without copies (a training loop's
  // tensors): reads `inputs` (checked as evaluate checks its arrays), writes
  // one loss per row to `loss` and, with options.gradients, the gradient of
  // each pred input, in input order and shaped like it, to `grads`. The
  // buffers must hold rows (x width) values each, the kernel writes them all,
  // and they must not overlap the inputs (the kernel reads them as noalias).
  template <class T>
  void evaluate_into(std::span<const ArrayView<T>> inputs, const EvalOptions& options, T* loss,
                     std::span<T* const> grads) const;

  const Loss& loss() const;
  const LlvmOptions& options() const;
  bool has_gradients() const;
  // The relocatable object file the kernel was linked from.
  std::string_view object_code() const;

 private:
  struct Impl;
  explicit CompiledLoss(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

extern template Evaluation<float> CompiledLoss::evaluate(std::span<const Array<float>>, const EvalOptions&) const;
extern template Evaluation<double> CompiledLoss::evaluate(std::span<const Array<double>>, const EvalOptions&) const;
extern template void CompiledLoss::evaluate_into(std::span<const ArrayView<float>>, const EvalOptions&, float*,
                                                 std::span<float* const>) const;
extern template void CompiledLoss::evaluate_into(std::span<const ArrayView<double>>, const EvalOptions&, double*,
                                                 std::span<double* const>) const;

}  // namespace lossforge

#endif  // LOSSFORGE_HAVE_LLVM
