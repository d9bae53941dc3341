// Which engine evaluates a loss for `eval`. The one place that knows which
// back ends this build has: the LLVM and CUDA engines plug in here.
#pragma once

#include <array>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "compiler/codegen_cuda.hpp"
#include "compiler/loss.hpp"
#include "runtime/interpreter.hpp"
#include "runtime/tensor.hpp"

namespace lossforge::cli {

enum class Backend { Interp, Llvm, Cuda };

// Every name --backend accepts, built into this lossforge or not.
inline constexpr std::array<std::string_view, 3> kBackendNames = {"interp", "llvm", "cuda"};

std::optional<Backend> find_backend(std::string_view name);
std::string_view backend_name(Backend backend);

// Throws UnavailableError ("backend 'llvm' is not built into this lossforge")
// for a back end this build lacks.
void require_backend(Backend backend);

// Why the back end cannot run here ("backend 'llvm' is not built into this
// lossforge", "no CUDA device: ..."), or nothing when it can.
std::optional<std::string> unavailable_reason(Backend backend);

// Evaluates `loss` on `inputs` (one Array per Loss::inputs entry) with the back end.
template <class T>
Evaluation<T> evaluate(Backend backend, const Loss& loss, std::span<const Array<T>> inputs,
                       const EvalOptions& options);

// The same for a 16-bit storage type (f16, bf16: compiler/storage_types.hpp):
// the CUDA back end runs its kernels of that dtype; the others compute in float
// on the inputs rounded to it and round the gradients to it, as those kernels
// do. The loss stays float.
Evaluation<float> evaluate_stored(Backend backend, const Loss& loss, std::span<const Array<float>> inputs,
                                  const EvalOptions& options, CudaDType dtype);

// One back end's speed on one batch, for `lossforge bench`.
struct BackendTiming {
  double compile_seconds = 0;   // text to callable, the first time in this process (0 for interp)
  double cached_seconds = 0;    // the same again: a kernel cache hit (0 for interp)
  double seconds_per_call = 0;  // median of repeated evaluations (CUDA: device time of a launch)
};

// Compiles `loss` for the back end and evaluates it repeatedly on `inputs`
// (outputs preallocated where the engine allows) until at least 3 calls and
// `min_seconds` have passed. `threads`: the LLVM engine's (ignored by the
// others). dtype: the arrays' type; f16/bf16 (float T) only for CUDA.
template <class T>
BackendTiming time_backend(Backend backend, const Loss& loss, std::span<const Array<T>> inputs,
                           const EvalOptions& options, CudaDType dtype, int threads, double min_seconds);

}  // namespace lossforge::cli
