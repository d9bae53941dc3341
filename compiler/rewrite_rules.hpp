// The simplifier's rewrite rules, as data (egg style): a name, a pattern, a
// replacement and a side condition, in one table (compiler/rewrite_rules.cpp).
//
// Patterns are S-expressions over the operator table's call names:
//   (log (softmax ?x))      ?x binds any subexpression; a repeated ?x must bind
//                           the same node (hash-consing makes that identity)
//   (div ?x 1)              a number matches that constant exactly
// The engine (compiler/simplify.cpp) tries the rules at a node in table order;
// a rule fires when the pattern matches, its side condition holds, and the
// replacement builds with the same type as the node it replaces.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/ir.hpp"
#include "compiler/value_range.hpp"

namespace lossforge {

struct Pattern {
  enum class Kind { Var, Number, Apply };
  Kind kind = Kind::Var;
  std::string var;                // Var: the name after '?'
  double number = 0;              // Number
  Op op = Op::Const;              // Apply
  std::vector<Pattern> args;      // Apply
};

// Parses "(log (softmax ?x))"; throws std::invalid_argument on malformed text.
Pattern parse_pattern(std::string_view text);

using Bindings = std::map<std::string, Expr, std::less<>>;

// Whether a rule is exact under the semantics, or changes results only where a
// protection (1e-20 in div and log, the clamp at 88 in exp) is active.
enum class Exactness { Exact, Rounding, Protection };

struct RewriteRule {
  std::string_view name;
  std::string_view pattern;
  std::string_view replacement;
  std::function<bool(const Bindings&, RangeAnalysis&)> condition;  // empty: always
  Exactness exactness;
  std::string_view why;  // what holds, and where it may differ
};

// The table, in the order the engine tries it.
std::span<const RewriteRule> rewrite_rules();

// Matching and building, for the engine and the tests. `opaque` nodes match only
// a variable (the names a preset gives, such as U, are not looked into).
bool match(const Pattern& pattern, const Expr& e, Bindings& bindings,
           const std::function<bool(const Node*)>& opaque = {});
// Throws std::invalid_argument when the built operators do not type-check.
Expr instantiate(const Pattern& pattern, const Bindings& bindings);

}  // namespace lossforge
