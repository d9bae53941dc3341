// The CUDA back end: a Loss compiled by NVRTC into one fused loss + gradient +
// reduction kernel (compiler/codegen_cuda.hpp) and run through the dlopen-ed
// driver (runtime/cuda/driver.hpp).
//
//   CudaOptions options;                                    // f32, with gradients
//   CudaLoss kernel = CudaLoss::compile_cached(loss, options, default_kernel_cache());
//   Evaluation<float> out = kernel.evaluate<float>(inputs, {.gradients = true});  // host arrays
//   kernel.launch(args, width, stream);                     // device arrays (the LibTorch op)
//
// compile_cached() simplifies the loss (its canonical form names the cache
// entry, as for the LLVM back end), and keeps the CUBIN -- or PTX, for a GPU
// newer than NVRTC -- in the KernelCache, so a cached kernel costs a file read
// and cuModuleLoadData, no NVRTC. Without a device every entry point throws
// UnavailableError("no CUDA device: ..."), before compiling anything.
//
// Only built with the CUDA toolkit (LOSSFORGE_HAVE_CUDA).
#pragma once

#include <memory>
#include <span>
#include <string>

#include "compiler/codegen_c.hpp"
#include "compiler/codegen_cuda.hpp"
#include "compiler/kernel.hpp"
#include "runtime/interpreter.hpp"
#include "runtime/kernel_cache.hpp"
#include "runtime/tensor.hpp"

namespace lossforge::cuda {

struct CudaOptions {
  CudaDType dtype = CudaDType::F32;  // f16 and bf16: 16-bit arrays, float arithmetic
  bool gradients = true;
  int min_blocks_per_sm = 0;  // CudaEmitOptions::min_blocks_per_sm (occupancy against registers)
};

// The launch block of the generated kernels (LossforgeLaunch in the generated
// source): one per launch, device pointers in it.
using LaunchArgs = c_codegen::LaunchBlock;

enum class Reduction { None, Sum, Mean };

// Reduction options of evaluate(): weights (one per row, or empty), and
// avg_factor (> 0: the sum divided by it instead of by the row count).
struct ReduceOptions {
  Reduction reduction = Reduction::None;
  std::vector<double> weights;
  double avg_factor = 0;
};

template <class T>
struct Reduced {
  Evaluation<T> rows;  // per-row loss (x weight) and gradients of the reduced loss
  double total = 0;    // the reduced loss (0 for Reduction::None)
};

class CudaLoss {
 public:
  static CudaLoss compile(const Kernel& kernel, const CudaOptions& options = {});
  static CudaLoss compile(const Loss& loss, const CudaOptions& options = {});
  static CudaLoss compile_cached(const Loss& loss, const CudaOptions& options, KernelCache& cache);

  CudaLoss(CudaLoss&&) noexcept;
  CudaLoss& operator=(CudaLoss&&) noexcept;
  ~CudaLoss();

  // Host arrays in and out, like interpret<T>() (same checks, same messages):
  // copies to the device, one launch, copies back. T must be the compute type
  // (double for f64, float otherwise); for f16 and bf16 the inputs and weights
  // are rounded to that type on the way in and the gradients come back from it.
  template <class T>
  Evaluation<T> evaluate(std::span<const Array<T>> inputs, const EvalOptions& options = {}) const;
  // The same with a weighted reduction computed by the kernel in the same pass.
  template <class T>
  Reduced<T> reduce(std::span<const Array<T>> inputs, const ReduceOptions& reduce, const EvalOptions& options = {}) const;

  // Seconds per launch on these inputs, copied to the device once: the median
  // over batches of back-to-back launches, for at least `min_seconds`
  // (`lossforge bench`). Takes the arguments evaluate() takes.
  template <class T>
  double time_launch(std::span<const Array<T>> inputs, const EvalOptions& options, double min_seconds) const;

  // One launch on device arrays (args.total must point at zeroed device memory
  // or be null), on `stream` (a CUstream; null: the legacy default stream).
  // max_width: the widest real[C] row (picks the warp or block layout).
  // Asynchronous: the caller synchronises.
  void launch(const LaunchArgs& args, long long max_width, void* stream) const;

  const Loss& loss() const;
  const CudaOptions& options() const;
  bool has_gradients() const;
  const std::string& source() const;  // the generated CUDA source
  bool loaded_from_cache() const;     // compile_cached found the image in the cache

 private:
  struct Impl;
  explicit CudaLoss(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

extern template Evaluation<float> CudaLoss::evaluate(std::span<const Array<float>>, const EvalOptions&) const;
extern template Evaluation<double> CudaLoss::evaluate(std::span<const Array<double>>, const EvalOptions&) const;
extern template Reduced<float> CudaLoss::reduce(std::span<const Array<float>>, const ReduceOptions&, const EvalOptions&) const;
extern template Reduced<double> CudaLoss::reduce(std::span<const Array<double>>, const ReduceOptions&, const EvalOptions&) const;
extern template double CudaLoss::time_launch(std::span<const Array<float>>, const EvalOptions&, double) const;
extern template double CudaLoss::time_launch(std::span<const Array<double>>, const EvalOptions&, double) const;

}  // namespace lossforge::cuda
