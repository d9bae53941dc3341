#include "cli/backend.hpp"

#include <stdexcept>
#include <string>
#include <vector>

#include "compiler/error.hpp"
#if LOSSFORGE_HAVE_LLVM
#include "runtime/llvm_engine.hpp"
#endif
#if LOSSFORGE_HAVE_CUDA
#include "runtime/cuda/cuda_engine.hpp"
#endif

namespace lossforge::cli {

std::optional<Backend> find_backend(std::string_view name) {
  if (name == "interp") return Backend::Interp;
  if (name == "llvm") return Backend::Llvm;
  if (name == "cuda") return Backend::Cuda;
  return std::nullopt;
}

std::string_view backend_name(Backend backend) {
  switch (backend) {
    case Backend::Interp: return "interp";
    case Backend::Llvm: return "llvm";
    case Backend::Cuda: return "cuda";
  }
  return "?";
}

void require_backend(Backend backend) {
  if (backend == Backend::Interp) return;
#if LOSSFORGE_HAVE_LLVM
  if (backend == Backend::Llvm) return;
#endif
#if LOSSFORGE_HAVE_CUDA
  if (backend == Backend::Cuda) return;  // built; whether this machine has a device shows when it runs
#endif
  throw UnavailableError("backend '" + std::string(backend_name(backend)) + "' is not built into this lossforge");
}

template <class T>
Evaluation<T> evaluate(Backend backend, const Loss& loss, std::span<const Array<T>> inputs,
                       const EvalOptions& options) {
  require_backend(backend);
#if LOSSFORGE_HAVE_LLVM
  if (backend == Backend::Llvm) {
    LlvmOptions llvm;
    llvm.dtype = std::is_same_v<T, float> ? DType::F32 : DType::F64;
    llvm.gradients = options.gradients;
    llvm.threads = 0;  // one per core for large batches; small ones stay on this thread
    return CompiledLoss::compile_cached(loss, llvm, default_kernel_cache()).evaluate<T>(inputs, options);
  }
#endif
#if LOSSFORGE_HAVE_CUDA
  if (backend == Backend::Cuda) {
    // Throws UnavailableError("no CUDA device: ...") on a machine without one.
    cuda::CudaOptions cuda;
    cuda.dtype = std::is_same_v<T, float> ? CudaDType::F32 : CudaDType::F64;
    cuda.gradients = options.gradients;
    return cuda::CudaLoss::compile_cached(loss, cuda, default_kernel_cache()).evaluate<T>(inputs, options);
  }
#endif
  return interpret<T>(loss, inputs, options);
}

Evaluation<float> evaluate_stored(Backend backend, const Loss& loss, std::span<const Array<float>> inputs,
                                  const EvalOptions& options, CudaDType dtype) {
  if (cuda_dtype_bytes(dtype) != 2) throw std::invalid_argument("evaluate_stored: f16 or bf16");
  require_backend(backend);
#if LOSSFORGE_HAVE_CUDA
  if (backend == Backend::Cuda) {
    cuda::CudaOptions cuda;
    cuda.dtype = dtype;
    cuda.gradients = options.gradients;
    return cuda::CudaLoss::compile_cached(loss, cuda, default_kernel_cache()).evaluate<float>(inputs, options);
  }
#endif
  auto round = [dtype](std::vector<float>& values) {
    for (float& v : values) v = round_to_storage(dtype, v);
  };
  std::vector<Array<float>> rounded(inputs.begin(), inputs.end());
  for (Array<float>& input : rounded) round(input.data);
  Evaluation<float> result = evaluate<float>(backend, loss, std::span<const Array<float>>(rounded), options);
  for (Array<float>& grad : result.grads) round(grad.data);
  return result;
}

template Evaluation<float> evaluate(Backend, const Loss&, std::span<const Array<float>>, const EvalOptions&);
template Evaluation<double> evaluate(Backend, const Loss&, std::span<const Array<double>>, const EvalOptions&);

}  // namespace lossforge::cli
