// Which engine evaluates a loss for `eval`. The one place that knows which
// back ends this build has: the LLVM and CUDA engines plug in here.
#pragma once

#include <array>
#include <optional>
#include <span>
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

}  // namespace lossforge::cli
