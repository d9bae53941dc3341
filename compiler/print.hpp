// Printers from IR back to text.
//
// to_infix writes canonical DSL text with the fewest parentheses that parse back
// to the same node (numbers in shortest round-trip form, `-2` for negative
// constants, neg(2) for the negation of a literal). to_deap writes the prefix
// form CSE-Autoloss publishes: Add(1,Neg(Div(I,U))). to_text writes a whole
// loss definition; shared subexpressions become lets (the author's names where
// the Loss has them), so any DAG prints in size linear to it. Printing is
// iterative: safe at any depth.
#pragma once

#include <string>
#include <unordered_map>

#include "compiler/loss.hpp"

namespace lossforge {

// Nodes to print as a name instead of their expression (lets, preset terminals).
using NameMap = std::unordered_map<const Node*, std::string>;

std::string to_infix(const Expr& expr, const NameMap& names = {});
std::string to_deap(const Expr& expr, const NameMap& names = {});
std::string to_text(const Loss& loss);
std::string to_text(const Module& module);

// The signature as the DSL writes it: focal(pred x: real, y: real).
std::string signature(const Loss& loss);

// Shortest text that reads back as the same double: 2, 0.25, 1e-7, -3.5.
std::string format_number(double value);

}  // namespace lossforge
