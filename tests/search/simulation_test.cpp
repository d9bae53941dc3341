// Model optimization simulation: reference and published losses train the
// simulated predictions well; losses that point the wrong way do not.
#include <gtest/gtest.h>

#include <cmath>

#include "compiler/frontend.hpp"
#include "search/simulation.hpp"

namespace lossforge {
namespace {

SimulationResult simulate(const std::string& text, const std::string& preset) {
  const Preset& p = *find_preset(preset);
  return simulate_optimization(load_formula(SourceFile::from_text("<test>", text), p), p);
}

TEST(Simulation, ReferenceLossesReachAUsefulMetric) {
  const SimulationResult binary = simulate(reference_formula(*find_preset("binary_cls")), "binary_cls");
  const SimulationResult multi = simulate(reference_formula(*find_preset("multi_cls")), "multi_cls");
  const SimulationResult reg = simulate(reference_formula(*find_preset("reg")), "reg");
  for (const SimulationResult* r : {&binary, &multi, &reg}) {
    EXPECT_TRUE(r->passed) << r->detail;
    EXPECT_DOUBLE_EQ(r->metric, r->reference);
  }
  EXPECT_GT(binary.metric, 0.4);  // positives are 5% of the samples: chance AP is 0.05
  EXPECT_GT(multi.metric, 0.5);
  EXPECT_GT(reg.metric, 0.8);     // from a mean start IoU near 0.4
}

TEST(Simulation, PublishedLossesPass) {
  const std::vector<std::pair<std::string, std::string>> published = {
      {"Neg(Dot(Mul(Y,Add(1,Sin(Z))),Log(Softmax(X))))", "multi_cls"},
      {"Add(1,Neg(Add(Div(I,U),Neg(Div(Add(E,Neg(Add(I,2))),E)))))", "reg"},
      {"Neg(Add(Mul(Q,Mul(Add(1,Serf(Sig(NY))),Log(Sig(X)))),Mul(Add(Sgdf(X),Neg(Q)),Mul(Add(Add(1,Neg(Q)),Neg(Add(1,"
       "Neg(Sig(X))))),Log(Add(1,Neg(Sig(X))))))))",
       "binary_cls"},
  };
  for (const auto& [text, preset] : published) {
    const SimulationResult r = simulate(text, preset);
    EXPECT_TRUE(r.passed) << text << ": " << r.detail;
  }
}

TEST(Simulation, WrongWayLossesFail) {
  const std::vector<std::pair<std::string, std::string>> wrong = {
      {"Neg(X)", "binary_cls"},
      {"Dot(Y, Log(Softmax(X)))", "multi_cls"},
      {"Div(I, U)", "reg"},
  };
  for (const auto& [text, preset] : wrong) {
    const SimulationResult r = simulate(text, preset);
    EXPECT_FALSE(r.passed) << text << ": " << r.detail;
    EXPECT_FALSE(r.detail.empty());
  }
}

TEST(Simulation, NonFiniteGradientsAreReportedNotThrown) {
  const SimulationResult r = simulate("Mul(Sqrt(X), Q)", "binary_cls");
  EXPECT_FALSE(r.passed);
  EXPECT_TRUE(std::isnan(r.metric));
  EXPECT_NE(r.detail.find("non-finite"), std::string::npos) << r.detail;
}

}  // namespace
}  // namespace lossforge
