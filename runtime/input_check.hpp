// Checking a batch of inputs against a loss signature: shared by every engine
// (the interpreter, the LLVM JIT, ...) so that they accept the same batches and
// reject the rest with the same messages.
#pragma once

#include <optional>
#include <span>
#include <vector>

#include "compiler/loss.hpp"
#include "runtime/interpreter.hpp"
#include "runtime/tensor.hpp"

namespace lossforge {

// A width written as a number (real[81]) fixes the width; a name (real[C]) is
// bound by the data.
std::optional<size_t> numeric_width(Symbol symbol);

// The shape of a batch, checked against the loss signature.
struct BatchShape {
  size_t rows = 0;
  struct Binding {
    Symbol symbol;
    size_t width;
    size_t input;  // the input that bound it, for error messages
  };
  std::vector<Binding> widths;

  const Binding* find(Symbol symbol) const;
  // Values per row of a value of this type; throws std::invalid_argument for a
  // width no input binds.
  size_t width_of(const Type& type) const;
};

// Throws InputError naming the input when shapes disagree: the number of
// arrays, row counts, a real[C] width that differs from another input with the
// same C or from a numeric width, a box not 4 wide, a real not 1 wide, an array
// whose data does not hold rows x width values.
template <class T>
BatchShape check_inputs(const Loss& loss, std::span<const ArrayView<T>> inputs);
template <class T>
BatchShape check_inputs(const Loss& loss, std::span<const Array<T>> inputs) {
  return check_inputs<T>(loss, views_of(inputs));
}
extern template BatchShape check_inputs(const Loss&, std::span<const ArrayView<float>>);
extern template BatchShape check_inputs(const Loss&, std::span<const ArrayView<double>>);

// The values of the loss params: options.params, or the defaults when it is
// empty. Throws InputError when the count is wrong.
std::vector<double> param_values(const Loss& loss, const EvalOptions& options);

}  // namespace lossforge
