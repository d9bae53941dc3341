// Print -> parse gives back the same node, for random programs of every preset.
#include <gtest/gtest.h>

#include <cstdint>
#include <set>

#include "compiler/frontend.hpp"
#include "compiler/print.hpp"
#include "search/generate.hpp"

namespace lossforge {
namespace {

constexpr int kTreesPerPreset = 10'000;

class RoundTrip : public ::testing::TestWithParam<std::string> {};

Loss as_loss(const Preset& preset, const Expr& body) {
  Loss loss;
  loss.name = "candidate";
  loss.inputs = preset.inputs;
  for (const NamedExpr& t : preset.terminals)
    if (t.expr->op() != Op::Input) loss.lets.push_back(t);
  loss.body = body;
  return loss;
}

TEST_P(RoundTrip, InfixDeapAndLossTextParseBackToTheSameNode) {
  const Preset& preset = *find_preset(GetParam());
  NameMap names = terminal_names(preset);
  GenerateOptions options;
  options.max_depth = 7;
  options.extra_ops = true;       // every operator, not only the paper's
  options.all_terminals = true;   // P, G and box geometry too, for reg
  options.random_constant_rate = 0.3;
  Rng rng(20261129 + GetParam().size());
  std::set<uint64_t> distinct;  // hashes: nodes of dropped trees are freed and their addresses reused
  for (int i = 0; i < kTreesPerPreset; ++i) {
    Expr e = random_expr(preset, rng, options, i % 2 ? GrowMethod::Full : GrowMethod::Grow);
    distinct.insert(e->hash());
    std::string infix = to_infix(e, names);
    ASSERT_EQ(load_formula(SourceFile::from_text("<infix>", infix), preset).body, e) << infix;
    std::string deap = to_deap(e, names);
    ASSERT_EQ(load_formula(SourceFile::from_text("<deap>", deap), preset).body, e) << deap;
    std::string text = to_text(as_loss(preset, e));
    Module m = load_module(SourceFile::from_text("<text>", text));
    ASSERT_EQ(m.losses.at(0).body, e) << text;
    // Printing is canonical: the reparsed loss prints the same text.
    ASSERT_EQ(to_text(m.losses[0]), text);
  }
  EXPECT_GT(distinct.size(), kTreesPerPreset / 2u);  // the generator explores, it does not repeat
}

INSTANTIATE_TEST_SUITE_P(AllPresets, RoundTrip, ::testing::Values("multi_cls", "binary_cls", "reg"));

TEST(RoundTrip, PaperOperatorsOnlyByDefault) {
  const Preset& preset = *find_preset("binary_cls");
  Rng rng(7);
  for (const Expr& e : ramped_half_and_half(preset, rng, {}, 500))
    for (const Node* n : topological_order(e)) {
      EXPECT_TRUE(n->is_leaf() || n->info().paper_set) << op_name(n->op());
      if (n->is_const()) {
        EXPECT_TRUE(n->value() == 1 || n->value() == 2 || n->value() == 3);
      }
    }
}

}  // namespace
}  // namespace lossforge
