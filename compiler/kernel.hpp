// What a back end compiles: a loss and the output roots of its kernel.
//
// A kernel evaluates, per row, the loss body and -- when gradients are wanted --
// the derivative of the body by every pred input, as expressions in the same
// hash-consed DAG (compiler/autodiff.hpp: differentiate). Compiling all roots
// together is what makes the kernel fused: a node shared by the body and its
// gradients is computed once per row.
//
// Gradient part shapes are those of autodiff.hpp: one `real` part for a real
// input; one part for a real[C] input, either real[C] or a `real` that the
// back end broadcasts over the row; four `real` parts (x1, y1, x2, y2) for a box.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "compiler/autodiff.hpp"
#include "compiler/loss.hpp"

namespace lossforge {

// The float type a kernel computes in (every intermediate included).
enum class DType { F32, F64 };
inline const char* dtype_name(DType dtype) { return dtype == DType::F32 ? "f32" : "f64"; }

struct Kernel {
  Loss loss;
  // One entry per pred input, in input order; empty for a forward-only kernel.
  std::vector<InputGradient> gradients;

  bool has_gradients() const { return !gradients.empty(); }

  // The body, then every gradient part in order.
  std::vector<Expr> roots() const {
    std::vector<Expr> out{loss.body};
    for (const InputGradient& g : gradients)
      for (const Expr& part : g.parts) out.push_back(part);
    return out;
  }
};

// Checks that `gradients` has the shapes above for `loss`'s pred inputs; throws
// std::invalid_argument naming the offending part (a bug in whoever built them).
inline void check_gradient_shapes(const Loss& loss, const std::vector<InputGradient>& gradients) {
  const std::vector<size_t> preds = loss.pred_inputs();
  if (gradients.size() != preds.size())
    throw std::invalid_argument("kernel of '" + loss.name + "': " + std::to_string(gradients.size()) +
                                " gradients for " + std::to_string(preds.size()) + " pred inputs");
  for (size_t k = 0; k < preds.size(); ++k) {
    const InputGradient& g = gradients[k];
    const LossInput& in = loss.inputs[preds[k]];
    const std::string what = "kernel of '" + loss.name + "': gradient of '" + in.name + "'";
    if (g.input != preds[k]) throw std::invalid_argument(what + " is listed for input " + std::to_string(g.input));
    const size_t want = in.type.is_box() ? 4 : 1;
    if (g.parts.size() != want)
      throw std::invalid_argument(what + " has " + std::to_string(g.parts.size()) + " parts, needs " +
                                  std::to_string(want));
    for (const Expr& part : g.parts) {
      if (!part) throw std::invalid_argument(what + " has an empty part");
      const bool ok = part->type().is_real() || (in.type.is_vec() && part->type() == in.type);
      if (!ok) throw std::invalid_argument(what + " is " + part->type().str() + " for a " + in.type.str() + " input");
    }
  }
}

inline Kernel forward_kernel(Loss loss) { return Kernel{std::move(loss), {}}; }

// A kernel over gradient expressions built elsewhere: differentiate(loss), or
// hand-made ones in tests.
inline Kernel gradient_kernel(Loss loss, Gradients gradients) {
  check_gradient_shapes(loss, gradients.inputs);
  return Kernel{std::move(loss), std::move(gradients.inputs)};
}

// The kernel a user's loss compiles to: the loss simplified
// (compiler/simplify.hpp: log(softmax(x)) is log_softmax(x), one log per row
// instead of one per column), then differentiated when `gradients`, as the
// engines' compile_cached compile it; `lossforge compile`, `emit` and the
// REPL's `:emit` generate their code from it. forward_kernel and
// gradient_kernel take a loss as written.
Kernel user_kernel(const Loss& loss, bool gradients);

}  // namespace lossforge
