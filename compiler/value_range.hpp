// What the simplifier may assume about a value: constant folding and interval
// bounds, the facts behind the side conditions of compiler/rewrite_rules.cpp.
//
// evaluate_scalar() is the one scalar path for folding: a table from operator
// to its compiler/semantics.hpp function in double, so a folded constant is
// exactly what the interpreter computes in f64. Operators missing from that
// table (row-wise and box ops, which never have constant arguments, or an
// operator added later) are simply not folded.
//
// value_range() is a conservative interval analysis. Its one assumption, which
// every side condition inherits: inputs and params are finite with magnitude at
// most kInputBound, and no divisor equals exactly -1e-20 (the one value where
// protected division divides by zero). Under that assumption a divisor b has
// |b + 1e-20| >= 1e-36 (the spacing of doubles near 1e-20), so a quotient is at
// most kDivGain times its numerator: every value stays finite unless a bound
// overflows double, and the analysis reports exactly that. Unknown operators
// get the widest answer (any value, maybe NaN, maybe a non-finite slope).
#pragma once

#include <cmath>
#include <optional>
#include <span>
#include <unordered_map>

#include "compiler/ir.hpp"

namespace lossforge {

// The value of an element-wise operator at constant arguments, in double with
// the exact semantics; nullopt when the operator has no scalar evaluation.
std::optional<double> evaluate_scalar(Op op, std::span<const double> args);

struct ValueRange {
  double lo = -HUGE_VAL;          // every element of the value lies in [lo, hi]
  double hi = HUGE_VAL;
  bool may_be_nan = true;         // some element may be NaN
  bool slope_may_blow = true;     // some local derivative inside may be inf or NaN (sqrt at 0, pow)

  bool finite() const { return lo > -HUGE_VAL && hi < HUGE_VAL && !may_be_nan; }
  // Finite, and so are the tape gradients through it: x * 0 and x - x are then exactly 0
  // in value and in gradient.
  bool finite_with_slopes() const { return finite() && !slope_may_blow; }
};

inline constexpr double kInputBound = 1e15;
inline constexpr double kDivGain = 1e36;

// Memoised over one simplification: ranges of shared nodes are computed once.
class RangeAnalysis {
 public:
  const ValueRange& operator()(const Expr& e);

 private:
  ValueRange compute(const Node& n);
  std::unordered_map<const Node*, ValueRange> memo_;
  std::vector<Expr> keep_;  // keeps the memo's keys alive
};

}  // namespace lossforge
