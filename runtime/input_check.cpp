// Batch checks shared by the engines; the messages are the interpreter's (see
// tests/interpreter_test.cpp), whichever engine reports them.
#include "runtime/input_check.hpp"

#include <charconv>
#include <stdexcept>
#include <string>

#include "compiler/error.hpp"

namespace lossforge {
namespace {

std::string quoted(std::string_view name) { return "'" + std::string(name) + "'"; }

std::string plural(size_t count, std::string_view noun) {
  return std::to_string(count) + " " + std::string(noun) + (count == 1 ? "" : "s");
}

std::string name_list(const auto& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item.name;
  return out;
}

}  // namespace

// A width written as a number (real[81]) fixes the width; a name (real[C]) is
// bound by the data.
std::optional<size_t> numeric_width(Symbol symbol) {
  std::string_view text = symbol.str();
  size_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

const BatchShape::Binding* BatchShape::find(Symbol symbol) const {
  for (const Binding& b : widths)
    if (b.symbol == symbol) return &b;
  return nullptr;
}

size_t BatchShape::width_of(const Type& type) const {
  switch (type.kind()) {
    case Type::Kind::Real: return 1;
    case Type::Kind::Box: return 4;
    case Type::Kind::Vec:
      if (const Binding* b = find(type.width())) return b->width;
      if (auto fixed = numeric_width(type.width())) return *fixed;
      throw std::invalid_argument("interpret: width " + std::string(type.width().str()) +
                                    " of an intermediate value is bound by no input");
  }
  return 1;
}

template <class T>
BatchShape check_inputs(const Loss& loss, std::span<const ArrayView<T>> inputs) {
  if (inputs.size() != loss.inputs.size())
    throw InputError("loss " + quoted(loss.name) + " takes " + plural(loss.inputs.size(), "input") + " (" +
                     name_list(loss.inputs) + ") but got " + plural(inputs.size(), "array"));
  BatchShape shape;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const LossInput& in = loss.inputs[i];
    const ArrayView<T>& array = inputs[i];
    const std::string name = "input " + quoted(in.name);
    switch (in.type.kind()) {
      case Type::Kind::Real:
        if (array.width != 1)
          throw InputError(name + " is real and needs 1 value per row, got " + std::to_string(array.width));
        break;
      case Type::Kind::Box:
        if (array.width != 4)
          throw InputError(name + " is a box and needs 4 values per row (x1, y1, x2, y2), got " +
                           std::to_string(array.width));
        break;
      case Type::Kind::Vec: {
        const std::string type = in.type.str();
        if (array.width == 0) throw InputError(name + " has no values per row; " + type + " needs at least one");
        if (auto fixed = numeric_width(in.type.width()); fixed && *fixed != array.width)
          throw InputError(name + " has " + std::to_string(array.width) + " values per row but its type " + type +
                           " needs " + std::to_string(*fixed));
        if (const auto* bound = shape.find(in.type.width())) {
          if (bound->width != array.width)
            throw InputError(name + " has " + std::to_string(array.width) + " values per row but " +
                             quoted(loss.inputs[bound->input].name) + " has " + std::to_string(bound->width) +
                             " (both " + type + ")");
        } else {
          shape.widths.push_back({in.type.width(), array.width, i});
        }
        break;
      }
    }
    if (array.size != array.rows * array.width)
      throw InputError(name + " holds " + plural(array.size, "value") + " but " +
                       plural(array.rows, "row") + " of " + std::to_string(array.width) + " need " +
                       std::to_string(array.rows * array.width));
    if (i == 0)
      shape.rows = array.rows;
    else if (array.rows != shape.rows)
      throw InputError(name + " has " + plural(array.rows, "row") + " but " + quoted(loss.inputs[0].name) +
                       " has " + std::to_string(shape.rows));
  }
  return shape;
}

std::vector<double> param_values(const Loss& loss, const EvalOptions& options) {
  if (options.params.empty()) {
    std::vector<double> defaults;
    for (const LossParam& p : loss.params) defaults.push_back(p.value);
    return defaults;
  }
  if (options.params.size() != loss.params.size())
    throw InputError("loss " + quoted(loss.name) + " has " + plural(loss.params.size(), "param") + " (" +
                     name_list(loss.params) + ") but got " + plural(options.params.size(), "value"));
  return options.params;
}

template BatchShape check_inputs(const Loss&, std::span<const ArrayView<float>>);
template BatchShape check_inputs(const Loss&, std::span<const ArrayView<double>>);

}  // namespace lossforge
