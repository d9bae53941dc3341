// Values typed after a command: numbers, vectors and boxes, and NAME=VALUE
// assignments, turned into the input arrays of a loss.
//
//   x=0.3          one row of a real input
//   x=[1,2,3]      three rows of a real input -- or one row of a real[C] input
//   p=[0,0,10,10]  one box (x1, y1, x2, y2)
//   p=[[0,0,2,2],[1,1,3,3]]   two rows of a box (or of a real[C]) input
// Inputs given one row are repeated to the row count of the others.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/loss.hpp"
#include "runtime/tensor.hpp"

namespace lossforge::repl {

// A number or a (nested) bracketed list of numbers, as typed.
struct Literal {
  double number = 0;           // when items is empty and !is_list
  bool is_list = false;
  std::vector<Literal> items;  // when is_list
};

// Parses one literal; throws InputError naming `what` and the text.
Literal parse_literal(std::string_view text, const std::string& what);

// NAME=VALUE words, in order of appearance (a later one replaces an earlier one).
using Assignments = std::map<std::string, Literal>;

// Whether a word is NAME=VALUE.
bool is_assignment(std::string_view word);
// Adds NAME=VALUE to `into`; throws InputError for a malformed word.
void add_assignment(std::string_view word, Assignments& into);

// The loss's input arrays from assignments (every input must be given; throws
// InputError naming what is missing, with the input types, or a value whose
// shape does not fit its input). Names that are params of the loss go to
// `params` (defaults otherwise); any other name is an error.
struct LossArguments {
  std::vector<Array<double>> inputs;  // one per Loss::inputs entry
  std::vector<double> params;         // one per Loss::params entry
  size_t rows = 0;
};
LossArguments loss_arguments(const Loss& loss, const Assignments& values);

// "x: real, y: real" -- what a loss expects, for messages.
std::string input_list(const Loss& loss);

}  // namespace lossforge::repl
