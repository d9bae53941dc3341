// The reference interpreter: the oracle every faster back end is tested against.
//
// Evaluates a checked Loss on a batch of rows in float or double with exactly the
// semantics of compiler/semantics.hpp (SPEC §3), and computes reverse-mode
// gradients for the pred inputs on its evaluation tape: a forward sweep over the
// IR in topological order records every node's value, a backward sweep
// accumulates adjoints in reverse order with each operator's local derivative.
// It favours clarity and exactness over speed; rows are processed in chunks so
// memory stays bounded for any batch size.
#pragma once

#include <span>
#include <vector>

#include "compiler/loss.hpp"
#include "runtime/tensor.hpp"

namespace lossforge {

template <class T>
struct Evaluation {
  std::vector<T> loss;          // one value per row
  std::vector<Array<T>> grads;  // one per pred input, in input order, shaped like the input; empty without gradients
};

struct EvalOptions {
  bool gradients = false;
  // Values for the loss params, one per Loss::params entry; empty: the defaults.
  std::vector<double> params;
};

// `inputs` holds one Array per Loss::inputs entry. Throws InputError naming the
// input when shapes disagree: row counts differ, a `real[C]` width differs from
// another input with the same C, a box is not 4 wide, a real is not 1 wide.
template <class T>
Evaluation<T> interpret(const Loss& loss, std::span<const Array<T>> inputs, const EvalOptions& options = {});

extern template Evaluation<float> interpret(const Loss&, std::span<const Array<float>>, const EvalOptions&);
extern template Evaluation<double> interpret(const Loss&, std::span<const Array<double>>, const EvalOptions&);

}  // namespace lossforge
