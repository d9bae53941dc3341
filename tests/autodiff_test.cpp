// Symbolic reverse mode (compiler/autodiff.hpp) against the interpreter's tape
// and against central finite differences.
//
// The gradient expressions are evaluated by the interpreter as the bodies of
// losses with the same inputs (gradient_losses: a real[C] part is read one
// column at a time through a one-hot w). They compute the tape's arithmetic,
// so the comparison with the tape is tight; the rules that cannot spell the
// tape's arithmetic exactly (salf, sgdf, pow's exponent, iou, broadcast sums;
// see compiler/autodiff.cpp) differ by rounding, which cancellation in random
// formulas can magnify, hence a relative tolerance rather than equality there.
// At kinks the values must be exactly the tape's.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <iostream>
#include <unordered_set>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "compiler/autodiff.hpp"
#include "compiler/frontend.hpp"
#include "compiler/print.hpp"
#include "interpreter_support.hpp"
#include "search/generate.hpp"

namespace lossforge {
namespace {

using namespace lossforge::testing;

// ---- evaluating the symbolic gradient ----------------------------------------------

// The symbolic gradients of `loss` on a batch, shaped like the tape's.
template <class T>
std::vector<Array<T>> symbolic_gradients(const Loss& loss, const std::vector<Loss>& parts, const Batch<T>& batch) {
  std::vector<Array<T>> out;
  size_t next = 0;
  for (size_t k : loss.pred_inputs()) {
    const Array<T>& in = batch[k];
    Array<T> grad(in.rows, in.width);
    if (loss.inputs[k].type.is_vec()) {
      const Loss& part = parts.at(next++);
      for (size_t c = 0; c < in.width; ++c) {
        Batch<T> with_w = batch;
        Array<T> w(in.rows, in.width);
        for (size_t r = 0; r < in.rows; ++r) w.row(r)[c] = 1;
        with_w.push_back(w);
        std::vector<T> column = evaluate(part, with_w, false).loss;
        for (size_t r = 0; r < in.rows; ++r) grad.row(r)[c] = column[r];
      }
    } else {
      for (size_t c = 0; c < in.width; ++c) {
        std::vector<T> column = evaluate(parts.at(next++), batch, false).loss;
        for (size_t r = 0; r < in.rows; ++r) grad.row(r)[c] = column[r];
      }
    }
    out.push_back(std::move(grad));
  }
  return out;
}
template <class T>
std::vector<Array<T>> symbolic_gradients(const Loss& loss, const Batch<T>& batch) {
  return symbolic_gradients(loss, gradient_losses(loss, differentiate(loss)), batch);
}

bool same(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

// Symbolic against tape, element by element: equal, or within `tolerance`
// relative to max(1, |tape|). A real[C] part read through a one-hot w is NaN
// where another column of its row is not finite (0 * inf): such rows compare
// only when the tape's row is finite.
template <class T>
::testing::AssertionResult agree(const Loss& loss, const Batch<T>& batch, double tolerance, size_t* compared = nullptr) {
  Evaluation<T> tape = evaluate(loss, batch, true);
  std::vector<Array<T>> sym = symbolic_gradients(loss, batch);
  const std::vector<size_t> preds = loss.pred_inputs();
  if (sym.size() != tape.grads.size()) return ::testing::AssertionFailure() << "part count";
  for (size_t k = 0; k < sym.size(); ++k) {
    const bool row_part = loss.inputs[preds[k]].type.is_vec();
    for (size_t r = 0; r < sym[k].rows; ++r) {
      if (row_part) {
        bool finite = true;
        for (size_t c = 0; c < sym[k].width; ++c) finite = finite && std::isfinite(double(tape.grads[k].row(r)[c]));
        if (!finite) continue;
      }
      for (size_t c = 0; c < sym[k].width; ++c) {
        const double s = sym[k].row(r)[c], t = tape.grads[k].row(r)[c];
        if (compared) ++*compared;
        if (same(s, t)) continue;
        if (std::isfinite(s) && std::isfinite(t) && std::fabs(s - t) <= tolerance * std::max(1.0, std::fabs(t))) continue;
        return ::testing::AssertionFailure() << "d/d " << loss.inputs[preds[k]].name << " row " << r << " col " << c
                                             << ": symbolic " << s << ", tape " << t << "\n"
                                             << to_text(loss);
      }
    }
  }
  return ::testing::AssertionSuccess();
}

// Central differences with a relative step, for every value of input `which`.
Array<double> central_difference(const Loss& loss, Batch<double> batch, size_t which, double step) {
  Array<double>& x = batch[which];
  Array<double> grad(x.rows, x.width);
  for (size_t i = 0; i < x.data.size(); ++i) {
    const double original = x.data[i], h = step * std::max(1.0, std::fabs(original));
    x.data[i] = original + h;
    std::vector<double> up = evaluate(loss, batch, false).loss;
    x.data[i] = original - h;
    std::vector<double> down = evaluate(loss, batch, false).loss;
    x.data[i] = original;
    grad.data[i] = (up[i / x.width] - down[i / x.width]) / (2 * h);
  }
  return grad;
}

struct FdCount {
  size_t checked = 0, total = 0;
};

// Symbolic against finite differences, away from kinks: an element is checked
// where two step sizes agree (a kink, a pole or rounding noise within reach
// makes them differ) and the values are finite.
::testing::AssertionResult matches_finite_differences(const Loss& loss, const Batch<double>& batch, FdCount& count) {
  std::vector<Array<double>> sym = symbolic_gradients(loss, batch);
  Evaluation<double> tape = evaluate(loss, batch, true);
  const std::vector<size_t> preds = loss.pred_inputs();
  for (size_t k = 0; k < preds.size(); ++k) {
    Array<double> fine = central_difference(loss, batch, preds[k], 1e-6);
    Array<double> coarse = central_difference(loss, batch, preds[k], 1e-5);
    for (size_t i = 0; i < fine.data.size(); ++i) {
      ++count.total;
      const double f = fine.data[i], c = coarse.data[i], s = sym[k].data[i];
      const double scale = std::max(1.0, std::fabs(f));
      // Where the tape's slope is NaN or inf by convention (pow's exponent at a
      // zero base, ...), agree() has compared it; differences see no slope there.
      // A real[C] part read through a one-hot w also needs its whole row finite (see agree).
      const Array<double>& t = tape.grads[k];
      const size_t row = i / t.width;
      if (!std::all_of(t.row(row), t.row(row) + t.width, [](double v) { return std::isfinite(v); })) continue;
      // The rounding of a large loss value can swamp its change over the step.
      const double x = batch[preds[k]].data[i];
      const double noise = 1e-15 * std::fabs(tape.loss[row]) / (1e-6 * std::max(1.0, std::fabs(x)));
      if (!(noise <= 1e-7 * scale)) continue;
      if (!std::isfinite(f) || !std::isfinite(c) || std::fabs(f) > 1e8 || std::fabs(f - c) > 1e-6 * scale) continue;
      ++count.checked;
      if (!(std::fabs(s - f) <= 1e-5 * scale))
        return ::testing::AssertionFailure() << "d/d " << loss.inputs[preds[k]].name << " element " << i
                                             << ": symbolic " << s << ", finite differences " << f << "\n"
                                             << to_text(loss);
    }
  }
  return ::testing::AssertionSuccess();
}

// ---- inputs ------------------------------------------------------------------------

constexpr size_t kRows = 8;
constexpr size_t kWidth = 4;

std::array<double, 4> random_box(Rng& rng) {
  const double x1 = uniform(rng, -1, 2), y1 = uniform(rng, -1, 2);
  return {x1, y1, x1 + uniform(rng, 0.3, 2.5), y1 + uniform(rng, 0.3, 2.5)};
}

Array<double> boxes(Rng& rng) {
  Array<double> out(kRows, 4);
  for (size_t r = 0; r < kRows; ++r) {
    std::array<double, 4> b = random_box(rng);
    std::copy(b.begin(), b.end(), out.row(r));
  }
  return out;
}

Array<double> values(Rng& rng, size_t width, double lo, double hi) {
  Array<double> out(kRows, width);
  for (double& v : out.data) v = uniform(rng, lo, hi);
  return out;
}

// Inputs of any signature: reals in [lo, hi], random boxes.
Batch<double> random_batch(const Loss& loss, Rng& rng, double lo = -3, double hi = 3) {
  Batch<double> batch;
  for (const LossInput& in : loss.inputs) {
    if (in.type.is_box()) batch.push_back(boxes(rng));
    else if (in.type.is_vec()) batch.push_back(values(rng, kWidth, lo, hi));
    else batch.push_back(values(rng, 1, lo, hi));
  }
  return batch;
}

// The inputs the presets describe (SPEC §2): one-hot labels, IoUs in [0, 1].
Batch<double> preset_batch(const Preset& preset, Rng& rng) {
  Batch<double> batch;
  std::vector<double> label(kRows);
  for (double& l : label) l = std::bernoulli_distribution(0.3)(rng) ? 1 : 0;
  for (const LossInput& in : preset.inputs) {
    if (in.type.is_box()) {
      batch.push_back(boxes(rng));
    } else if (in.type.is_vec()) {
      Array<double> a = in.name == "X" ? values(rng, kWidth, -3, 3) : values(rng, kWidth, 0, 1);
      if (in.name == "Y") {
        for (size_t r = 0; r < kRows; ++r) {
          std::fill_n(a.row(r), kWidth, 0.0);
          a.row(r)[std::uniform_int_distribution<size_t>(0, kWidth - 1)(rng)] = 1;
        }
      }
      batch.push_back(a);
    } else if (in.name == "PY" || in.name == "NY") {
      Array<double> a(kRows, 1);
      for (size_t r = 0; r < kRows; ++r) a.data[r] = in.name == "PY" ? label[r] : 1 - label[r];
      batch.push_back(a);
    } else {
      batch.push_back(in.name == "X" ? values(rng, 1, -4, 4) : values(rng, 1, 0, 1));
    }
  }
  return batch;
}

Loss formula_loss(const Preset& preset, Expr body) {
  Loss loss;
  loss.name = "candidate";
  loss.inputs = preset.inputs;
  for (const NamedExpr& t : preset.terminals)
    if (t.expr->op() != Op::Input) loss.lets.push_back(t);
  loss.body = std::move(body);
  return loss;
}

std::vector<Loss> example_losses() {
  std::vector<Loss> out;
  for (const auto& entry : std::filesystem::directory_iterator(LOSSFORGE_SOURCE_DIR "/examples/losses"))
    if (entry.path().extension() == ".loss")
      for (Loss& loss : load_module(SourceFile::read(entry.path().string())).losses) out.push_back(std::move(loss));
  return out;
}

// ---- every operator ------------------------------------------------------------------

// Losses that use `op` once, its arguments pred inputs of every shape it takes
// (real, a real[C] row with real operands broadcast, boxes).
std::vector<Loss> op_losses(const OpInfo& info) {
  std::vector<Loss> out;
  switch (info.kind) {
    case OpKind::Leaf: {
      LossBuilder b;
      Expr x = b.pred("x");
      out.push_back(b.build(make(Op::Mul, {x, info.op == Op::Param ? b.param("k", 1.5) : num(2.5)})));
      break;
    }
    case OpKind::Elementwise:
      for (int row_arg = -1; row_arg < info.arity; ++row_arg) {
        LossBuilder b;
        std::vector<Expr> args;
        for (int i = 0; i < info.arity; ++i)
          args.push_back(b.pred(std::string(1, char('a' + i)), i == row_arg ? vec_type() : real_type()));
        Expr e = make(info.op, args);
        if (e->type().is_vec()) e = make(Op::Dot, {b.data("w", vec_type()), e});
        out.push_back(b.build(e));
      }
      break;
    case OpKind::Rowwise: {
      LossBuilder b;
      std::vector<Expr> args;
      for (int i = 0; i < info.arity; ++i) args.push_back(b.pred(std::string(1, char('u' + i)), vec_type()));
      Expr e = make(info.op, args);
      if (e->type().is_vec()) e = make(Op::Dot, {b.data("w", vec_type()), e});
      out.push_back(b.build(e));
      break;
    }
    case OpKind::Box: {
      LossBuilder b;
      Expr p = b.pred("p", box_type()), g = b.pred("g", box_type());
      out.push_back(b.build(info.op == Op::Field ? make(Op::Mul, {field(p, 0), field(p, 3)})
                            : info.arity == 1    ? make(info.op, {p})
                                                 : make(info.op, {p, g})));
      break;
    }
  }
  return out;
}

TEST(Autodiff, EveryOperatorMatchesTheTapeAndFiniteDifferences) {
  for (const OpInfo& info : all_ops()) {
    std::vector<Loss> losses = op_losses(info);
    ASSERT_FALSE(losses.empty()) << info.name;
    for (const Loss& loss : losses) {
      SCOPED_TRACE(std::string(info.name) + ": " + to_text(loss));
      Rng rng(std::hash<std::string>{}(to_text(loss)));
      FdCount count;
      for (int trial = 0; trial < 20; ++trial) {
        // Every other draw positive: the domain of log, sqrt and pow's exponent slope.
        Batch<double> batch = trial % 2 ? random_batch(loss, rng, 0.2, 3) : random_batch(loss, rng);
        ASSERT_TRUE(agree(loss, batch, 1e-13));
        ASSERT_TRUE(agree(loss, to_float(batch), 1e-6));
        ASSERT_TRUE(matches_finite_differences(loss, batch, count));
      }
      EXPECT_GT(count.checked, count.total / 4) << "finite differences checked too little";
    }
  }
}

// ---- the examples ---------------------------------------------------------------------

TEST(Autodiff, ExamplesMatchTheTapeAndFiniteDifferences) {
  std::vector<Loss> losses = example_losses();
  ASSERT_GE(losses.size(), 9u);
  for (const Loss& loss : losses) {
    SCOPED_TRACE(loss.name);
    Rng rng(std::hash<std::string>{}(loss.name));
    FdCount count;
    for (int trial = 0; trial < 20; ++trial) {
      Batch<double> batch = random_batch(loss, rng);
      // Labels as the examples expect them: in [0, 1].
      for (size_t i = 0; i < loss.inputs.size(); ++i)
        if (!loss.inputs[i].pred && !loss.inputs[i].type.is_box())
          for (double& v : batch[i].data) v = std::fabs(v) / 3;
      ASSERT_TRUE(agree(loss, batch, 1e-12));
      ASSERT_TRUE(agree(loss, to_float(batch), 1e-5));
      ASSERT_TRUE(matches_finite_differences(loss, batch, count));
    }
    EXPECT_GT(count.checked, count.total * 9 / 10);
  }
}

// `lossforge grad` prints text that parses back and computes the same gradient.
TEST(Autodiff, GradCommandPrintsLossesThatParseBack) {
  for (const auto& entry : std::filesystem::directory_iterator(LOSSFORGE_SOURCE_DIR "/examples/losses")) {
    const std::string path = entry.path().string();
    SCOPED_TRACE(path);
    const std::string out_path = ::testing::TempDir() + "/grad_" + entry.path().stem().string() + ".loss";
    ASSERT_EQ(std::system((std::string(LOSSFORGE_CLI) + " grad '" + path + "' > '" + out_path + "'").c_str()), 0);
    Module printed = load_module(SourceFile::read(out_path));
    Module original = load_module(SourceFile::read(path));
    size_t next = 0;
    for (const Loss& loss : original.losses) {
      Rng rng(7);
      Batch<double> batch = random_batch(loss, rng);
      Evaluation<double> tape = evaluate(loss, batch, true);
      std::vector<Loss> parts;
      for (size_t n = gradient_losses(loss, differentiate(loss)).size(); n > 0; --n)
        parts.push_back(printed.losses.at(next++));
      std::vector<Array<double>> sym = symbolic_gradients(loss, parts, batch);
      for (size_t k = 0; k < sym.size(); ++k) EXPECT_TRUE(close_to(sym[k].data, tape.grads[k].data, 1e-12)) << loss.name;
    }
    EXPECT_EQ(next, printed.losses.size());
  }
}

TEST(Autodiff, GradCommandReadsFormulasWithAPreset) {
  const std::string out_path = ::testing::TempDir() + "/grad_formula.loss";
  const std::string command = std::string(LOSSFORGE_CLI) +
                              " grad 'Add(1,Neg(Add(Div(I,U),Neg(Div(Add(E,Neg(Add(I,2))),E)))))' --pset reg > '" +
                              out_path + "'";
  ASSERT_EQ(std::system(command.c_str()), 0);
  Module printed = load_module(SourceFile::read(out_path));
  ASSERT_EQ(printed.losses.size(), 4u);
  EXPECT_EQ(printed.losses[0].name, "d_formula_dP_x1");
  EXPECT_EQ(printed.losses[3].name, "d_formula_dP_y2");
}

// ---- thousands of random candidates per preset -----------------------------------------

TEST(Autodiff, RandomCandidatesMatchTheTapeAndFiniteDifferences) {
  for (const Preset& preset : all_presets()) {
    SCOPED_TRACE(preset.name);
    Rng rng(2024);
    GenerateOptions options;
    options.extra_ops = true;
    options.all_terminals = preset.name == "reg";
    options.max_depth = 6;
    std::vector<Expr> candidates = ramped_half_and_half(preset, rng, options, 2000);
    FdCount count;
    size_t compared = 0;
    for (const Expr& body : candidates) {
      Loss loss = formula_loss(preset, body);
      Batch<double> batch = preset_batch(preset, rng);
      ASSERT_TRUE(agree(loss, batch, 1e-9, &compared));
      ASSERT_TRUE(matches_finite_differences(loss, batch, count));
    }
    std::cout << preset.name << ": " << compared << " gradient values against the tape, " << count.checked << " of "
              << count.total << " against finite differences\n";
    EXPECT_GT(count.checked, count.total / 2);
  }
}

// ---- sharing with the forward pass ------------------------------------------------------

TEST(Autodiff, GradientsShareNodesWithTheForwardPass) {
  Module module = load_module(SourceFile::read(LOSSFORGE_SOURCE_DIR "/examples/losses/focal.loss"));
  const Loss& focal = module.losses.at(0);
  Gradients grads = differentiate(focal);
  std::vector<Expr> roots{focal.body};
  size_t separate = dag_size(focal.body);
  for (const InputGradient& g : grads.inputs)
    for (const Expr& part : g.parts) {
      roots.push_back(part);
      separate += dag_size(part);
    }
  const size_t together = topological_order(roots).size();
  std::cout << "focal: body " << dag_size(focal.body) << " nodes, body + gradient " << together
            << ", separately " << separate << "\n";
  EXPECT_LT(together * 10, separate * 7);
  // The gradient reuses the forward pass's sigmoid, softplus and power nodes.
  std::unordered_set<const Node*> forward;
  for (const Node* n : topological_order(focal.body)) forward.insert(n);
  size_t reused = 0;
  for (const Node* n : topological_order(grads.inputs[0].parts[0])) reused += forward.count(n);
  EXPECT_GE(reused * 2, dag_size(focal.body));
}

// ---- kinks: exactly the tape -------------------------------------------------------------

void expect_exactly_the_tape(const Loss& loss, const Batch<double>& batch) {
  SCOPED_TRACE(to_text(loss));
  Evaluation<double> tape = evaluate(loss, batch, true);
  std::vector<Array<double>> sym = symbolic_gradients(loss, batch);
  ASSERT_EQ(sym.size(), tape.grads.size());
  for (size_t k = 0; k < sym.size(); ++k)
    for (size_t i = 0; i < sym[k].data.size(); ++i)
      EXPECT_TRUE(same(sym[k].data[i], tape.grads[k].data[i]))
          << "part " << k << " element " << i << ": symbolic " << sym[k].data[i] << ", tape " << tape.grads[k].data[i];
  Evaluation<float> tape32 = evaluate(loss, to_float(batch), true);
  std::vector<Array<float>> sym32 = symbolic_gradients(loss, to_float(batch));
  for (size_t k = 0; k < sym32.size(); ++k)
    for (size_t i = 0; i < sym32[k].data.size(); ++i)
      EXPECT_TRUE(same(sym32[k].data[i], tape32.grads[k].data[i])) << "float32, part " << k << " element " << i;
}

Loss real_loss(Op op, size_t arity) {
  LossBuilder b;
  std::vector<Expr> args;
  for (size_t i = 0; i < arity; ++i) args.push_back(b.pred(std::string(1, char('x' + i))));
  return b.build(make(op, args));
}

TEST(Autodiff, KinksGiveExactlyTheTapesValues) {
  const double nan = std::nan("");
  // min/max: ties split, NaN picked.
  for (Op op : {Op::Min, Op::Max})
    expect_exactly_the_tape(real_loss(op, 2), {column({1, 1, 2, -0.0, nan, 1}), column({1, 2, 1, 0.0, 1, nan})});
  // relu and abs at 0, exp around its cap, sqrt at 0, log at 0.
  expect_exactly_the_tape(real_loss(Op::Relu, 1), {column({0, -0.0, 1e-300, -1, nan})});
  expect_exactly_the_tape(real_loss(Op::Abs, 1), {column({0, -0.0, 2, -2, nan})});
  expect_exactly_the_tape(real_loss(Op::Exp, 1), {column({87.5, 88, 88.0000001, 89, 1000, nan})});
  expect_exactly_the_tape(real_loss(Op::Sqrt, 1), {column({0, 4, 2, -1})});
  expect_exactly_the_tape(real_loss(Op::Log, 1), {column({0, 1, -1})});
  expect_exactly_the_tape(real_loss(Op::Div, 2), {column({3, 0, 1}), column({0, 0, -1e-20})});
  expect_exactly_the_tape(real_loss(Op::Sigmoid, 1), {column({-40, 40, 0})});
  // clamp at both ends, inside, outside, and lo > hi.
  expect_exactly_the_tape(real_loss(Op::Clamp, 3),
                          {column({-1, 1, 0, -2, 2, 0, nan}), column({-1, -1, -1, -1, -1, 1, -1}),
                           column({1, 1, 1, 1, 1, -1, 1})});
  // pow's conventions: zero exponent, zero base, negative base.
  expect_exactly_the_tape(real_loss(Op::Pow, 2), {column({0, 0, 0, -3, 2, nan}), column({0, 2, -1, 2, 0.5, 0})});
  // where with a NaN condition, shares at ties.
  expect_exactly_the_tape(real_loss(Op::Where, 3), {column({nan, 0, 1}), column({1, 2, 3}), column({4, 5, 6})});

  // Boxes: touching, apart, identical, nested, sharing an edge; both boxes pred.
  Array<double> p = rows_of({{0, 0, 1, 1}, {0, 0, 1, 1}, {0, 0, 2, 3}, {1, 2, 4, 6}, {0, 0, 4, 4}, {0, 0, 2, 2}});
  Array<double> g = rows_of({{1, 0, 2, 1}, {2, 0, 3, 1}, {0, 0, 2, 3}, {1, 2, 4, 6}, {1, 1, 2, 2}, {0, 1, 2, 3}});
  for (Op op : {Op::Inter, Op::Enclose, Op::Iou, Op::Area}) {
    LossBuilder b;
    Expr bp = b.pred("p", box_type()), bg = b.pred("g", box_type());
    expect_exactly_the_tape(b.build(op == Op::Area ? make(op, {bp}) : make(op, {bp, bg})), {p, g});
  }
  for (const Loss& loss : example_losses())
    if (loss.inputs[0].type.is_box()) expect_exactly_the_tape(loss, {p, g});
}

TEST(Autodiff, ConstantExponentsNeedNoExponentSlope) {
  // d/dx x^2 at x < 0: the exponent's slope (NaN there) is never built.
  LossBuilder b;
  Expr x = b.pred("x");
  Loss square = b.build(make(Op::Pow, {x, num(2)}));
  Gradients grads = differentiate(square);
  for (const Node* n : topological_order(grads.inputs[0].parts[0])) EXPECT_NE(n->op(), Op::Log);
  expect_exactly_the_tape(square, {column({-3, -0.5, 0, 2})});
}

TEST(Autodiff, PartsHaveTheDocumentedShapes) {
  LossBuilder b;
  Expr x = b.pred("x", vec_type()), s = b.pred("s"), p = b.pred("p", box_type()), unused = b.pred("unused");
  (void)unused;
  Loss loss = b.build(make(Op::Add, {make(Op::Mul, {make(Op::Sum, {x}), s}), field(p, 2)}));
  Gradients grads = differentiate(loss);
  ASSERT_EQ(grads.inputs.size(), 4u);
  EXPECT_EQ(grads.inputs[0].input, 0u);
  ASSERT_EQ(grads.inputs[0].parts.size(), 1u);
  EXPECT_TRUE(grads.inputs[0].parts[0]->type().is_real());  // d sum(x) s / dx = s in every column
  ASSERT_EQ(grads.inputs[2].parts.size(), 4u);
  EXPECT_TRUE(grads.inputs[2].parts[0]->is_const(0));
  EXPECT_TRUE(grads.inputs[2].parts[2]->is_const(1));
  EXPECT_TRUE(grads.inputs[3].parts[0]->is_const(0));  // does not reach the loss
  // No trivial nodes: nothing multiplied by 1 or added to 0.
  for (const InputGradient& g : grads.inputs)
    for (const Expr& part : g.parts)
      for (const Node* n : topological_order(part)) {
        if (n->op() != Op::Mul && n->op() != Op::Add) continue;
        for (const Expr& a : n->args()) {
          EXPECT_FALSE(n->op() == Op::Mul && a->is_const(1)) << to_infix(part);
          EXPECT_FALSE(n->op() == Op::Add && a->is_const(0)) << to_infix(part);
        }
      }
}

}  // namespace
}  // namespace lossforge
