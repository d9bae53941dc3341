// The example losses of examples/losses/*.loss.
//
// Every file loads; the readable forms of the four CSE-Autoloss losses agree
// with the DEAP strings the paper published (SPEC §4) in value and gradient, so
// an edit to either side fails here; and every example's gradient matches
// central finite differences in float64 at random points away from its kinks.
// Inputs are drawn as a detector produces them: logits, one-hot labels,
// IoU-valued targets, and valid boxes whose overlaps range from identical to
// disjoint.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <ostream>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "compiler/diagnostics.hpp"
#include "compiler/frontend.hpp"
#include "runtime/interpreter.hpp"

namespace lossforge {
namespace {

namespace fs = std::filesystem;
using Rng = std::mt19937_64;
using Batch = std::vector<Array<double>>;

const fs::path kExamples = fs::path(LOSSFORGE_SOURCE_DIR) / "examples" / "losses";
constexpr size_t kRows = 64;
constexpr size_t kClasses = 6;  // C of the real[C] inputs: 5 classes and background

Module load_example(const std::string& file) { return load_module(SourceFile::read((kExamples / file).string())); }

const Loss& find_loss(const Module& module, const std::string& name) {
  const Loss* loss = module.find(name);
  if (!loss) throw std::runtime_error("no loss " + name);
  return *loss;
}

double uniform(Rng& rng, double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }
bool coin(Rng& rng, double p = 0.5) { return std::bernoulli_distribution(p)(rng); }

// ---- inputs as a detector produces them --------------------------------------

Array<double> logits(Rng& rng, size_t width, double scale = 4) {
  Array<double> a(kRows, width);
  for (double& v : a.data) v = uniform(rng, -scale, scale);
  return a;
}

// One-hot rows; the last class is the background.
Array<double> one_hot(Rng& rng) {
  Array<double> a(kRows, kClasses);
  for (size_t r = 0; r < kRows; ++r) a.row(r)[std::uniform_int_distribution<size_t>(0, kClasses - 1)(rng)] = 1;
  return a;
}

bool is_background(const Array<double>& labels, size_t r) { return labels.row(r)[kClasses - 1] == 1; }

// multi_cls's Z: the IoU of a positive's decoded box in every column, all ones for background rows.
Array<double> iou_map(Rng& rng, const Array<double>& labels) {
  Array<double> z(kRows, kClasses);
  for (size_t r = 0; r < kRows; ++r) std::fill_n(z.row(r), kClasses, is_background(labels, r) ? 1.0 : uniform(rng, 0.3, 0.95));
  return z;
}

// Boxes in pixels, x1 < x2, y1 < y2.
struct Box {
  double x1, y1, x2, y2;
};

double overlap_iou(const Box& p, const Box& g) {
  double w = std::max(0.0, std::min(p.x2, g.x2) - std::max(p.x1, g.x1));
  double h = std::max(0.0, std::min(p.y2, g.y2) - std::max(p.y1, g.y1));
  double i = w * h;
  return i / ((p.x2 - p.x1) * (p.y2 - p.y1) + (g.x2 - g.x1) * (g.y2 - g.y1) - i + 1e-7);
}

// Distinct ends along one axis: min, max and the clamps of the box operators
// are kinks where two ends meet (or an overlap side is exactly 0).
bool ends_apart(double a1, double a2, double b1, double b2) {
  double v[] = {a1, a2, b1, b2};
  for (int i = 0; i < 4; ++i)
    for (int j = i + 1; j < 4; ++j)
      if (std::fabs(v[i] - v[j]) < 0.05) return false;
  return true;
}

// A prediction for ground truth g, of one of the overlap kinds a detector
// sees: near-identical, partial, one inside the other, disjoint.
Box predicted_box(Rng& rng, const Box& g) {
  const double w = g.x2 - g.x1, h = g.y2 - g.y1;
  switch (std::uniform_int_distribution<int>(0, 4)(rng)) {
    case 0:  // a good prediction
      return {g.x1 + uniform(rng, -0.1, 0.1) * w, g.y1 + uniform(rng, -0.1, 0.1) * h,
              g.x2 + uniform(rng, -0.1, 0.1) * w, g.y2 + uniform(rng, -0.1, 0.1) * h};
    case 1: {  // partial overlap: shifted and rescaled
      double cx = (g.x1 + g.x2) / 2 + uniform(rng, -0.8, 0.8) * w, cy = (g.y1 + g.y2) / 2 + uniform(rng, -0.8, 0.8) * h;
      double pw = w * uniform(rng, 0.5, 1.5), ph = h * uniform(rng, 0.5, 1.5);
      return {cx - pw / 2, cy - ph / 2, cx + pw / 2, cy + ph / 2};
    }
    case 2:  // inside the ground truth
      return {g.x1 + uniform(rng, 0.05, 0.3) * w, g.y1 + uniform(rng, 0.05, 0.3) * h,
              g.x2 - uniform(rng, 0.05, 0.3) * w, g.y2 - uniform(rng, 0.05, 0.3) * h};
    case 3:  // around the ground truth
      return {g.x1 - uniform(rng, 0.05, 0.5) * w, g.y1 - uniform(rng, 0.05, 0.5) * h,
              g.x2 + uniform(rng, 0.05, 0.5) * w, g.y2 + uniform(rng, 0.05, 0.5) * h};
    default: {  // disjoint: apart along x, y or both
      double dx = coin(rng) ? uniform(rng, 1.1, 2.5) * w * (coin(rng) ? 1 : -1) : 0;
      double dy = dx == 0 || coin(rng) ? uniform(rng, 1.1, 2.5) * h * (coin(rng) ? 1 : -1) : 0;
      double s = uniform(rng, 0.7, 1.3);
      return {g.x1 + dx, g.y1 + dy, g.x1 + dx + s * w, g.y1 + dy + s * h};
    }
  }
}

// Rows of (P, G) box pairs away from the kinks of the box operators, and with
// an IoU either 0 or well above iou_loss's floor of 1e-6.
std::pair<Array<double>, Array<double>> box_pairs(Rng& rng) {
  Array<double> p(kRows, 4), g(kRows, 4);
  for (size_t r = 0; r < kRows; ++r) {
    Box gt, pred;
    do {
      double x = uniform(rng, 0, 600), y = uniform(rng, 0, 400);
      gt = {x, y, x + uniform(rng, 8, 300), y + uniform(rng, 8, 300)};
      pred = predicted_box(rng, gt);
    } while (!ends_apart(pred.x1, pred.x2, gt.x1, gt.x2) || !ends_apart(pred.y1, pred.y2, gt.y1, gt.y2) ||
             (overlap_iou(pred, gt) > 0 && overlap_iou(pred, gt) < 1e-5));
    const double pv[] = {pred.x1, pred.y1, pred.x2, pred.y2}, gv[] = {gt.x1, gt.y1, gt.x2, gt.y2};
    std::copy_n(pv, 4, p.row(r));
    std::copy_n(gv, 4, g.row(r));
  }
  return {std::move(p), std::move(g)};
}

// binary_cls inputs: X logit, Q the IoU at the ground-truth class of a positive
// (else 0), PY the label, NY = 1 - PY.
Batch binary_cls_inputs(Rng& rng) {
  Array<double> x = logits(rng, 1, 6), q(kRows, 1), py(kRows, 1), ny(kRows, 1);
  for (size_t r = 0; r < kRows; ++r) {
    py.data[r] = coin(rng, 0.3) ? 1 : 0;
    ny.data[r] = 1 - py.data[r];
    q.data[r] = py.data[r] == 1 ? uniform(rng, 0.3, 0.95) : 0;
  }
  return {x, q, py, ny};
}

Batch multi_cls_inputs(Rng& rng) {
  Array<double> y = one_hot(rng);
  return {logits(rng, kClasses), y, iou_map(rng, y)};
}

Batch reg_inputs(Rng& rng) {
  auto [p, g] = box_pairs(rng);
  return {p, g};
}

// Binary targets for the focal loss.
Batch logit_and_label(Rng& rng) {
  Array<double> y(kRows, 1);
  for (double& v : y.data) v = coin(rng, 0.3) ? 1 : 0;
  return {logits(rng, 1, 6), y};
}

// QFL: an IoU-valued target on positives, 0 on negatives; |y - sigmoid(x)| is
// kept away from 0, the kink of abs.
Batch logit_and_quality(Rng& rng) {
  Array<double> x(kRows, 1), y(kRows, 1);
  for (size_t r = 0; r < kRows; ++r) do {
      x.data[r] = uniform(rng, -6, 6);
      y.data[r] = coin(rng, 0.3) ? uniform(rng, 0.1, 0.95) : 0;
    } while (std::fabs(y.data[r] - 1 / (1 + std::exp(-x.data[r]))) < 1e-3);
  return {x, y};
}

// Encoded box deltas: |d - t| avoids abs's kink at 0 and smooth-L1's at beta = 1.
Batch box_deltas(Rng& rng) {
  Array<double> d(kRows, 4), t(kRows, 4);
  for (size_t i = 0; i < d.data.size(); ++i) {
    t.data[i] = std::normal_distribution<double>(0, 1)(rng);
    double gap = coin(rng) ? uniform(rng, 0.05, 0.9) : uniform(rng, 1.1, 3);
    d.data[i] = t.data[i] + (coin(rng) ? gap : -gap);
  }
  return {d, t};
}

Batch logits_and_one_hot(Rng& rng) { return {logits(rng, kClasses), one_hot(rng)}; }

// Every loss of examples/, with how to draw its inputs. A new example without
// an entry here fails EveryExampleHasASampler.
struct Example {
  std::string file;
  std::string loss;
  std::function<Batch(Rng&)> sample;
};

// gtest prints a failing case by its loss name rather than as bytes.
void PrintTo(const Example& e, std::ostream* os) { *os << e.file << " " << e.loss; }

const std::vector<Example>& examples() {
  static const std::vector<Example> all = {
      {"cross_entropy.loss", "cross_entropy", logits_and_one_hot},
      {"rcnn_cross_entropy.loss", "rcnn_cross_entropy", multi_cls_inputs},
      {"focal.loss", "sigmoid_focal", logit_and_label},
      {"box_l1.loss", "l1", box_deltas},
      {"box_l1.loss", "smooth_l1", box_deltas},
      {"iou.loss", "iou_loss", reg_inputs},
      {"giou.loss", "giou", reg_inputs},
      {"diou.loss", "diou", reg_inputs},
      {"qfl.loss", "quality_focal", logit_and_quality},
      {"cse_autoloss_a.loss", "cse_autoloss_a_cls", multi_cls_inputs},
      {"cse_autoloss_a.loss", "cse_autoloss_a_reg", reg_inputs},
      {"cse_autoloss_b.loss", "cse_autoloss_b_cls", binary_cls_inputs},
      {"cse_autoloss_b.loss", "cse_autoloss_b_reg", reg_inputs},
      {"fcos_focal.loss", "fcos_focal", binary_cls_inputs},
  };
  return all;
}

Evaluation<double> run(const Loss& loss, const Batch& batch, bool gradients) {
  EvalOptions options;
  options.gradients = gradients;
  return interpret<double>(loss, std::span<const Array<double>>(batch), options);
}

// |a - b| <= tolerance * scale, where scale is the larger magnitude of the two
// values or of `row_scale` (the largest entry of the row's gradient), so a
// component that is nearly 0 next to large ones is judged on the row's scale.
::testing::AssertionResult agree(double a, double b, double tolerance, double row_scale, double floor) {
  double scale = std::max({std::fabs(a), std::fabs(b), row_scale});
  if (std::isfinite(a) && std::isfinite(b) && std::fabs(a - b) <= tolerance * scale + floor)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << a << " vs " << b << " (difference " << std::fabs(a - b) << ", scale " << scale
                                       << ")";
}

double row_max_abs(const Array<double>& a, size_t r) {
  double m = 0;
  for (size_t c = 0; c < a.width; ++c) m = std::max(m, std::fabs(a.row(r)[c]));
  return m;
}

// ---- every file loads ----------------------------------------------------------

TEST(Examples, EveryFileLoads) {
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(kExamples)) {
    if (entry.path().extension() != ".loss") continue;
    ++files;
    SCOPED_TRACE(entry.path().filename().string());
    try {
      Module module = load_module(SourceFile::read(entry.path().string()));
      EXPECT_FALSE(module.losses.empty());
    } catch (const CompileError& e) {
      ADD_FAILURE() << e.what();
    }
  }
  EXPECT_GE(files, 9u);
}

TEST(Examples, EveryExampleHasASampler) {
  for (const auto& entry : fs::directory_iterator(kExamples)) {
    if (entry.path().extension() != ".loss") continue;
    const std::string file = entry.path().filename().string();
    for (const Loss& loss : load_example(file).losses) {
      bool listed = std::any_of(examples().begin(), examples().end(),
                                [&](const Example& e) { return e.file == file && e.loss == loss.name; });
      EXPECT_TRUE(listed) << file << ": loss " << loss.name << " is not in examples() of this test";
    }
  }
}

// ---- the readable CSE-Autoloss forms are the published ones -------------------

struct Published {
  std::string file;
  std::string loss;
  std::string preset;
  std::string deap;  // SPEC §4, verbatim
  std::function<Batch(Rng&)> sample;
};

void PrintTo(const Published& p, std::ostream* os) { *os << p.file << " " << p.loss; }

const std::vector<Published>& published() {
  static const std::vector<Published> all = {
      {"cse_autoloss_a.loss", "cse_autoloss_a_cls", "multi_cls", "Neg(Dot(Mul(Y,Add(1,Sin(Z))),Log(Softmax(X))))",
       multi_cls_inputs},
      {"cse_autoloss_a.loss", "cse_autoloss_a_reg", "reg",
       "Add(1,Neg(Add(Div(I,U),Neg(Div(Add(E,Neg(Add(I,2))),E)))))", reg_inputs},
      {"cse_autoloss_b.loss", "cse_autoloss_b_cls", "binary_cls",
       "Neg(Add(Mul(Q,Mul(Add(1,Serf(Sig(NY))),Log(Sig(X)))),Mul(Add(Sgdf(X),Neg(Q)),Mul(Add(Add(1,Neg(Q)),Neg(Add("
       "1,Neg(Sig(X))))),Log(Add(1,Neg(Sig(X))))))))",
       binary_cls_inputs},
      {"cse_autoloss_b.loss", "cse_autoloss_b_reg", "reg",
       "Neg(Div(Add(Div(Neg(Add(Neg(E),Add(1,I))),Neg(Add(3,Add(2,U)))),Add(Div(E,E),Div(Neg(E),Neg(1)))),Neg(Add("
       "Div(Neg(Add(U,Div(I,1))),Neg(3)),Neg(E)))))",
       reg_inputs},
  };
  return all;
}

class PublishedForm : public ::testing::TestWithParam<Published> {};

TEST_P(PublishedForm, ReadableFormAgreesWithTheDeapString) {
  const Published& p = GetParam();
  const Module module = load_example(p.file);
  const Loss& readable = find_loss(module, p.loss);
  const Preset* preset = find_preset(p.preset);
  ASSERT_NE(preset, nullptr);
  const Loss deap = load_formula(SourceFile::from_text("<published>", p.deap), *preset);

  // Same signature, so that one batch (and one IN.json) feeds both.
  ASSERT_EQ(readable.inputs.size(), deap.inputs.size());
  for (size_t i = 0; i < deap.inputs.size(); ++i) {
    EXPECT_EQ(readable.inputs[i].name, deap.inputs[i].name);
    EXPECT_EQ(readable.inputs[i].type.kind(), deap.inputs[i].type.kind());
    EXPECT_EQ(readable.inputs[i].pred, deap.inputs[i].pred);
  }

  Rng rng(20210503);
  for (int trial = 0; trial < 8; ++trial) {
    const Batch batch = p.sample(rng);
    const Evaluation<double> a = run(readable, batch, true), b = run(deap, batch, true);
    ASSERT_EQ(a.grads.size(), b.grads.size());
    for (size_t r = 0; r < kRows; ++r) {
      ASSERT_TRUE(agree(a.loss[r], b.loss[r], 1e-12, 0, 0)) << "loss, row " << r;
      for (size_t g = 0; g < a.grads.size(); ++g) {
        double scale = std::max(row_max_abs(a.grads[g], r), row_max_abs(b.grads[g], r));
        for (size_t c = 0; c < a.grads[g].width; ++c)
          ASSERT_TRUE(agree(a.grads[g].row(r)[c], b.grads[g].row(r)[c], 1e-12, scale, 0))
              << "gradient, row " << r << ", column " << c;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(CseAutoloss, PublishedForm, ::testing::ValuesIn(published()),
                         [](const auto& info) { return info.param.loss; });

// ---- gradients against finite differences --------------------------------------

// Central differences of each row's loss with respect to every value of input
// `which`; rows are independent, so one column of all rows moves at once.
Array<double> numeric_gradient(const Loss& loss, Batch batch, size_t which) {
  Array<double>& x = batch[which];
  Array<double> grad(x.rows, x.width);
  for (size_t c = 0; c < x.width; ++c) {
    std::vector<double> original(x.rows), step(x.rows);
    for (size_t r = 0; r < x.rows; ++r) {
      original[r] = x.row(r)[c];
      step[r] = 1e-6 * std::max(1.0, std::fabs(original[r]));
    }
    for (size_t r = 0; r < x.rows; ++r) x.row(r)[c] = original[r] + step[r];
    const std::vector<double> up = run(loss, batch, false).loss;
    for (size_t r = 0; r < x.rows; ++r) x.row(r)[c] = original[r] - step[r];
    const std::vector<double> down = run(loss, batch, false).loss;
    for (size_t r = 0; r < x.rows; ++r) {
      x.row(r)[c] = original[r];
      grad.row(r)[c] = (up[r] - down[r]) / (2 * step[r]);
    }
  }
  return grad;
}

class ExampleGradient : public ::testing::TestWithParam<Example> {};

TEST_P(ExampleGradient, MatchesFiniteDifferences) {
  const Example& e = GetParam();
  const Module module = load_example(e.file);
  const Loss& loss = find_loss(module, e.loss);
  const std::vector<size_t> preds = loss.pred_inputs();
  ASSERT_FALSE(preds.empty());

  Rng rng(std::hash<std::string>{}(e.loss) ^ 0x5eed);
  for (int trial = 0; trial < 4; ++trial) {
    const Batch batch = e.sample(rng);
    const Evaluation<double> result = run(loss, batch, true);
    ASSERT_EQ(result.grads.size(), preds.size());
    for (size_t g = 0; g < preds.size(); ++g) {
      const Array<double> numeric = numeric_gradient(loss, batch, preds[g]);
      const Array<double>& exact = result.grads[g];
      for (size_t r = 0; r < kRows; ++r) {
        ASSERT_TRUE(std::isfinite(result.loss[r])) << "row " << r;
        double scale = row_max_abs(exact, r);
        for (size_t c = 0; c < exact.width; ++c)
          ASSERT_TRUE(agree(exact.row(r)[c], numeric.row(r)[c], 1e-6, scale, 1e-10))
              << loss.inputs[preds[g]].name << ", row " << r << ", column " << c;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Examples, ExampleGradient, ::testing::ValuesIn(examples()),
                         [](const auto& info) { return info.param.loss; });

}  // namespace
}  // namespace lossforge
