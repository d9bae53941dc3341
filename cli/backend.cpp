#include "cli/backend.hpp"

#include <string>

#include "compiler/error.hpp"

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
  throw UnavailableError("backend '" + std::string(backend_name(backend)) + "' is not built into this lossforge");
}

template <class T>
Evaluation<T> evaluate(Backend backend, const Loss& loss, std::span<const Array<T>> inputs,
                       const EvalOptions& options) {
  require_backend(backend);
  return interpret<T>(loss, inputs, options);
}

template Evaluation<float> evaluate(Backend, const Loss&, std::span<const Array<float>>, const EvalOptions&);
template Evaluation<double> evaluate(Backend, const Loss&, std::span<const Array<double>>, const EvalOptions&);

}  // namespace lossforge::cli
