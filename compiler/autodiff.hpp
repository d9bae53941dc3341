// Symbolic reverse-mode differentiation on the IR.
//
// differentiate(loss) returns, for every pred input, expressions for the
// derivative of the loss body by that input, built in the same hash-consed DAG
// as the body: they share every subexpression with the forward pass, so a code
// generator that compiles the body and its gradients together computes each
// shared node once (one fused forward+backward kernel).
//
// Shapes of the parts:
//   real     one part, real
//   real[C]  one part, real[C] -- or real when the derivative is the same in
//            every column (d sum(x) / dx = 1): back ends broadcast it
//   box      four parts, the derivatives by x1, y1, x2, y2, each real
// Derivatives at kinks are exactly those of compiler/semantics.hpp (min/max
// ties split the gradient, relu'(0) = 0, exp's clamp at 88, pow's conventions,
// sigmoid' = s(1 - s)), so the gradient expressions evaluate to what the
// interpreter's tape computes.
#pragma once

#include <vector>

#include "compiler/loss.hpp"

namespace lossforge {

struct InputGradient {
  size_t input = 0;         // index into Loss::inputs
  std::vector<Expr> parts;  // see the shapes above
};

struct Gradients {
  std::vector<InputGradient> inputs;  // the pred inputs, in input order
};

Gradients differentiate(const Loss& loss);

// The gradients as losses the DSL prints and reads back (`lossforge grad`): one
// per part, named d_<loss>_d<input> (box parts d_<loss>_d<input>_x1, ...), over
// the loss's inputs and params, reusing its lets' names. A loss returns a real,
// so a real[C] part is given as its dot product with one more input, a data
// row named w (or w2, ... when taken): a one-hot w picks a column.
std::vector<Loss> gradient_losses(const Loss& loss, const Gradients& gradients);

}  // namespace lossforge
