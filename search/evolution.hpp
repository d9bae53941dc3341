// Genetic operators on candidate trees (SPEC §6): subtree crossover and the
// mutations insert, delete, replace a node, perturb a constant and hoist.
//
// A candidate is a `real` expression over a preset's search terminals, treated
// as a tree whose leaves are constants and terminals (the `reg` terminals I, U,
// E are leaves even though the IR spells them over the boxes P and G). Every
// operator is type-correct: it only puts a `real[C]` subtree where a row is
// expected and a `real` one where a value is (multi_cls rows), so its results
// always type-check; results that break the depth or size limit are discarded
// and the operator tried again, up to a bound, before it gives back {}.
#pragma once

#include <string>
#include <vector>

#include "compiler/ir.hpp"
#include "compiler/presets.hpp"
#include "search/generate.hpp"

namespace lossforge {

enum class Variation { Crossover, Insert, Delete, Replace, PerturbConstant, Hoist };
std::string variation_name(Variation v);  // "crossover", "insert", ...

struct TreeLimits {
  int max_depth = 8;   // leaves count as depth 1; terminals are leaves
  int max_size = 40;   // nodes of the tree, terminals counting as one
};

struct TreeShape {
  int depth = 0, size = 0;
};
// Depth and size with the preset's terminals as leaves.
TreeShape tree_shape(const Preset& preset, const Expr& tree);

class Variator {
 public:
  Variator(const Preset& preset, const GenerateOptions& generate, const TreeLimits& limits);

  // A child of two parents: a subtree of `a` replaced by a same-typed subtree of `b`.
  Expr crossover(const Expr& a, const Expr& b, Rng& rng) const;
  // One mutation of `parent`, or {} when none fitting the limits was found.
  Expr mutate(const Expr& parent, Variation kind, Rng& rng) const;
  // A mutation of a random kind; `kind` says which one was used.
  Expr mutate(const Expr& parent, Rng& rng, Variation& kind) const;

  bool within_limits(const Expr& tree) const;

 private:
  struct Site;  // a node of the tree and its path from the root
  std::vector<Site> sites(const Expr& tree) const;
  Expr replace_at(const Expr& tree, const std::vector<int>& path, const Expr& with) const;
  Expr once(const Expr& parent, Variation kind, Rng& rng) const;

  const Preset& preset_;
  GenerateOptions generate_;
  TreeLimits limits_;
  std::vector<Expr> terminals_;  // the search terminals
};

}  // namespace lossforge
