// Random expressions over a preset: the search space of SPEC §6.
//
// Trees are built top-down by the two classic genetic-programming methods:
// `Full` puts operators on every level down to the depth, `Grow` may stop at a
// leaf anywhere. Generation is type-directed: a `real[C]` slot gets a row-valued
// subtree (softmax, or element-wise over a row input), a `real` slot may reduce a
// row with dot, so every tree it returns type-checks. Used by the search for its
// initial population and mutations, and by the tests for random programs.
#pragma once

#include <random>
#include <vector>

#include "compiler/ir.hpp"
#include "compiler/presets.hpp"

namespace lossforge {

struct GenerateOptions {
  int max_depth = 5;                       // of the tree, leaves count as depth 1
  bool extra_ops = false;                  // beyond the CSE-Autoloss set: pow, min, max, clamp, erf, ...
  bool all_terminals = false;              // every preset name (P, G, box ops) rather than the search's
  std::vector<double> constants{1, 2, 3};  // the constant leaves
  double random_constant_rate = 0;         // chance that a constant leaf is a random double instead
  double leaf_rate = 0.3;                  // Grow: chance of stopping at a leaf above the depth limit
};

enum class GrowMethod { Grow, Full };

using Rng = std::mt19937_64;

// A random `real`-valued expression.
Expr random_expr(const Preset& preset, Rng& rng, const GenerateOptions& options, GrowMethod method);

// A random expression of type `want` (real, or the preset's real[C] row type):
// what mutations graft into a tree at a node of that type.
Expr random_subtree(const Preset& preset, Rng& rng, const GenerateOptions& options, GrowMethod method, const Type& want);

// Koza's ramped half-and-half: depths 2..max_depth in turn, Grow and Full alternating.
std::vector<Expr> ramped_half_and_half(const Preset& preset, Rng& rng, const GenerateOptions& options, size_t count);

}  // namespace lossforge
