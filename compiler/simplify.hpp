// The simplifier: rewrites a loss into a smaller, canonical, numerically
// stabler expression that computes the same values and gradients.
//
// Candidate losses from the search are full of redundancy (Div(E, E), Neg(Neg(x)),
// 1 + 2, log(softmax(x))); simplifying them makes the kernels smaller and, as a
// canonical form, lets the search recognise duplicates (compiler/canonical.hpp).
//
// Per node, bottom-up, to a fixpoint:
//   1. constant folding through the exact double semantics (finite results only);
//   2. sums (+, -, unary -) and products (*) as multisets: flattened, constants
//      merged, equal terms counted (x + x -> x * 2), x - x and x * 0 dropped where
//      x is provably finite with finite slopes, then rebuilt as a left-deep chain
//      in a fixed total order of nodes (x + 0, x * 1 and -(-x) fall out of this);
//   3. commutative operators (min, max, dot, inter, enclose, iou): arguments sorted;
//   4. the rules of compiler/rewrite_rules.cpp, a table of (name, pattern,
//      replacement, side condition).
// Common subexpressions are shared for free by hash-consing.
//
// Differences from the unsimplified formula: rounding (reassociation, folded
// constants), the sign of a zero, and, by design, rows where a protection is
// active in the original (a log argument or divisor within ~1e-12 of 0, an exp
// argument near the 88 clamp, or cancellation among terms of magnitude ~1e12
// and more): the stable rewrites compute the exact value there, not the
// protected one. Every rule's exactness is stated in the rule table.
//
// Termination: every pass is bounded (max_iterations passes, local rule
// applications per node, max_nodes), so simplify returns on any input; when a
// bound stops it early, the result is still equivalent, just not a fixpoint.
#pragma once

#include <cstddef>
#include <unordered_set>

#include "compiler/loss.hpp"

namespace lossforge {

struct SimplifyOptions {
  int max_iterations = 16;           // bottom-up passes
  int max_rule_steps_per_node = 16;  // rule applications at one node within a pass
  size_t max_nodes = 1'000'000;      // stop growing beyond this many DAG nodes
  // Nodes to treat as atoms: not looked into, not rewritten (the names U, I, E a
  // preset gives its formulas, so that the result still prints with them).
  std::unordered_set<const Node*> opaque;
};

struct SimplifyReport {
  Expr result;
  int iterations = 0;           // passes run
  bool fixpoint = false;        // the last pass changed nothing
  size_t rule_applications = 0; // table rules fired, all passes
};

Expr simplify(const Expr& e, const SimplifyOptions& options = {});
SimplifyReport simplify_with_report(const Expr& e, const SimplifyOptions& options = {});
// Simplifies the body (and the lets, so their names still label shared parts).
// A formula read with a preset keeps the preset's derived names (U, I, E) as atoms.
Loss simplify(const Loss& loss, const SimplifyOptions& options = {});

// The total order the simplifier sorts commutative arguments by: deterministic
// across runs and machines (depth, structural hash, then structure), constants last.
bool canonical_less(const Node* a, const Node* b);

}  // namespace lossforge
