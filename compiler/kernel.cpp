#include "compiler/kernel.hpp"

#include "compiler/simplify.hpp"

namespace lossforge {

Kernel user_kernel(const Loss& loss, bool gradients) {
  Loss simplified = simplify(loss);
  if (!gradients) return forward_kernel(std::move(simplified));
  Gradients derivatives = differentiate(simplified);
  return gradient_kernel(std::move(simplified), std::move(derivatives));
}

}  // namespace lossforge
