// Gradients of the reference interpreter.
//
// Every operator in the table (the loop is over all_ops(), so an operator added
// without interpreter support fails here) is differentiated at random points
// away from its kinks and compared with central finite differences in float64:
// on real inputs, broadcast between real and real[C] in both directions, row-wise,
// and on boxes (gradient to both boxes). The same cases check that float32 agrees
// with float64. Then the conventions at kinks (ties, zero widths, pow) and the
// activity analysis.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <functional>
#include <limits>

#include "compiler/semantics.hpp"
#include "interpreter_support.hpp"

namespace lossforge {
namespace {

using namespace lossforge::testing;

constexpr size_t kRows = 16;
constexpr size_t kWidth = 5;  // C of the real[C] inputs

// Draws one value; `partner` is the value of the other operand at the same
// element, or NaN when this operand is drawn first.
using Domain = std::function<double(Rng&, double partner)>;

Domain any(double lo, double hi) {
  return [=](Rng& rng, double) { return uniform(rng, lo, hi); };
}
// |value| in [lo, hi]: away from the kink at 0.
Domain magnitude(double lo, double hi) {
  return [=](Rng& rng, double) { return random_sign(rng) * uniform(rng, lo, hi); };
}
// At least 0.1 away from the partner: away from the ties of min and max.
Domain apart(double lo, double hi) {
  return [=](Rng& rng, double partner) {
    return std::isnan(partner) ? uniform(rng, lo, hi) : partner + random_sign(rng) * uniform(rng, 0.1, 1.5);
  };
}
// Mostly ordinary values, some above exp's cap of 88 (where the slope is 0).
Domain exp_domain() {
  return [](Rng& rng, double) { return uniform(rng, 0, 1) < 0.75 ? uniform(rng, -3, 3) : uniform(rng, 89, 100); };
}

struct GradCase {
  std::string label;
  Loss loss;
  std::function<Batch<double>(Rng&)> sample;
};

Array<double> draw(Rng& rng, size_t width, const Domain& d, const Array<double>* partner = nullptr) {
  Array<double> out(kRows, width);
  for (size_t r = 0; r < kRows; ++r)
    for (size_t c = 0; c < width; ++c) {
      double p = partner ? partner->row(r)[partner->width == 1 ? 0 : c] : std::nan("");
      out.row(r)[c] = d(rng, p);
    }
  return out;
}
Array<double> weights(Rng& rng) { return draw(rng, kWidth, any(-1, 1)); }

// ---- cases for each kind of operator -------------------------------------------

// `row_domain` (default: `d`) draws the values of the real[C] case.
std::vector<GradCase> unary_cases(Op op, Domain d, Domain row_domain = {}) {
  if (!row_domain) row_domain = d;
  std::vector<GradCase> cases;
  {
    LossBuilder b;
    Loss loss = b.build(call(op, {b.pred("x")}));
    cases.push_back({"real", loss, [=](Rng& rng) { return Batch<double>{draw(rng, 1, d)}; }});
  }
  {
    LossBuilder b;
    Expr v = b.pred("v", vec_type()), w = b.data("w", vec_type());
    Loss loss = b.build(call(Op::Dot, {w, call(op, {v})}));
    cases.push_back(
        {"row", loss, [=](Rng& rng) { return Batch<double>{draw(rng, kWidth, row_domain), weights(rng)}; }});
  }
  return cases;
}

std::vector<GradCase> binary_cases(Op op, Domain da, Domain db) {
  std::vector<GradCase> cases;
  {
    LossBuilder b;
    Expr x = b.pred("x"), y = b.pred("y");
    Loss loss = b.build(call(op, {x, y}));
    cases.push_back({"real, real", loss, [=](Rng& rng) {
                       Array<double> a = draw(rng, 1, da);
                       Array<double> bb = draw(rng, 1, db, &a);
                       return Batch<double>{a, bb};
                     }});
  }
  {
    LossBuilder b;
    Expr v = b.pred("v", vec_type()), s = b.pred("s"), w = b.data("w", vec_type());
    Loss loss = b.build(call(Op::Dot, {w, call(op, {v, s})}));
    cases.push_back({"row, real", loss, [=](Rng& rng) {
                       Array<double> s = draw(rng, 1, db);
                       Array<double> v = draw(rng, kWidth, da, &s);
                       return Batch<double>{v, s, weights(rng)};
                     }});
  }
  {
    LossBuilder b;
    Expr s = b.pred("s"), v = b.pred("v", vec_type()), w = b.data("w", vec_type());
    Loss loss = b.build(call(Op::Dot, {w, call(op, {s, v})}));
    cases.push_back({"real, row", loss, [=](Rng& rng) {
                       Array<double> s = draw(rng, 1, da);
                       Array<double> v = draw(rng, kWidth, db, &s);
                       return Batch<double>{s, v, weights(rng)};
                     }});
  }
  {
    LossBuilder b;
    Expr u = b.pred("u", vec_type()), v = b.pred("v", vec_type()), w = b.data("w", vec_type());
    Loss loss = b.build(call(Op::Dot, {w, call(op, {u, v})}));
    cases.push_back({"row, row", loss, [=](Rng& rng) {
                       Array<double> u = draw(rng, kWidth, da);
                       Array<double> v = draw(rng, kWidth, db, &u);
                       return Batch<double>{u, v, weights(rng)};
                     }});
  }
  return cases;
}

// a in [-3, 3], lo in [-1.5, -0.5], hi in [0.5, 1.5], a at least 0.05 from both ends.
std::vector<GradCase> clamp_cases() {
  auto bounds = [](Rng& rng, Array<double>& lo, Array<double>& hi) {
    lo = draw(rng, 1, any(-1.5, -0.5));
    hi = draw(rng, 1, any(0.5, 1.5));
  };
  auto value_between = [](Rng& rng, double lo, double hi) {
    double a;
    do a = uniform(rng, -3, 3);
    while (std::fabs(a - lo) < 0.05 || std::fabs(a - hi) < 0.05);
    return a;
  };
  std::vector<GradCase> cases;
  {
    LossBuilder b;
    Expr x = b.pred("x"), lo = b.pred("lo"), hi = b.pred("hi");
    Loss loss = b.build(call(Op::Clamp, {x, lo, hi}));
    cases.push_back({"real", loss, [=](Rng& rng) {
                       Array<double> lo, hi, x(kRows, 1);
                       bounds(rng, lo, hi);
                       for (size_t r = 0; r < kRows; ++r) x.data[r] = value_between(rng, lo.data[r], hi.data[r]);
                       return Batch<double>{x, lo, hi};
                     }});
  }
  {
    LossBuilder b;
    Expr v = b.pred("v", vec_type()), lo = b.pred("lo"), hi = b.pred("hi"), w = b.data("w", vec_type());
    Loss loss = b.build(call(Op::Dot, {w, call(Op::Clamp, {v, lo, hi})}));
    cases.push_back({"row, real bounds", loss, [=](Rng& rng) {
                       Array<double> lo, hi, v(kRows, kWidth);
                       bounds(rng, lo, hi);
                       for (size_t r = 0; r < kRows; ++r)
                         for (size_t c = 0; c < kWidth; ++c) v.row(r)[c] = value_between(rng, lo.data[r], hi.data[r]);
                       return Batch<double>{v, lo, hi, weights(rng)};
                     }});
  }
  return cases;
}

// where(c, a, b) with c at least 0.1 from 0: the condition gets no gradient,
// the picked branch all of it.
std::vector<GradCase> where_cases() {
  std::vector<GradCase> cases;
  {
    LossBuilder b;
    Expr c = b.pred("c"), x = b.pred("x"), y = b.pred("y");
    Loss loss = b.build(call(Op::Where, {c, x, y}));
    cases.push_back({"real", loss, [](Rng& rng) {
                       return Batch<double>{draw(rng, 1, magnitude(0.1, 3)), draw(rng, 1, any(-3, 3)),
                                            draw(rng, 1, any(-3, 3))};
                     }});
  }
  {
    LossBuilder b;
    Expr c = b.pred("c", vec_type()), v = b.pred("v", vec_type()), s = b.pred("s"), w = b.data("w", vec_type());
    Loss loss = b.build(call(Op::Dot, {w, call(Op::Where, {c, v, s})}));
    cases.push_back({"row condition, row and real branches", loss, [](Rng& rng) {
                       return Batch<double>{draw(rng, kWidth, magnitude(0.1, 3)), draw(rng, kWidth, any(-3, 3)),
                                            draw(rng, 1, any(-3, 3)), weights(rng)};
                     }});
  }
  return cases;
}

std::vector<GradCase> rowwise_cases(Op op) {
  std::vector<GradCase> cases;
  auto logits = [](Rng& rng) { return draw(rng, kWidth, any(-3, 3)); };
  LossBuilder b;
  Expr u = b.pred("u", vec_type()), v = b.pred("v", vec_type());
  switch (op) {
    case Op::Softmax:
    case Op::LogSoftmax: {
      LossBuilder wb;
      Expr x = wb.pred("x", vec_type()), w = wb.data("w", vec_type());
      Loss loss = wb.build(call(Op::Dot, {w, call(op, {x})}));
      cases.push_back({"weighted row", loss, [=](Rng& rng) { return Batch<double>{logits(rng), weights(rng)}; }});
      break;
    }
    case Op::Dot:
      cases.push_back({"two rows", b.build(call(Op::Dot, {u, v})),
                       [=](Rng& rng) { return Batch<double>{logits(rng), logits(rng)}; }});
      cases.push_back({"a row with itself", b.build(call(Op::Dot, {v, v})),
                       [=](Rng& rng) { return Batch<double>{logits(rng), logits(rng)}; }});
      break;
    default:
      cases.push_back({"row", b.build(call(op, {v})),
                       [=](Rng& rng) { return Batch<double>{logits(rng), logits(rng)}; }});
      break;
  }
  return cases;
}

// Pairs of boxes whose coordinates and overlap sides are at least 0.05 from the
// kinks of min, max and the clamp at 0; about half of them overlap.
std::array<double, 4> random_box(Rng& rng) {
  double x1 = uniform(rng, -1, 2), y1 = uniform(rng, -1, 2);
  return {x1, y1, x1 + uniform(rng, 0.3, 2.5), y1 + uniform(rng, 0.3, 2.5)};
}
bool away_from_kinks(const std::array<double, 4>& p, const std::array<double, 4>& g) {
  for (int axis : {0, 1}) {
    int lo = axis, hi = axis + 2;
    double overlap = std::min(p[hi], g[hi]) - std::max(p[lo], g[lo]);
    if (std::fabs(p[lo] - g[lo]) < 0.05 || std::fabs(p[hi] - g[hi]) < 0.05 || std::fabs(overlap) < 0.05) return false;
  }
  return true;
}
Batch<double> box_pairs(Rng& rng) {
  Array<double> p(kRows, 4), g(kRows, 4);
  for (size_t r = 0; r < kRows; ++r) {
    std::array<double, 4> a, b;
    do {
      a = random_box(rng);
      b = random_box(rng);
    } while (!away_from_kinks(a, b));
    std::copy(a.begin(), a.end(), p.row(r));
    std::copy(b.begin(), b.end(), g.row(r));
  }
  return {p, g};
}

std::vector<GradCase> box_cases(Op op) {
  std::vector<GradCase> cases;
  if (op == Op::Field) {
    for (int i = 0; i < 4; ++i) {
      LossBuilder b;
      Expr p = b.pred("p", box_type());
      cases.push_back({"p." + std::string(box_field_name(i)), b.build(field(p, i)),
                       [](Rng& rng) { return Batch<double>{box_pairs(rng)[0]}; }});
    }
    LossBuilder b;
    Expr p = b.pred("p", box_type());
    // Two fields of one box meet again in one adjoint: (x2 - x1) * y2.
    cases.push_back({"fields combined",
                     b.build(call(Op::Mul, {call(Op::Sub, {field(p, 2), field(p, 0)}), field(p, 3)})),
                     [](Rng& rng) { return Batch<double>{box_pairs(rng)[0]}; }});
    return cases;
  }
  if (op == Op::Area) {
    LossBuilder b;
    cases.push_back({"area", b.build(call(Op::Area, {b.pred("p", box_type())})),
                     [](Rng& rng) { return Batch<double>{box_pairs(rng)[0]}; }});
    return cases;
  }
  {
    LossBuilder b;
    Expr p = b.pred("p", box_type()), g = b.pred("g", box_type());
    cases.push_back({"both boxes pred", b.build(call(op, {p, g})), box_pairs});
  }
  {
    LossBuilder b;
    Expr p = b.pred("p", box_type()), g = b.data("g", box_type());
    cases.push_back({"only p pred", b.build(call(op, {p, g})), box_pairs});
  }
  {
    LossBuilder b;
    Expr p = b.data("p", box_type()), g = b.pred("g", box_type());
    cases.push_back({"only g pred", b.build(call(op, {p, g})), box_pairs});
  }
  return cases;
}

std::vector<GradCase> leaf_cases(Op op) {
  LossBuilder b;
  Expr x = b.pred("x");
  auto xs = [](Rng& rng) { return Batch<double>{draw(rng, 1, any(-3, 3))}; };
  switch (op) {
    case Op::Const: return {{"x * 2.5", b.build(call(Op::Mul, {x, num(2.5)})), xs}};
    case Op::Input: return {{"x", b.build(x), xs}};
    case Op::Param: {
      Expr k = b.param("k", 1.7);
      return {{"x * k", b.build(call(Op::Mul, {x, k})), xs}};
    }
    default: return {};
  }
}

// The cases for one operator; empty for an operator this test does not know,
// which fails the test.
std::vector<GradCase> cases_for(Op op) {
  switch (op) {
    case Op::Const:
    case Op::Input:
    case Op::Param: return leaf_cases(op);
    case Op::Add:
    case Op::Sub:
    case Op::Mul: return binary_cases(op, any(-3, 3), any(-3, 3));
    case Op::Div: return binary_cases(op, any(-3, 3), magnitude(0.3, 3));
    case Op::Pow: return binary_cases(op, any(0.2, 3), any(-2, 2));
    case Op::Min:
    case Op::Max:
    case Op::MinShare:
    case Op::MaxShare: return binary_cases(op, apart(-3, 3), apart(-3, 3));
    case Op::Where: return where_cases();
    case Op::Clamp: return clamp_cases();
    case Op::Neg:
    case Op::Sin:
    case Op::Cos:
    case Op::Tanh:
    case Op::Softplus:
    case Op::Sigmoid:
    case Op::Serf:
    case Op::Salf:
    case Op::Sgdf:
    case Op::Erf:
    case Op::Erfc: return unary_cases(op, any(-3, 3));
    case Op::Log:
    case Op::Sqrt: return unary_cases(op, any(0.2, 3));
    // Capped and uncapped values in one row would sum e^88 with small terms, whose
    // slopes then drown in the rounding of the differences: rows stay uncapped.
    case Op::Exp: return unary_cases(op, exp_domain(), any(-3, 3));
    case Op::Abs:
    case Op::Relu: return unary_cases(op, magnitude(0.1, 3));
    case Op::Softmax:
    case Op::LogSoftmax:
    case Op::Logsumexp:
    case Op::Dot:
    case Op::Sum:
    case Op::Mean: return rowwise_cases(op);
    case Op::Field:
    case Op::Area:
    case Op::Inter:
    case Op::Enclose:
    case Op::Iou: return box_cases(op);
  }
  return {};
}

std::string describe(const OpInfo& info, const GradCase& gc) { return std::string(info.name) + " (" + gc.label + ")"; }

TEST(InterpreterGradients, EveryOperatorMatchesFiniteDifferences) {
  for (const OpInfo& info : all_ops()) {
    std::vector<GradCase> cases = cases_for(info.op);
    EXPECT_FALSE(cases.empty()) << "no gradient test for operator '" << info.name << "'";
    for (const GradCase& gc : cases) {
      SCOPED_TRACE(describe(info, gc));
      Rng rng(std::hash<std::string>{}(describe(info, gc)));
      Batch<double> batch = gc.sample(rng);
      Evaluation<double> e = evaluate(gc.loss, batch);
      const std::vector<size_t> preds = gc.loss.pred_inputs();
      ASSERT_EQ(e.grads.size(), preds.size());
      for (size_t k = 0; k < preds.size(); ++k) {
        const Array<double>& grad = e.grads[k];
        const Array<double>& in = batch[preds[k]];
        EXPECT_EQ(grad.rows, in.rows);
        EXPECT_EQ(grad.width, in.width);
        for (double g : grad.data) EXPECT_TRUE(std::isfinite(g));
        Array<double> numeric = numeric_gradient(gc.loss, batch, preds[k]);
        EXPECT_TRUE(close_to(grad.data, numeric.data, 1e-5)) << "gradient of " << gc.loss.inputs[preds[k]].name;
      }
    }
  }
}

TEST(InterpreterGradients, Float32AgreesWithFloat64) {
  for (const OpInfo& info : all_ops()) {
    for (const GradCase& gc : cases_for(info.op)) {
      SCOPED_TRACE(describe(info, gc));
      Rng rng(std::hash<std::string>{}(describe(info, gc)) + 1);
      Batch<double> batch = gc.sample(rng);
      Evaluation<double> e64 = evaluate(gc.loss, batch);
      Evaluation<float> e32 = evaluate(gc.loss, to_float(batch));
      // The float inputs are the double inputs rounded, so allow a few float ulps
      // of the input as well as of the arithmetic.
      EXPECT_TRUE(close_to(e32.loss, e64.loss, 1e-5));
      ASSERT_EQ(e32.grads.size(), e64.grads.size());
      for (size_t k = 0; k < e64.grads.size(); ++k) EXPECT_TRUE(close_to(e32.grads[k].data, e64.grads[k].data, 1e-5));
    }
  }
}

// ---- kinks: the conventions of SPEC §3 (those of PyTorch) ----------------------

// The gradients of a real -> real loss over inputs (x, y[, z]) at one point.
std::vector<double> gradient_at(Op op, std::vector<double> point) {
  LossBuilder b;
  std::vector<Expr> args;
  for (size_t i = 0; i < point.size(); ++i) args.push_back(b.pred(std::string(1, char('x' + i))));
  Loss loss = b.build(make(op, args));
  Batch<double> batch;
  for (double v : point) batch.push_back(column({v}));
  std::vector<double> out;
  for (const Array<double>& g : evaluate(loss, batch).grads) out.push_back(g.data[0]);
  return out;
}

TEST(InterpreterGradients, TiesSplitTheGradientAsPyTorch) {
  EXPECT_EQ(gradient_at(Op::Min, {1, 1}), (std::vector<double>{0.5, 0.5}));
  EXPECT_EQ(gradient_at(Op::Max, {1, 1}), (std::vector<double>{0.5, 0.5}));
  EXPECT_EQ(gradient_at(Op::Min, {2, 1}), (std::vector<double>{0, 1}));
  EXPECT_EQ(gradient_at(Op::Max, {1, 2}), (std::vector<double>{0, 1}));
  // clamp(a, lo, hi): d/da = 1 on the closed interval, like torch.clamp.
  EXPECT_EQ(gradient_at(Op::Clamp, {-1, -1, 1}), (std::vector<double>{1, 0, 0}));
  EXPECT_EQ(gradient_at(Op::Clamp, {1, -1, 1}), (std::vector<double>{1, 0, 0}));
  EXPECT_EQ(gradient_at(Op::Clamp, {-2, -1, 1}), (std::vector<double>{0, 1, 0}));
  EXPECT_EQ(gradient_at(Op::Clamp, {2, -1, 1}), (std::vector<double>{0, 0, 1}));
  EXPECT_EQ(gradient_at(Op::Clamp, {0, 1, -1}), (std::vector<double>{0, 0, 1}));  // lo > hi: hi wins
}

TEST(InterpreterGradients, SlopesAtKinksFollowPyTorch) {
  EXPECT_EQ(gradient_at(Op::Relu, {0}), std::vector<double>{0});
  EXPECT_EQ(gradient_at(Op::Relu, {-0.5}), std::vector<double>{0});
  EXPECT_EQ(gradient_at(Op::Abs, {0}), std::vector<double>{0});
  EXPECT_EQ(gradient_at(Op::Abs, {-2}), std::vector<double>{-1});
  EXPECT_DOUBLE_EQ(gradient_at(Op::Exp, {88})[0], std::exp(88.0));
  EXPECT_EQ(gradient_at(Op::Exp, {88.5})[0], 0);
  EXPECT_DOUBLE_EQ(gradient_at(Op::Log, {0})[0], 1e20);
  EXPECT_EQ(gradient_at(Op::Sqrt, {0})[0], std::numeric_limits<double>::infinity());
  // div: da = 1/(b + eps), db = -a/(b + eps)^2, finite at b = 0.
  std::vector<double> div = gradient_at(Op::Div, {3, 0});
  EXPECT_DOUBLE_EQ(div[0], 1e20);
  EXPECT_DOUBLE_EQ(div[1], -3e40);
  // sigmoid's slope is s(1 - s) from the rounded s, as PyTorch: accurate in
  // the negative tail, 0 where 1 - s rounds to 0 (the slope of what is computed).
  EXPECT_NEAR(gradient_at(Op::Sigmoid, {-40})[0] / std::exp(-40.0), 1, 1e-12);
  EXPECT_EQ(gradient_at(Op::Sigmoid, {40})[0], 0);
  EXPECT_EQ(gradient_at(Op::Softplus, {1000})[0], 1);
}

TEST(InterpreterGradients, PowConventions) {
  // b = 0: no slope in a, even at a = 0 (where b * a^(b-1) would be 0 * inf).
  EXPECT_EQ(gradient_at(Op::Pow, {0, 0}), (std::vector<double>{0, 0}));
  // a = 0, b >= 0: the exponent's slope a^b ln a is taken as its limit 0.
  EXPECT_EQ(gradient_at(Op::Pow, {0, 2}), (std::vector<double>{0, 0}));
  // a = 0, b < 0: a^b ln a = inf * -inf.
  std::vector<double> pole = gradient_at(Op::Pow, {0, -1});
  EXPECT_EQ(pole[1], -std::numeric_limits<double>::infinity());
  // a < 0: the base's slope exists, the exponent's does not (NaN, as in PyTorch).
  std::vector<double> negative = gradient_at(Op::Pow, {-3, 2});
  EXPECT_DOUBLE_EQ(negative[0], -6);
  EXPECT_TRUE(std::isnan(negative[1]));
}

TEST(InterpreterGradients, TouchingBoxesStillPassGradient) {
  // p = [0, 1] x [0, 1] and g = [1, 2] x [0, 1] touch: the overlap's width is
  // exactly 0, which passes the clamp (like torch.clamp(min=0)), so
  // d inter / d p.x2 = height = 1 and d inter / d g.x1 = -1.
  LossBuilder b;
  Expr p = b.pred("p", box_type()), g = b.pred("g", box_type());
  Loss loss = b.build(call(Op::Inter, {p, g}));
  Evaluation<double> e = evaluate(loss, Batch<double>{rows_of({{0, 0, 1, 1}}), rows_of({{1, 0, 2, 1}})});
  EXPECT_EQ(e.loss[0], 0);
  EXPECT_EQ(e.grads[0].data, (std::vector<double>{0, 0, 1, 0}));
  EXPECT_EQ(e.grads[1].data, (std::vector<double>{-1, 0, 0, 0}));
  // Apart (width -1): no gradient at all.
  e = evaluate(loss, Batch<double>{rows_of({{0, 0, 1, 1}}), rows_of({{2, 0, 3, 1}})});
  EXPECT_EQ(e.grads[0].data, (std::vector<double>{0, 0, 0, 0}));
  EXPECT_EQ(e.grads[1].data, (std::vector<double>{0, 0, 0, 0}));
  // Equal coordinates: each tie splits the gradient, for the overlap and for
  // the enclosing box, so both boxes get half.
  for (Op op : {Op::Inter, Op::Enclose}) {
    Loss same = b.build(call(op, {p, g}));
    e = evaluate(same, Batch<double>{rows_of({{0, 0, 2, 3}}), rows_of({{0, 0, 2, 3}})});
    EXPECT_EQ(e.grads[0].data, (std::vector<double>{-1.5, -1, 1.5, 1})) << op_name(op);
    EXPECT_EQ(e.grads[1].data, (std::vector<double>{-1.5, -1, 1.5, 1})) << op_name(op);
  }
  // So the IoU loss is flat at a perfect match, up to the union's 1e-7: IoU is
  // then area / (area + 1e-7), whose slope is about 1e-7 / area.
  Loss iou_loss = b.build(call(Op::Neg, {call(Op::Iou, {p, g})}));
  e = evaluate(iou_loss, Batch<double>{rows_of({{1, 2, 4, 6}}), rows_of({{1, 2, 4, 6}})});
  for (double d : e.grads[0].data) EXPECT_NEAR(d, 0, 1e-8);
}

TEST(InterpreterGradients, SoftmaxGradientIsShiftInvariant) {
  LossBuilder b;
  Expr x = b.pred("x", vec_type()), w = b.data("w", vec_type());
  for (Op op : {Op::Softmax, Op::LogSoftmax}) {
    Loss loss = b.build(call(Op::Dot, {w, call(op, {x})}));
    Array<double> weights = rows_of({{0.5, -1, 2, 0.25}});
    Evaluation<double> base = evaluate(loss, Batch<double>{rows_of({{0.1, -0.7, 1.2, 0.4}}), weights});
    Evaluation<double> shifted = evaluate(loss, Batch<double>{rows_of({{1000.1, 999.3, 1001.2, 1000.4}}), weights});
    EXPECT_TRUE(close_to(shifted.grads[0].data, base.grads[0].data, 1e-9)) << op_name(op);
    Evaluation<float> shifted32 =
        evaluate(loss, to_float(Batch<double>{rows_of({{1000.1, 999.3, 1001.2, 1000.4}}), weights}));
    EXPECT_TRUE(close_to(shifted32.grads[0].data, base.grads[0].data, 1e-4)) << op_name(op) << " (f32)";
  }
}

TEST(InterpreterGradients, WhereSelectsAndSharesAreFlat) {
  const double nan = std::nan("");
  // Values: a NaN condition picks the first branch; shares split ties and pick NaN firsts.
  EXPECT_EQ(gradient_at(Op::Where, {2, 5, 7}), (std::vector<double>{0, 1, 0}));
  EXPECT_EQ(gradient_at(Op::Where, {0, 5, 7}), (std::vector<double>{0, 0, 1}));
  EXPECT_EQ(gradient_at(Op::Where, {nan, 5, 7}), (std::vector<double>{0, 1, 0}));
  EXPECT_EQ(gradient_at(Op::MinShare, {1, 1}), (std::vector<double>{0, 0}));
  EXPECT_EQ(sem::where(nan, 5.0, 7.0), 5);
  EXPECT_EQ(sem::min_share(1.0, 2.0), 1);
  EXPECT_EQ(sem::min_share(2.0, 2.0), 0.5);
  EXPECT_EQ(sem::min_share(nan, 2.0), 1);
  EXPECT_EQ(sem::min_share(2.0, nan), 0);
  EXPECT_EQ(sem::max_share(3.0, 2.0), 1);
  EXPECT_EQ(sem::max_share(-3.0, 2.0), 0);
  // A NaN adjoint reaches the picked branch only: where(0, x, y) * k with k NaN
  // hands y the NaN and x nothing (not NaN * 0).
  LossBuilder b;
  Expr x = b.pred("x"), y = b.pred("y"), k = b.data("k");
  Loss loss = b.build(call(Op::Mul, {call(Op::Where, {num(0), x, y}), k}));
  Evaluation<double> e = evaluate(loss, Batch<double>{column({1}), column({2}), column({nan})});
  EXPECT_EQ(e.grads[0].data[0], 0);
  EXPECT_TRUE(std::isnan(e.grads[1].data[0]));
}

// ---- activity analysis -----------------------------------------------------------

TEST(InterpreterGradients, ConstantExponentDoesNotPoisonTheBase) {
  // d/dx x^2 = 2x at x < 0, although the exponent's slope x^2 ln x is NaN there.
  LossBuilder b;
  Expr x = b.pred("x");
  Loss square = b.build(call(Op::Pow, {x, num(2)}));
  Evaluation<double> e = evaluate(square, Batch<double>{column({-3, -0.5, 2})});
  EXPECT_TRUE(close_to(e.grads[0].data, {-6, -1, 4}, 1e-15));
  Evaluation<float> e32 = evaluate(square, to_float(Batch<double>{column({-3, -0.5, 2})}));
  EXPECT_TRUE(close_to(e32.grads[0].data, {-6, -1, 4}, 1e-7));

  // The same with an exponent that is data (a non-pred input) and one built from a param.
  LossBuilder db;
  Expr base = db.pred("x"), exponent = db.data("k");
  Loss data_power = db.build(call(Op::Mul, {num(3), call(Op::Pow, {base, exponent})}));
  e = evaluate(data_power, Batch<double>{column({-2, -2}), column({3, 2})});
  EXPECT_TRUE(close_to(e.grads[0].data, {36, -12}, 1e-15));

  LossBuilder pb;
  Expr px = pb.pred("x");
  Expr gamma = pb.param("gamma", 2);
  Loss param_power = pb.build(call(Op::Pow, {px, call(Op::Add, {gamma, num(1)})}));
  e = evaluate(param_power, Batch<double>{column({-2})});
  EXPECT_TRUE(close_to(e.grads[0].data, {12}, 1e-15));
}

TEST(InterpreterGradients, OnlyPredInputsGetGradients) {
  LossBuilder b;
  Expr y = b.data("y"), x = b.pred("x"), unused = b.pred("unused", vec_type()), z = b.data("z");
  (void)unused;
  Loss loss = b.build(call(Op::Mul, {call(Op::Add, {x, y}), z}));
  Batch<double> batch{column({1, 2}), column({3, 4}), rows_of({{1, 2, 3}, {4, 5, 6}}), column({5, 6})};
  Evaluation<double> e = evaluate(loss, batch);
  ASSERT_EQ(e.grads.size(), 2u);  // x and unused, in input order
  EXPECT_TRUE(close_to(e.grads[0].data, {5, 6}, 0));
  EXPECT_EQ(e.grads[1].rows, 2u);  // shaped like the input, zero: it does not reach the loss
  EXPECT_EQ(e.grads[1].width, 3u);
  EXPECT_TRUE(close_to(e.grads[1].data, std::vector<double>(6, 0.0), 0));

  // Without pred inputs there are no gradients; without options.gradients neither.
  LossBuilder nb;
  Loss no_preds = nb.build(call(Op::Exp, {nb.data("y")}));
  EXPECT_TRUE(evaluate(no_preds, Batch<double>{column({1})}).grads.empty());
  EXPECT_TRUE(evaluate(loss, batch, false).grads.empty());
}

}  // namespace
}  // namespace lossforge
