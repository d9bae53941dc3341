// Operator values in the reference interpreter, checked against independent
// std:: formulas and hand-computed numbers (SPEC §3), in float64 and float32,
// including the protected and stable cases.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <random>

#include "compiler/semantics.hpp"
#include "interpreter_support.hpp"

namespace lossforge {
namespace {

using namespace lossforge::testing;

constexpr double kF32 = 2e-6;   // a few float ulps, relative to max(1, |expected|)
constexpr double kF64 = 1e-13;

// The loss x -> op(x) evaluated at `points`, one point per row.
template <class T>
std::vector<T> unary_values(Op op, const std::vector<double>& points) {
  LossBuilder b;
  Loss loss = b.build(call(op, {b.pred("x")}));
  Batch<double> batch{column(points)};
  if constexpr (std::is_same_v<T, float>)
    return evaluate(loss, to_float(batch), false).loss;
  else
    return evaluate(loss, batch, false).loss;
}

template <class T>
std::vector<T> values(const Loss& loss, const Batch<double>& batch) {
  if constexpr (std::is_same_v<T, float>)
    return evaluate(loss, to_float(batch), false).loss;
  else
    return evaluate(loss, batch, false).loss;
}

struct UnaryCase {
  Op op;
  std::vector<double> points;
  double (*reference)(double);
};

const std::vector<UnaryCase>& unary_cases() {
  static const std::vector<UnaryCase> cases = {
      {Op::Neg, {-2.5, 0, 3}, [](double x) { return -x; }},
      {Op::Log, {1e-3, 0.5, 1, 7}, [](double x) { return std::log(x + 1e-20); }},
      {Op::Exp, {-5, 0, 1.5, 10}, [](double x) { return std::exp(x); }},
      {Op::Sqrt, {0, 0.25, 2, 9}, [](double x) { return std::sqrt(x); }},
      {Op::Abs, {-2, 0, 3.5}, [](double x) { return std::fabs(x); }},
      {Op::Sin, {-2, 0, 0.5, 3}, [](double x) { return std::sin(x); }},
      {Op::Cos, {-2, 0, 0.5, 3}, [](double x) { return std::cos(x); }},
      {Op::Tanh, {-2, 0, 0.5, 3}, [](double x) { return std::tanh(x); }},
      {Op::Relu, {-2, 0, 0.5, 3}, [](double x) { return x > 0 ? x : 0; }},
      {Op::Softplus, {-5, -0.5, 0, 0.5, 5}, [](double x) { return std::log(1 + std::exp(x)); }},
      {Op::Sigmoid, {-5, -0.5, 0, 0.5, 5}, [](double x) { return 1 / (1 + std::exp(-x)); }},
      {Op::Serf, {-4, -1, 0, 0.3, 2.5},
       [](double x) { return (std::erf(std::sqrt(std::numbers::pi) / 2 * x / 2) + 1) / 2; }},
      {Op::Salf, {-4, -1, 0, 0.3, 2.5}, [](double x) { return ((x / 2) / std::sqrt(1 + (x / 2) * (x / 2)) + 1) / 2; }},
      {Op::Sgdf, {-4, -1, 0, 0.3, 2.5},
       [](double x) {
         using std::numbers::pi;
         return ((2 / pi) * 2 * std::atan(std::tanh(pi * x / 8)) + 1) / 2;
       }},
      {Op::Erf, {-2, -0.3, 0, 0.7, 2}, [](double x) { return std::erf(x); }},
      {Op::Erfc, {-2, -0.3, 0, 0.7, 2}, [](double x) { return std::erfc(x); }},
  };
  return cases;
}

TEST(InterpreterValues, UnaryOperatorsMatchStdFormulas) {
  for (const UnaryCase& uc : unary_cases()) {
    std::vector<double> expected;
    for (double x : uc.points) expected.push_back(uc.reference(x));
    EXPECT_TRUE(close_to(unary_values<double>(uc.op, uc.points), expected, kF64)) << op_name(uc.op);
    EXPECT_TRUE(close_to(unary_values<float>(uc.op, uc.points), expected, kF32)) << op_name(uc.op) << " (f32)";
  }
}

TEST(InterpreterValues, HandComputedPoints) {
  EXPECT_NEAR(unary_values<double>(Op::Tanh, {1})[0], 0.7615941559557649, 1e-15);
  EXPECT_NEAR(unary_values<double>(Op::Erf, {1})[0], 0.8427007929497149, 1e-15);
  EXPECT_NEAR(unary_values<double>(Op::Softplus, {0})[0], 0.6931471805599453, 1e-15);
  EXPECT_NEAR(unary_values<double>(Op::Salf, {2})[0], 0.8535533905932737, 1e-15);  // (1/√2 + 1)/2
  EXPECT_NEAR(unary_values<double>(Op::Sigmoid, {std::log(3.0)})[0], 0.75, 1e-15);
}

TEST(InterpreterValues, ProtectedLogDivAndExp) {
  for (bool f32 : {false, true}) {
    SCOPED_TRACE(f32 ? "f32" : "f64");
    const double tol = f32 ? kF32 : kF64;
    auto unary = [&](Op op, double x) {
      return f32 ? double(unary_values<float>(op, {x})[0]) : unary_values<double>(op, {x})[0];
    };
    // ln(0 + 1e-20) = -20 ln 10.
    EXPECT_NEAR(unary(Op::Log, 0), -46.051701859880914, 46 * tol);
    // exp(min(a, 88)): 100 and 1000 give e^88, finite even in float.
    EXPECT_NEAR(unary(Op::Exp, 100) / 1.6516362549940018e38, 1, tol);
    EXPECT_NEAR(unary(Op::Exp, 1000) / 1.6516362549940018e38, 1, tol);
    EXPECT_NEAR(unary(Op::Exp, 88) / 1.6516362549940018e38, 1, tol);

    LossBuilder b;
    Expr x = b.pred("x"), y = b.data("y");
    Loss div = b.build(call(Op::Div, {x, y}));
    Batch<double> batch{column({3, 0, -1, 1e-30}), column({0, 0, 0.5, 0})};
    std::vector<double> got;
    if (f32)
      for (float v : values<float>(div, batch)) got.push_back(v);
    else
      got = values<double>(div, batch);
    EXPECT_TRUE(close_to(got, {3e20, 0, -2, 1e-10}, tol));
  }
}

TEST(InterpreterValues, SoftplusAndSigmoidAreStableInTheTails) {
  const double e100 = std::exp(-100.0);  // 3.72e-44: a float denormal
  EXPECT_NEAR(unary_values<double>(Op::Softplus, {100})[0], 100, 1e-13);
  EXPECT_NEAR(unary_values<double>(Op::Softplus, {-100})[0] / e100, 1, 1e-12);
  EXPECT_NEAR(unary_values<double>(Op::Sigmoid, {100})[0], 1, 1e-15);
  EXPECT_NEAR(unary_values<double>(Op::Sigmoid, {-100})[0] / e100, 1, 1e-12);
  EXPECT_EQ(unary_values<double>(Op::Sigmoid, {-1000})[0], 0);
  EXPECT_EQ(unary_values<double>(Op::Softplus, {1000})[0], 1000);

  std::vector<float> sp = unary_values<float>(Op::Softplus, {100, -100, 1000, -1000});
  EXPECT_FLOAT_EQ(sp[0], 100);
  EXPECT_GE(sp[1], 0);
  EXPECT_LT(sp[1], 1e-40f);
  EXPECT_FLOAT_EQ(sp[2], 1000);  // the naive ln(1 + e^a) overflows to inf
  EXPECT_EQ(sp[3], 0);
  std::vector<float> sg = unary_values<float>(Op::Sigmoid, {100, -100, 1000, -1000});
  EXPECT_EQ(sg[0], 1);
  EXPECT_GE(sg[1], 0);
  EXPECT_LT(sg[1], 1e-40f);
  EXPECT_EQ(sg[2], 1);
  EXPECT_EQ(sg[3], 0);  // not NaN: e^1000 is never formed
}

TEST(InterpreterValues, NanPropagates) {
  // Kinked ops must not turn a NaN into a number: the search rejects candidates by their NaNs.
  for (Op op : {Op::Relu, Op::Abs, Op::Exp, Op::Softplus, Op::Sigmoid, Op::Log})
    EXPECT_TRUE(std::isnan(unary_values<double>(op, {std::nan("")})[0])) << op_name(op);
}

TEST(InterpreterValues, SaturatingCurvesStayFiniteForHugeArguments) {
  // salf uses hypot: the naive (a/2)^2 overflows float at 1e30 and gives 0.5.
  std::vector<float> salf = unary_values<float>(Op::Salf, {1e30f, -1e30f});
  EXPECT_FLOAT_EQ(salf[0], 1);
  EXPECT_FLOAT_EQ(salf[1], 0);
  std::vector<float> sgdf = unary_values<float>(Op::Sgdf, {1e30f, -1e30f});
  EXPECT_FLOAT_EQ(sgdf[0], 1);
  EXPECT_NEAR(sgdf[1], 0, 1e-7);
  std::vector<float> serf = unary_values<float>(Op::Serf, {1e30f, -1e30f});
  EXPECT_FLOAT_EQ(serf[0], 1);
  EXPECT_FLOAT_EQ(serf[1], 0);
}

TEST(InterpreterValues, SCurvesHaveValueOneHalfAndSlopeOneQuarterAtZero) {
  for (Op op : {Op::Sigmoid, Op::Serf, Op::Salf, Op::Sgdf}) {
    LossBuilder b;
    Loss loss = b.build(call(op, {b.pred("x")}));
    Evaluation<double> e64 = evaluate(loss, Batch<double>{column({0})});
    EXPECT_DOUBLE_EQ(e64.loss[0], 0.5) << op_name(op);
    EXPECT_DOUBLE_EQ(e64.grads[0].data[0], 0.25) << op_name(op);
    Evaluation<float> e32 = evaluate(loss, to_float(Batch<double>{column({0})}));
    EXPECT_FLOAT_EQ(e32.loss[0], 0.5f) << op_name(op);
    EXPECT_FLOAT_EQ(e32.grads[0].data[0], 0.25f) << op_name(op);
  }
}

struct BinaryPoint {
  double a, b, expected;
};

TEST(InterpreterValues, BinaryOperators) {
  const double nan = std::nan("");
  const std::vector<std::pair<Op, std::vector<BinaryPoint>>> cases = {
      {Op::Add, {{2, -3.5, -1.5}, {0.25, 0.5, 0.75}}},
      {Op::Sub, {{2, -3.5, 5.5}, {0.25, 0.5, -0.25}}},
      {Op::Mul, {{2, -3.5, -7}, {0.25, 0.5, 0.125}}},
      {Op::Div, {{3, 4, 0.75}, {-1, 0.5, -2}, {3, 0, 3e20}, {0, 0, 0}}},
      {Op::Pow, {{2, 3, 8}, {4, 0.5, 2}, {-2, 2, 4}, {-2, 3, -8}, {0, 0, 1}, {2, -1, 0.5}, {-8, 1.0 / 3, nan}}},
      {Op::Min, {{1, 2, 1}, {2, 1, 1}, {-0.5, -0.5, -0.5}, {nan, 1, nan}, {1, nan, nan}}},
      {Op::Max, {{1, 2, 2}, {2, 1, 2}, {-0.5, -0.5, -0.5}, {nan, 1, nan}, {1, nan, nan}}},
  };
  for (const auto& [op, points] : cases) {
    LossBuilder b;
    Expr x = b.pred("x"), y = b.pred("y");
    Loss loss = b.build(call(op, {x, y}));
    std::vector<double> as, bs, expected;
    for (const BinaryPoint& p : points) {
      as.push_back(p.a);
      bs.push_back(p.b);
      expected.push_back(p.expected);
    }
    Batch<double> batch{column(as), column(bs)};
    EXPECT_TRUE(close_to(values<double>(loss, batch), expected, kF64)) << op_name(op);
    EXPECT_TRUE(close_to(values<float>(loss, batch), expected, kF32)) << op_name(op) << " (f32)";
  }
}

// sem::pow computes exponents 2, 1 and 0 as products (a GPU's powf costs
// about a hundred instructions). They are std::pow's results, signed zeros,
// infinities, NaN and subnormals included, except that a * a is the correctly
// rounded square, which glibc's pow and powf miss by an ulp at rare bases (two
// of these 2000): there the check allows one ulp.
template <class T>
void expect_power_shortcuts_are_std_pow() {
  using limits = std::numeric_limits<T>;
  std::vector<T> bases = {T(0), -T(0), T(1), -T(1), T(0.5), T(-3.25), T(7), limits::infinity(), -limits::infinity(),
                          limits::quiet_NaN(), limits::denorm_min(), -limits::denorm_min(), limits::min(),
                          limits::max(), -limits::max(), std::sqrt(limits::max()) * T(2)};
  std::mt19937 rng(12);
  std::uniform_real_distribution<double> exponent(-40, 40);
  for (int i = 0; i < 2000; ++i)
    bases.push_back(T(std::ldexp(exponent(rng) / 40, int(exponent(rng)))) * (i % 2 ? T(1) : T(-1)));
  auto same_bits = [](T a, T b) {
    if (std::memcmp(&a, &b, sizeof(T)) == 0) return true;
    return std::isfinite(a) && std::nextafter(a, b) == b;
  };
  for (T a : bases)
    for (T b : {T(2), T(1), T(0)}) {
      EXPECT_TRUE(same_bits(sem::pow(a, b), T(std::pow(a, b)))) << a << " ^ " << b << ": " << sem::pow(a, b);
      // The base's slope b * a^(b-1): 2a for b = 2, 1 for b = 1, 0 for b = 0.
      const T slope = b == T(0) ? T(0) : b * T(std::pow(a, b - T(1)));
      EXPECT_TRUE(same_bits(sem::pow_da(a, b), slope)) << "d/da " << a << " ^ " << b;
    }
}

TEST(InterpreterValues, PowersTwoOneAndZeroAreStdPow) {
  expect_power_shortcuts_are_std_pow<float>();
  expect_power_shortcuts_are_std_pow<double>();
}

TEST(InterpreterValues, Clamp) {
  LossBuilder b;
  Expr x = b.pred("x"), lo = b.data("lo"), hi = b.data("hi");
  Loss loss = b.build(call(Op::Clamp, {x, lo, hi}));
  // below, inside, above, on both ends, and lo > hi (min(max(a, lo), hi) gives hi).
  Batch<double> batch{column({-2, 0.3, 5, -1, 1, 0}), column({-1, -1, -1, -1, -1, 1}), column({1, 1, 1, 1, 1, -1})};
  EXPECT_TRUE(close_to(values<double>(loss, batch), {-1, 0.3, 1, -1, 1, -1}, kF64));
  EXPECT_TRUE(close_to(values<float>(loss, batch), {-1, 0.3, 1, -1, 1, -1}, kF32));
}

TEST(InterpreterValues, BroadcastRealAgainstRow) {
  LossBuilder b;
  Expr v = b.pred("v", vec_type()), s = b.pred("s"), w = b.data("w", vec_type());
  // dot(w, v - s) and dot(w, s / v): the real operand is repeated along the row.
  Loss sub = b.build(call(Op::Dot, {w, call(Op::Sub, {v, s})}));
  Loss div = b.build(call(Op::Dot, {w, call(Op::Div, {s, v})}));
  Batch<double> batch{rows_of({{1, 2, 4}, {-1, 0.5, 2}}), column({3, -2}), rows_of({{1, 10, 100}, {1, 1, 1}})};
  EXPECT_TRUE(close_to(values<double>(sub, batch), {-2 - 10 + 100, 1 + 2.5 + 4}, kF64));
  EXPECT_TRUE(close_to(values<double>(div, batch), {3 + 15 + 75, 2 - 4 - 1}, kF64));
}

TEST(InterpreterValues, RowwiseOperators) {
  // Row r of `pick` selects component r of the softmax row, so one loss shows all of it.
  LossBuilder b;
  Expr x = b.pred("x", vec_type()), pick = b.data("pick", vec_type());
  Loss softmax = b.build(call(Op::Dot, {pick, call(Op::Softmax, {x})}));
  Loss log_softmax = b.build(call(Op::Dot, {pick, call(Op::LogSoftmax, {x})}));
  Loss logsumexp = b.build(call(Op::Logsumexp, {x}));
  Loss dot = b.build(call(Op::Dot, {x, pick}));
  Loss sum = b.build(call(Op::Sum, {x}));
  Loss mean = b.build(call(Op::Mean, {x}));

  auto batch_for = [](std::vector<double> logits) {
    return Batch<double>{rows_of({logits, logits, logits}), rows_of({{1, 0, 0}, {0, 1, 0}, {0, 0, 1}})};
  };
  const double z = 1 + std::exp(1.0) + std::exp(2.0);
  const std::vector<double> expected_softmax = {1 / z, std::exp(1.0) / z, std::exp(2.0) / z};
  const std::vector<double> expected_log_softmax = {-std::log(z), 1 - std::log(z), 2 - std::log(z)};
  for (double shift : {0.0, 1000.0, -1000.0}) {
    SCOPED_TRACE("logits shifted by " + std::to_string(shift));
    Batch<double> batch = batch_for({shift, shift + 1, shift + 2});
    EXPECT_TRUE(close_to(values<double>(softmax, batch), expected_softmax, 1e-12));
    EXPECT_TRUE(close_to(values<float>(softmax, batch), expected_softmax, kF32));
    EXPECT_TRUE(close_to(values<double>(log_softmax, batch), expected_log_softmax, 1e-12));
    EXPECT_TRUE(close_to(values<float>(log_softmax, batch), expected_log_softmax, kF32));
    EXPECT_NEAR(values<double>(logsumexp, batch)[0], shift + std::log(z), 1e-12 * std::max(1.0, std::fabs(shift)));
  }
  // A row whose maximum is infinite: logsumexp is that maximum (inf - inf would be NaN).
  const double inf = std::numeric_limits<double>::infinity();
  Batch<double> infinite{rows_of({{-inf, -inf}, {inf, 0}}), rows_of({{0, 0}, {0, 0}})};
  EXPECT_TRUE(close_to(values<double>(logsumexp, infinite), {-inf, inf}, 0));
  EXPECT_TRUE(close_to(values<float>(logsumexp, infinite), {-inf, inf}, 0));

  Batch<double> big{rows_of({{1000, 1000}}), rows_of({{0, 0}})};
  EXPECT_NEAR(values<double>(logsumexp, big)[0], 1000 + std::numbers::ln2, 1e-12);
  EXPECT_NEAR(values<float>(logsumexp, big)[0], 1000.6931f, 1e-3);

  Batch<double> rows{rows_of({{1, -2, 3.5}, {0.5, 0.25, -4}}), rows_of({{2, 1, -1}, {4, 0, 1}})};
  EXPECT_TRUE(close_to(values<double>(dot, rows), {2 - 2 - 3.5, 2 - 4}, kF64));
  EXPECT_TRUE(close_to(values<double>(sum, rows), {2.5, -3.25}, kF64));
  EXPECT_TRUE(close_to(values<double>(mean, rows), {2.5 / 3, -3.25 / 3}, kF64));
}

TEST(InterpreterValues, BoxOperators) {
  LossBuilder b;
  Expr p = b.pred("p", box_type()), g = b.data("g", box_type());
  // Overlapping, apart, touching, contained, and a flipped p (negative area).
  Batch<double> batch{rows_of({{0, 0, 2, 2}, {0, 0, 1, 1}, {0, 0, 1, 1}, {0, 0, 4, 4}, {2, 0, 0, 1}}),
                      rows_of({{1, 1, 3, 3}, {2, 3, 4, 5}, {1, 0, 2, 1}, {1, 1, 2, 3}, {0, 0, 1, 1}})};
  auto eval = [&](Expr body) { return values<double>(b.build(body), batch); };
  EXPECT_TRUE(close_to(eval(field(p, 0)), {0, 0, 0, 0, 2}, 0));
  EXPECT_TRUE(close_to(eval(field(p, 1)), {0, 0, 0, 0, 0}, 0));
  EXPECT_TRUE(close_to(eval(field(p, 2)), {2, 1, 1, 4, 0}, 0));
  EXPECT_TRUE(close_to(eval(field(g, 3)), {3, 5, 1, 3, 1}, 0));
  EXPECT_TRUE(close_to(eval(call(Op::Area, {p})), {4, 1, 1, 16, -2}, kF64));
  EXPECT_TRUE(close_to(eval(call(Op::Inter, {p, g})), {1, 0, 0, 2, 0}, kF64));
  EXPECT_TRUE(close_to(eval(call(Op::Enclose, {p, g})), {9, 20, 2, 16, 1}, kF64));
  EXPECT_TRUE(close_to(eval(call(Op::Iou, {p, g})), {1 / (7 + 1e-7), 0, 0, 2 / (16 + 1e-7), 0}, kF64));
  Loss iou = b.build(call(Op::Iou, {p, g}));
  EXPECT_TRUE(close_to(values<float>(iou, batch), {1 / 7.0, 0, 0, 2 / 16.0, 0}, kF32));
}

TEST(InterpreterValues, ConstantsAndParams) {
  LossBuilder b;
  Expr x = b.pred("x");
  Expr alpha = b.param("alpha", 0.25);
  // A body with a part that depends on no input: (alpha + 2) * 3 is one value for all rows.
  Loss loss = b.build(call(Op::Add, {x, call(Op::Mul, {call(Op::Add, {alpha, num(2)}), num(3)})}));
  Batch<double> batch{column({1, 2, 3})};
  EXPECT_TRUE(close_to(evaluate(loss, batch).loss, {7.75, 8.75, 9.75}, kF64));
  EXPECT_TRUE(close_to(evaluate(loss, batch, false, {1}).loss, {10, 11, 12}, kF64));
  // A constant body: every row gets it.
  LossBuilder cb;
  cb.pred("x");
  Loss constant_loss = cb.build(num(1.5));
  Evaluation<double> e = evaluate(constant_loss, batch);
  EXPECT_TRUE(close_to(e.loss, {1.5, 1.5, 1.5}, 0));
  EXPECT_TRUE(close_to(e.grads[0].data, {0, 0, 0}, 0));
}

}  // namespace
}  // namespace lossforge
