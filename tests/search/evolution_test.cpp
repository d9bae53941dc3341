// Genetic operators: every child type-checks, stays within the limits and
// differs from its parent, for every preset and every kind of variation.
#include <gtest/gtest.h>

#include <map>

#include "compiler/print.hpp"
#include "search/evolution.hpp"

namespace lossforge {
namespace {

TEST(Evolution, ChildrenAreTypeCorrectWithinLimitsAndNew) {
  for (const Preset& preset : all_presets()) {
    SCOPED_TRACE(preset.name);
    Rng rng(7);
    GenerateOptions generate;
    generate.max_depth = 4;
    const TreeLimits limits{7, 30};
    const Variator variator(preset, generate, limits);
    std::vector<Expr> parents = ramped_half_and_half(preset, rng, generate, 40);
    std::map<std::string, int> made;
    for (int round = 0; round < 300; ++round) {
      const Expr& a = parents[size_t(round) % parents.size()];
      const Expr& b = parents[size_t(round * 7 + 3) % parents.size()];
      Variation kind = Variation::Crossover;
      Expr child = round % 3 == 0 ? variator.crossover(a, b, rng) : variator.mutate(a, rng, kind);
      if (!child) continue;
      ++made[round % 3 == 0 ? "crossover" : variation_name(kind)];
      ASSERT_TRUE(child->type().is_real()) << to_deap(child, terminal_names(preset));
      const TreeShape shape = tree_shape(preset, child);
      EXPECT_LE(shape.depth, limits.max_depth);
      EXPECT_LE(shape.size, limits.max_size);
      EXPECT_FALSE(child == a);
      // Children are material for later rounds, so operators meet their own output.
      parents[size_t(round) % parents.size()] = child;
    }
    for (const char* kind : {"crossover", "insert", "delete", "replace", "perturb_constant", "hoist"})
      EXPECT_GT(made[kind], 0) << kind << " never produced a child";
  }
}

TEST(Evolution, MutationsOnMultiClsRowsKeepRowsWhereRowsBelong) {
  const Preset& preset = *find_preset("multi_cls");
  Rng rng(11);
  const Variator variator(preset, GenerateOptions{}, TreeLimits{});
  const Expr parent = make(Op::Neg, {make(Op::Dot, {terminal(preset, "Y"), make(Op::Log, {make(Op::Softmax, {terminal(preset, "X")})})})});
  for (Variation kind : {Variation::Insert, Variation::Delete, Variation::Replace, Variation::Hoist})
    for (int i = 0; i < 50; ++i)
      if (Expr child = variator.mutate(parent, kind, rng)) {
        EXPECT_TRUE(child->type().is_real()) << variation_name(kind);
      }
}

TEST(Evolution, PerturbConstantMovesWithinTheConstantSet) {
  const Preset& preset = *find_preset("reg");
  Rng rng(5);
  const Variator variator(preset, GenerateOptions{}, TreeLimits{});
  const Expr parent = make(Op::Sub, {constant(2), make(Op::Div, {terminal(preset, "I"), terminal(preset, "U")})});
  for (int i = 0; i < 20; ++i) {
    const Expr child = variator.mutate(parent, Variation::PerturbConstant, rng);
    ASSERT_TRUE(child);
    const double c = child->arg(0)->value();
    EXPECT_TRUE(c == 1 || c == 3) << c;
    EXPECT_TRUE(child->arg(1) == parent->arg(1));
  }
  // The reg terminals are leaves: no mutation reaches inside I = inter(P, G).
  EXPECT_EQ(tree_shape(preset, parent).size, 5);
}

}  // namespace
}  // namespace lossforge
