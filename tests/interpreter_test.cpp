// The reference interpreter as a whole: input validation, params, chunking of
// large batches, and published losses (SPEC §4) against closed forms.
#include "runtime/interpreter.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>

#include "compiler/error.hpp"
#include "interpreter_support.hpp"

namespace lossforge {
namespace {

using namespace lossforge::testing;

// ---- input validation --------------------------------------------------------

// loss(pred x: real[C], y: real[C], p: box, s: real) = dot(x, y) + area(p) * s
Loss mixed_loss() {
  LossBuilder b("mixed");
  Expr x = b.pred("x", vec_type()), y = b.data("y", vec_type()), p = b.data("p", box_type()), s = b.data("s");
  return b.build(call(Op::Add, {call(Op::Dot, {x, y}), call(Op::Mul, {call(Op::Area, {p}), s})}));
}
Batch<double> mixed_batch(size_t rows, size_t width) {
  return {Array<double>(rows, width), Array<double>(rows, width), Array<double>(rows, 4), Array<double>(rows, 1)};
}

std::string input_error(const Loss& loss, const Batch<double>& batch, std::vector<double> params = {}) {
  try {
    evaluate(loss, batch, true, std::move(params));
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InputError";
  return {};
}

TEST(Interpreter, ValidBatchEvaluates) {
  Batch<double> batch = mixed_batch(3, 81);
  batch[0].data.assign(3 * 81, 1.0);
  batch[1].data.assign(3 * 81, 2.0);
  for (size_t r = 0; r < 3; ++r) std::copy_n(std::vector<double>{0, 0, 2, 3}.begin(), 4, batch[2].row(r));
  batch[3].data = {1, 0, -1};
  Evaluation<double> e = evaluate(mixed_loss(), batch);
  EXPECT_TRUE(close_to(e.loss, {162 + 6, 162, 162 - 6}, 1e-15));
  ASSERT_EQ(e.grads.size(), 1u);
  EXPECT_EQ(e.grads[0].width, 81u);
  EXPECT_TRUE(close_to(e.grads[0].data, std::vector<double>(3 * 81, 2.0), 0));
}

TEST(Interpreter, WrongNumberOfArrays) {
  Batch<double> batch = mixed_batch(2, 3);
  batch.pop_back();
  std::string message = input_error(mixed_loss(), batch);
  EXPECT_EQ(message, "loss 'mixed' takes 4 inputs (x, y, p, s) but got 3 arrays");
}

TEST(Interpreter, RowCountsDiffer) {
  Batch<double> batch = mixed_batch(2, 3);
  batch[3] = Array<double>(5, 1);
  EXPECT_EQ(input_error(mixed_loss(), batch), "input 's' has 5 rows but 'x' has 2");
}

TEST(Interpreter, RealInputIsOneWide) {
  Batch<double> batch = mixed_batch(2, 3);
  batch[3] = Array<double>(2, 2);
  EXPECT_EQ(input_error(mixed_loss(), batch), "input 's' is real and needs 1 value per row, got 2");
}

TEST(Interpreter, BoxInputIsFourWide) {
  Batch<double> batch = mixed_batch(2, 3);
  batch[2] = Array<double>(2, 3);
  EXPECT_EQ(input_error(mixed_loss(), batch),
            "input 'p' is a box and needs 4 values per row (x1, y1, x2, y2), got 3");
}

TEST(Interpreter, InputsOfOneWidthSymbolAgree) {
  Batch<double> batch = mixed_batch(2, 81);
  batch[1] = Array<double>(2, 80);
  EXPECT_EQ(input_error(mixed_loss(), batch), "input 'y' has 80 values per row but 'x' has 81 (both real[C])");
}

TEST(Interpreter, DataSizeMatchesRowsTimesWidth) {
  Batch<double> batch = mixed_batch(3, 2);
  batch[0].data.pop_back();
  EXPECT_EQ(input_error(mixed_loss(), batch), "input 'x' holds 5 values but 3 rows of 2 need 6");
}

TEST(Interpreter, RowsNeedValues) {
  Batch<double> batch = mixed_batch(2, 0);
  EXPECT_EQ(input_error(mixed_loss(), batch), "input 'x' has no values per row; real[C] needs at least one");
}

TEST(Interpreter, NumericWidthIsEnforced) {
  LossBuilder b("fixed");
  Expr x = b.pred("x", vec_type("4"));
  Loss loss = b.build(call(Op::Sum, {x}));
  EXPECT_EQ(input_error(loss, Batch<double>{Array<double>(1, 5)}),
            "input 'x' has 5 values per row but its type real[4] needs 4");
  EXPECT_EQ(evaluate(loss, Batch<double>{rows_of({{1, 2, 3, 4}})}).loss[0], 10);
}

TEST(Interpreter, DifferentWidthSymbolsAreIndependent) {
  LossBuilder b;
  Expr x = b.pred("x", vec_type("C")), y = b.data("y", vec_type("K"));
  Loss loss = b.build(call(Op::Add, {call(Op::Logsumexp, {x}), call(Op::Sum, {y})}));
  Evaluation<double> e = evaluate(loss, Batch<double>{rows_of({{0, 0}}), rows_of({{1, 2, 3}})});
  EXPECT_NEAR(e.loss[0], std::log(2.0) + 6, 1e-15);
  EXPECT_TRUE(close_to(e.grads[0].data, {0.5, 0.5}, 1e-15));
}

TEST(Interpreter, ZeroRows) {
  Evaluation<double> e = evaluate(mixed_loss(), mixed_batch(0, 7));
  EXPECT_TRUE(e.loss.empty());
  ASSERT_EQ(e.grads.size(), 1u);
  EXPECT_EQ(e.grads[0].rows, 0u);
  EXPECT_EQ(e.grads[0].width, 7u);
}

// ---- params ------------------------------------------------------------------

// SPEC §2's focal loss.
Loss focal_loss() {
  LossBuilder b("focal");
  Expr x = b.pred("x"), y = b.data("y");
  Expr alpha = b.param("alpha", 0.25), gamma = b.param("gamma", 2);
  Expr one = num(1);
  auto sub = [](Expr a, Expr c) { return call(Op::Sub, {a, c}); };
  auto mul = [](Expr a, Expr c) { return call(Op::Mul, {a, c}); };
  Expr p = call(Op::Sigmoid, {x});
  Expr pt = call(Op::Add, {mul(p, y), mul(sub(one, p), sub(one, y))});
  Expr at = call(Op::Add, {mul(alpha, y), mul(sub(one, alpha), sub(one, y))});
  return b.build(mul(mul(call(Op::Neg, {at}), call(Op::Pow, {sub(one, pt), gamma})), call(Op::Log, {pt})));
}

double focal_reference(double x, double y, double alpha, double gamma) {
  double p = 1 / (1 + std::exp(-x));
  double pt = p * y + (1 - p) * (1 - y);
  double at = alpha * y + (1 - alpha) * (1 - y);
  return -at * std::pow(1 - pt, gamma) * std::log(pt + 1e-20);
}

TEST(Interpreter, ParamsDefaultAndOverride) {
  Batch<double> batch{column({-2, 0.5, 3, -0.3}), column({1, 0, 1, 0})};
  std::vector<double> defaults, overridden;
  for (size_t r = 0; r < 4; ++r) {
    defaults.push_back(focal_reference(batch[0].data[r], batch[1].data[r], 0.25, 2));
    overridden.push_back(focal_reference(batch[0].data[r], batch[1].data[r], 0.5, 0));
  }
  EXPECT_TRUE(close_to(evaluate(focal_loss(), batch).loss, defaults, 1e-14));
  EXPECT_TRUE(close_to(evaluate(focal_loss(), batch, true, {0.5, 0}).loss, overridden, 1e-14));
  // Gradients against differences, at the defaults and with gamma = 0.
  Loss loss = focal_loss();
  EXPECT_TRUE(close_to(evaluate(loss, batch).grads[0].data, numeric_gradient(loss, batch, 0).data, 1e-6));
  Evaluation<double> ce = evaluate(loss, batch, true, {0.5, 0});
  for (size_t r = 0; r < 4; ++r) {  // gamma = 0: 0.5 * binary cross-entropy, slope 0.5 (p - y)
    double p = 1 / (1 + std::exp(-batch[0].data[r]));
    EXPECT_NEAR(ce.grads[0].data[r], 0.5 * (p - batch[1].data[r]), 1e-12);
  }
}

TEST(Interpreter, WrongNumberOfParams) {
  Batch<double> batch{column({1}), column({1})};
  EXPECT_EQ(input_error(focal_loss(), batch, {0.5}), "loss 'focal' has 2 params (alpha, gamma) but got 1 value");
  EXPECT_EQ(input_error(focal_loss(), batch, {0.5, 2, 3}),
            "loss 'focal' has 2 params (alpha, gamma) but got 3 values");
}

// ---- chunking -----------------------------------------------------------------

// Cross-entropy + GIoU * sigmoid(s) + a param: every kind of input and op class.
Loss kitchen_sink() {
  LossBuilder b("sink");
  Expr x = b.pred("x", vec_type()), y = b.data("y", vec_type());
  Expr p = b.pred("p", box_type()), g = b.data("g", box_type()), s = b.pred("s");
  Expr k = b.param("k", 0.5);
  Expr ce = call(Op::Neg, {call(Op::Dot, {y, call(Op::LogSoftmax, {x})})});
  Expr i = call(Op::Inter, {p, g});
  Expr u = call(Op::Add, {call(Op::Sub, {call(Op::Add, {call(Op::Area, {p}), call(Op::Area, {g})}), i}), num(1e-7)});
  Expr e = call(Op::Add, {call(Op::Enclose, {p, g}), num(1e-7)});
  Expr giou = call(Op::Add, {call(Op::Sub, {num(1), call(Op::Div, {i, u})}),
                             call(Op::Div, {call(Op::Sub, {e, u}), e})});
  Expr weighted = call(Op::Mul, {giou, call(Op::Sigmoid, {s})});
  return b.build(call(Op::Add, {call(Op::Add, {ce, weighted}), call(Op::Mul, {k, call(Op::Mean, {x})})}));
}

Batch<double> random_sink_batch(size_t rows, size_t width, uint64_t seed) {
  Rng rng(seed);
  Batch<double> batch{Array<double>(rows, width), Array<double>(rows, width), Array<double>(rows, 4),
                      Array<double>(rows, 4), Array<double>(rows, 1)};
  for (double& v : batch[0].data) v = uniform(rng, -4, 4);
  for (size_t r = 0; r < rows; ++r) batch[1].row(r)[rng() % width] = 1;
  for (size_t box : {2, 3})
    for (size_t r = 0; r < rows; ++r) {
      double* b = batch[box].row(r);
      b[0] = uniform(rng, 0, 2), b[1] = uniform(rng, 0, 2);
      b[2] = b[0] + uniform(rng, 0.1, 2), b[3] = b[1] + uniform(rng, 0.1, 2);
    }
  for (double& v : batch[4].data) v = uniform(rng, -3, 3);
  return batch;
}

Batch<double> row_of(const Batch<double>& batch, size_t r) {
  Batch<double> one;
  for (const Array<double>& a : batch)
    one.emplace_back(1, a.width, std::vector<double>(a.row(r), a.row(r) + a.width));
  return one;
}

// A batch spanning several chunks gives exactly what each row gives alone.
void expect_batch_equals_rows(const Loss& loss, const Batch<double>& batch) {
  Evaluation<double> all = evaluate(loss, batch);
  const size_t rows = batch[0].rows;
  ASSERT_EQ(all.loss.size(), rows);
  for (size_t r = 0; r < rows; ++r) {
    Evaluation<double> one = evaluate(loss, row_of(batch, r));
    ASSERT_EQ(all.loss[r], one.loss[0]) << "row " << r;
    for (size_t k = 0; k < one.grads.size(); ++k) {
      const Array<double>& g = all.grads[k];
      ASSERT_EQ(std::vector<double>(g.row(r), g.row(r) + g.width), one.grads[k].data) << "row " << r << " grad " << k;
    }
  }
}

TEST(Interpreter, ChunkedBatchEqualsRowByRow) {
  // 2500 rows: two full chunks of 1024 and a partial one.
  expect_batch_equals_rows(kitchen_sink(), random_sink_batch(2500, 7, 42));
}

TEST(Interpreter, WideRowsUseSmallerChunks) {
  // 3000 values per row: the tape budget (2^22 values) holds a few hundred of
  // these rows, not 1024, so 1000 rows take several chunks of a smaller size.
  expect_batch_equals_rows(kitchen_sink(), random_sink_batch(1000, 3000, 7));
}

TEST(Interpreter, Float32ChunksAgreeWithFloat64) {
  Batch<double> batch = random_sink_batch(1500, 5, 3);
  Evaluation<double> e64 = evaluate(kitchen_sink(), batch);
  Evaluation<float> e32 = evaluate(kitchen_sink(), to_float(batch));
  EXPECT_TRUE(close_to(e32.loss, e64.loss, 1e-5));
  for (size_t k = 0; k < e64.grads.size(); ++k) EXPECT_TRUE(close_to(e32.grads[k].data, e64.grads[k].data, 1e-4));
}

// ---- published losses --------------------------------------------------------

TEST(Interpreter, CrossEntropyMatchesClosedForm) {
  // -dot(y, log(softmax(x))): value -Σ y ln(softmax + 1e-20), gradient softmax Σy - y.
  LossBuilder b("ce");
  Expr x = b.pred("x", vec_type()), y = b.data("y", vec_type());
  Loss loss = b.build(call(Op::Neg, {call(Op::Dot, {y, call(Op::Log, {call(Op::Softmax, {x})})})}));
  Batch<double> batch{rows_of({{2, -1, 0.5, 0}, {-3, 4, 1, 1}}), rows_of({{0, 0, 1, 0}, {0.2, 0.3, 0.5, 0}})};
  Evaluation<double> e = evaluate(loss, batch);
  for (size_t r = 0; r < 2; ++r) {
    const double* xr = batch[0].row(r);
    const double* yr = batch[1].row(r);
    double z = 0, ysum = 0, value = 0;
    for (int i = 0; i < 4; ++i) z += std::exp(xr[i]), ysum += yr[i];
    for (int i = 0; i < 4; ++i) value -= yr[i] * std::log(std::exp(xr[i]) / z + 1e-20);
    EXPECT_NEAR(e.loss[r], value, 1e-14);
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(e.grads[0].row(r)[i], std::exp(xr[i]) / z * ysum - yr[i], 1e-14);
  }
}

TEST(Interpreter, CseAutolossAClassification) {
  // Neg(Dot(Mul(Y, Add(1, Sin(Z))), Log(Softmax(X)))) over multi_cls inputs.
  LossBuilder b("cse_a_cls");
  Expr X = b.pred("X", vec_type("C+1")), Y = b.data("Y", vec_type("C+1")), Z = b.data("Z", vec_type("C+1"));
  Loss loss = b.build(call(
      Op::Neg,
      {call(Op::Dot, {call(Op::Mul, {Y, call(Op::Add, {num(1), call(Op::Sin, {Z})})}),
                      call(Op::Log, {call(Op::Softmax, {X})})})}));
  Batch<double> batch{rows_of({{1.5, -0.5, 0.25}}), rows_of({{0, 1, 0}}), rows_of({{0.7, 0.7, 0.7}})};
  double z = std::exp(1.5) + std::exp(-0.5) + std::exp(0.25);
  Evaluation<double> e = evaluate(loss, batch);
  EXPECT_NEAR(e.loss[0], -(1 + std::sin(0.7)) * std::log(std::exp(-0.5) / z), 1e-14);
  EXPECT_TRUE(close_to(e.grads[0].data, numeric_gradient(loss, batch, 0).data, 1e-7));
}

TEST(Interpreter, GiouMatchesHandComputation) {
  // p = [0, 2]^2, g = [1, 3]^2: i = 1, u = 7, e = 9, GIoU loss = 1 - 1/7 + 2/9.
  LossBuilder b("giou");
  Expr p = b.pred("p", box_type()), g = b.data("g", box_type());
  Expr i = call(Op::Inter, {p, g});
  Expr u = call(Op::Add, {call(Op::Sub, {call(Op::Add, {call(Op::Area, {p}), call(Op::Area, {g})}), i}), num(1e-7)});
  Expr e = call(Op::Add, {call(Op::Enclose, {p, g}), num(1e-7)});
  Loss loss = b.build(call(Op::Add, {call(Op::Sub, {num(1), call(Op::Div, {i, u})}),
                                     call(Op::Div, {call(Op::Sub, {e, u}), e})}));
  Batch<double> batch{rows_of({{0, 0, 2, 2}}), rows_of({{1, 1, 3, 3}})};
  Evaluation<double> result = evaluate(loss, batch);
  EXPECT_NEAR(result.loss[0], 1 - 1.0 / 7 + 2.0 / 9, 1e-7);
  // d/d p.x2: i = (p.x2 - 1) * 1 so di = 1; u = area(p) + 4 - i so du = 2 - 1 = 1;
  // e = (3 - 0) * (3 - 0) does not move. With (e - u)/e = 1 - u/e:
  // d = -(di u - i du)/u^2 - du/e = -(7 - 1)/49 - 1/9.
  EXPECT_NEAR(result.grads[0].data[2], -6.0 / 49 - 1.0 / 9, 1e-7);
  EXPECT_TRUE(close_to(result.grads[0].data, numeric_gradient(loss, batch, 0).data, 1e-7));
}

}  // namespace
}  // namespace lossforge
