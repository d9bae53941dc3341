// Convergence property verification on published losses (which must pass) and
// on broken ones (which must fail the right property, with a witness).
#include <gtest/gtest.h>

#include "compiler/frontend.hpp"
#include "search/convergence.hpp"

namespace lossforge {
namespace {

Loss formula(const std::string& text, const std::string& preset) {
  return load_formula(SourceFile::from_text("<test>", text), *find_preset(preset));
}

ConvergenceReport check(const std::string& text, const std::string& preset) {
  return verify_convergence(formula(text, preset), *find_preset(preset));
}

const char* kCseBCls =
    "Neg(Add(Mul(Q,Mul(Add(1,Serf(Sig(NY))),Log(Sig(X)))),Mul(Add(Sgdf(X),Neg(Q)),Mul(Add(Add(1,Neg(Q)),Neg(Add(1,"
    "Neg(Sig(X))))),Log(Add(1,Neg(Sig(X))))))))";

TEST(Convergence, PublishedAndBaselineLossesPass) {
  const std::vector<std::pair<std::string, std::string>> good = {
      {"Neg(Dot(Mul(Y,Add(1,Sin(Z))),Log(Softmax(X))))", "multi_cls"},
      {"Neg(Dot(Y,Log(Softmax(X))))", "multi_cls"},
      {"Add(1,Neg(Add(Div(I,U),Neg(Div(Add(E,Neg(Add(I,2))),E)))))", "reg"},
      {"Neg(Div(Add(Div(Neg(Add(Neg(E),Add(1,I))),Neg(Add(3,Add(2,U)))),Add(Div(E,E),Div(Neg(E),Neg(1)))),Neg(Add(Div("
       "Neg(Add(U,Div(I,1))),Neg(3)),Neg(E)))))",
       "reg"},
      {"1 - I / U + (E - U) / E", "reg"},
      {kCseBCls, "binary_cls"},
      {"-(PY * (1 - sigmoid(X))^2 * log(sigmoid(X)) + NY * sigmoid(X)^2 * log(1 - sigmoid(X)))", "binary_cls"},
  };
  for (const auto& [text, preset] : good) {
    const ConvergenceReport report = check(text, preset);
    EXPECT_TRUE(report.passed) << text << ": " << report.first_failure();
    EXPECT_EQ(report.first_failure(), "");
    EXPECT_GE(report.checks.size(), 3u);
  }
}

struct Broken {
  std::string text, preset, property;
};

TEST(Convergence, BrokenLossesFailTheRightPropertyWithAWitness) {
  const std::vector<Broken> broken = {
      {"X", "binary_cls", "falls as p_gt rises"},                          // rises for positives
      {"Neg(Mul(PY, Log(Sig(X))))", "binary_cls", "rises as a negative's score rises"},  // ignores negatives
      {"Div(1, X)", "binary_cls", "finite"},  // at X = 0 the gradient -1/(1e-20)^2 overflows float32
      {"Mul(Sqrt(X), Q)", "binary_cls", "finite"},                         // NaN below 0
      {"Serf(Div(U, I))", "reg", "finite"},  // 1e24 for disjoint boxes: finite in double, not in float32
      {"Dot(Y, Log(Softmax(X)))", "multi_cls", "falls as p_gt rises"},     // sign flipped
      {"Div(I, U)", "reg", "falls as IoU rises"},                          // rewards overlap with a higher loss
      {"Sin(Mul(3, Div(I, U)))", "reg", "falls as IoU rises"},
      {"Abs(Add(Div(I, U), -0.9))", "reg", "falls as IoU rises"},          // minimal at IoU 0.9, not 1
  };
  for (const Broken& b : broken) {
    const ConvergenceReport report = check(b.text, b.preset);
    ASSERT_FALSE(report.passed) << b.text;
    const std::string failure = report.first_failure();
    EXPECT_EQ(failure.substr(0, b.property.size()), b.property) << b.text << ": " << failure;
    EXPECT_GT(failure.size(), b.property.size() + 10) << "a witness input: " << failure;
  }
}

TEST(Convergence, StopAtFirstFailureChecksLess) {
  ConvergenceOptions options;
  options.stop_at_first_failure = true;
  const ConvergenceReport fast = verify_convergence(formula("X", "binary_cls"), *find_preset("binary_cls"), options);
  const ConvergenceReport full = check("X", "binary_cls");
  EXPECT_FALSE(fast.passed);
  EXPECT_LT(fast.checks.size(), full.checks.size());
  EXPECT_EQ(fast.first_failure(), full.first_failure());
}

TEST(Convergence, FileLossesWithAPresetSignatureFit) {
  const Module m = load_module(SourceFile::from_text("<t>", R"(
loss my_giou(pred p: box, g: box) {
  let i = inter(p, g)
  let u = area(p) + area(g) - i + 1e-7
  1 - i / u
}
loss two(pred x: real, y: real) = x * y
)"));
  ASSERT_NE(matching_preset(m.losses[0]), nullptr);
  EXPECT_EQ(matching_preset(m.losses[0])->name, "reg");
  EXPECT_EQ(matching_preset(m.losses[1]), nullptr);
  EXPECT_TRUE(verify_convergence(m.losses[0], *find_preset("reg")).passed);
  EXPECT_THROW(verify_convergence(m.losses[1], *find_preset("reg")), std::invalid_argument);
}

}  // namespace
}  // namespace lossforge
