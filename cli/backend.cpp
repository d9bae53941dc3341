#include "cli/backend.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/command.hpp"
#include "compiler/error.hpp"
#if LOSSFORGE_HAVE_LLVM
#include "runtime/llvm_engine.hpp"
#endif
#if LOSSFORGE_HAVE_CUDA
#include "runtime/cuda/cuda_engine.hpp"
#include "runtime/cuda/driver.hpp"
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

std::optional<std::string> unavailable_reason(Backend backend) {
  try {
    require_backend(backend);
#if LOSSFORGE_HAVE_CUDA
    if (backend == Backend::Cuda) cuda::cuda_driver();
#endif
  } catch (const UnavailableError& e) {
    return std::string(e.what());
  }
  return std::nullopt;
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

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Median seconds of `call` after one warm-up call: at least 3 calls and `min_seconds`.
double median_seconds(const std::function<void()>& call, double min_seconds) {
  call();
  std::vector<double> times;
  const auto start = Clock::now();
  do {
    const auto begin = Clock::now();
    call();
    times.push_back(seconds_since(begin));
  } while (times.size() < 3 || seconds_since(start) < min_seconds);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

template <class T>
BackendTiming time_backend(Backend backend, const Loss& loss, std::span<const Array<T>> inputs,
                           const EvalOptions& options, CudaDType dtype, int threads, double min_seconds) {
  require_backend(backend);
  if (cuda_dtype_bytes(dtype) == 2 && backend != Backend::Cuda)
    throw UsageError("--dtype " + std::string(cuda_dtype_name(dtype)) + " is timed on the cuda backend only");
  BackendTiming timing;
#if LOSSFORGE_HAVE_LLVM
  if (backend == Backend::Llvm) {
    LlvmOptions llvm;
    llvm.dtype = std::is_same_v<T, float> ? DType::F32 : DType::F64;
    llvm.gradients = options.gradients;
    llvm.threads = threads;
    auto start = Clock::now();
    CompiledLoss::compile_cached(loss, llvm, default_kernel_cache());
    timing.compile_seconds = seconds_since(start);
    start = Clock::now();
    const CompiledLoss compiled = CompiledLoss::compile_cached(loss, llvm, default_kernel_cache());
    timing.cached_seconds = seconds_since(start);
    // Outputs allocated once, as a training loop's tensors are.
    const std::vector<ArrayView<T>> views = views_of(inputs);
    const size_t rows = inputs.empty() ? 0 : inputs.front().rows;
    std::vector<T> loss_out(rows);
    std::vector<std::vector<T>> grads;
    std::vector<T*> grad_pointers;
    if (options.gradients)
      for (size_t index : loss.pred_inputs()) grads.emplace_back(inputs[index].data.size());
    for (std::vector<T>& g : grads) grad_pointers.push_back(g.data());
    timing.seconds_per_call = median_seconds(
        [&] {
          compiled.evaluate_into<T>(views, options, loss_out.data(), std::span<T* const>(grad_pointers));
        },
        min_seconds);
    return timing;
  }
#endif
#if LOSSFORGE_HAVE_CUDA
  if (backend == Backend::Cuda) {
    cuda::CudaOptions cuda;
    cuda.dtype = dtype;
    cuda.gradients = options.gradients;
    auto start = Clock::now();
    cuda::CudaLoss::compile_cached(loss, cuda, default_kernel_cache());
    timing.compile_seconds = seconds_since(start);
    start = Clock::now();
    const cuda::CudaLoss compiled = cuda::CudaLoss::compile_cached(loss, cuda, default_kernel_cache());
    timing.cached_seconds = seconds_since(start);
    timing.seconds_per_call = compiled.time_launch<T>(inputs, options, min_seconds);
    return timing;
  }
#endif
  (void)dtype;
  (void)threads;
  timing.seconds_per_call = median_seconds([&] { interpret<T>(loss, inputs, options); }, min_seconds);
  return timing;
}

template BackendTiming time_backend(Backend, const Loss&, std::span<const Array<float>>, const EvalOptions&, CudaDType,
                                    int, double);
template BackendTiming time_backend(Backend, const Loss&, std::span<const Array<double>>, const EvalOptions&,
                                    CudaDType, int, double);

template Evaluation<float> evaluate(Backend, const Loss&, std::span<const Array<float>>, const EvalOptions&);
template Evaluation<double> evaluate(Backend, const Loss&, std::span<const Array<double>>, const EvalOptions&);

}  // namespace lossforge::cli
