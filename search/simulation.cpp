#include "search/simulation.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "compiler/frontend.hpp"
#include "runtime/interpreter.hpp"
#include "search/box_math.hpp"
#include "search/convergence.hpp"

namespace lossforge {
namespace {

std::string num(double v) {
  std::ostringstream s;
  s.precision(4);
  s << v;
  return s.str();
}

// SGD with momentum 0.9, gradient-norm clipping and a cosine decay of the
// learning rate to zero: how detectors are trained, so a candidate's gradient
// scale matters as it will in the proxy training.
struct Sgd {
  Sgd(size_t n, double lr, int total, double clip) : lr(lr), clip(clip), total(std::max(1, total)), velocity(n) {}
  // step_scale: per-parameter factor on the step (1 when null).
  void step(std::vector<double>& params, const std::vector<double>& grad, const double* step_scale = nullptr) {
    const double lr_now = lr * 0.5 * (1 + std::cos(M_PI * std::min(1.0, double(t++) / total)));
    double norm = 0;
    for (double g : grad) norm += g * g;
    norm = std::sqrt(norm);
    const double shrink = norm > clip ? clip / norm : 1;
    for (size_t i = 0; i < params.size(); ++i) {
      velocity[i] = 0.9 * velocity[i] + shrink * grad[i];
      params[i] -= (step_scale ? step_scale[i] : 1) * lr_now * velocity[i];
    }
  }
  double lr, clip;
  int total, t = 0;
  std::vector<double> velocity;
};

// Average precision of `scores` for the samples marked positive; ties count
// against the positives (a constant score ranks nothing).
double average_precision(const std::vector<double>& scores, const std::vector<char>& positive) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (scores[a] != scores[b]) return scores[a] > scores[b];
    return positive[a] < positive[b];
  });
  double hits = 0, sum = 0;
  for (size_t k = 0; k < order.size(); ++k)
    if (positive[order[k]]) sum += ++hits / double(k + 1);
  return hits > 0 ? sum / hits : 0;
}

bool all_finite(const std::vector<double>& v) {
  return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

// ---- binary_cls ---------------------------------------------------------------

constexpr double kGridLo = -12, kGridHi = 12;
constexpr int kGridPoints = 97;
const double kTargets[] = {0.3, 0.5, 0.7, 0.9};  // Q of the positive kinds 1..4; kind 0 is a negative
constexpr int kKinds = 5;
constexpr int kFeatures = 3;

struct BinarySample {
  double f[kFeatures + 1];  // features and a constant 1 for the bias
  int kind;
};

std::vector<BinarySample> binary_samples(size_t n, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> z(0, 1);
  std::vector<BinarySample> out(n);
  for (BinarySample& s : out) {
    const double r = u(rng);
    if (r < 0.05) {  // positive, better localised ones slightly easier to tell apart
      s.kind = 1 + int(rng() % 4);
      const double q = kTargets[s.kind - 1];
      s.f[0] = 0.5 + 2 * q + 0.8 * z(rng);
      s.f[1] = 1 + z(rng);
    } else if (r < 0.20) {  // hard negative
      s.kind = 0;
      s.f[0] = 0.5 + 0.8 * z(rng);
      s.f[1] = z(rng);
    } else {  // easy negative
      s.kind = 0;
      s.f[0] = -3 + z(rng);
      s.f[1] = -1 + z(rng);
    }
    s.f[2] = z(rng);
    s.f[3] = 1;
  }
  return out;
}

SimulationResult simulate_binary(const Loss& loss, const SimulationOptions& o) {
  SimulationResult result;
  result.metric_name = "AP";
  // The candidate's dL/dX on a grid of logits, per kind of sample: one batch.
  std::vector<Array<double>> inputs;
  for (int i = 0; i < 4; ++i) inputs.emplace_back(size_t(kKinds * kGridPoints), 1);
  for (int k = 0; k < kKinds; ++k)
    for (int g = 0; g < kGridPoints; ++g) {
      const size_t r = size_t(k * kGridPoints + g);
      inputs[0].data[r] = kGridLo + (kGridHi - kGridLo) * g / (kGridPoints - 1);
      inputs[1].data[r] = k ? kTargets[k - 1] : 0;
      inputs[2].data[r] = k ? 1 : 0;
      inputs[3].data[r] = k ? 0 : 1;
    }
  EvalOptions eval_options;
  eval_options.gradients = true;
  const Evaluation<double> eval = interpret<double>(loss, inputs, eval_options);
  const std::vector<double>& table = eval.grads.at(0).data;
  if (!all_finite(table)) {
    result.metric = NAN;
    result.detail = "non-finite gradient for logits in [-12, 12]";
    return result;
  }
  auto slope = [&](int kind, double x) {
    const double at = std::clamp((x - kGridLo) / (kGridHi - kGridLo) * (kGridPoints - 1), 0.0, double(kGridPoints - 1));
    const int i = std::min(int(at), kGridPoints - 2);
    const double t = at - i;
    const double* row = table.data() + kind * kGridPoints;
    return row[i] * (1 - t) + row[i + 1] * t;
  };

  std::mt19937_64 rng(o.seed);
  std::vector<BinarySample> train = binary_samples(1000, rng), test = binary_samples(2000, rng);
  // Standardised features: a loss whose gradient ignores the sample learns nothing.
  for (int j = 0; j < kFeatures; ++j) {
    double mean = 0, square = 0;
    for (const BinarySample& s : train) mean += s.f[j] / train.size();
    for (const BinarySample& s : train) square += (s.f[j] - mean) * (s.f[j] - mean) / train.size();
    const double sd = std::sqrt(square) + 1e-12;
    for (auto* set : {&train, &test})
      for (BinarySample& s : *set) s.f[j] = (s.f[j] - mean) / sd;
  }
  std::vector<double> w(kFeatures + 1, 0.0), grad(kFeatures + 1);
  w[kFeatures] = std::log(0.01 / 0.99);  // the usual prior: p = 0.01 at the start
  const double positives = std::max<double>(1, std::count_if(train.begin(), train.end(), [](const BinarySample& s) { return s.kind != 0; }));
  Sgd sgd(w.size(), 0.1 * o.learning_rate, o.steps, 10);
  for (int step = 0; step < o.steps; ++step) {
    std::fill(grad.begin(), grad.end(), 0.0);
    for (const BinarySample& s : train) {
      double x = 0;
      for (int j = 0; j <= kFeatures; ++j) x += w[j] * s.f[j];
      const double g = (s.kind ? 0.25 : 0.75) * slope(s.kind, x) / positives;  // normalised as FCOS does
      for (int j = 0; j <= kFeatures; ++j) grad[j] += g * s.f[j];
    }
    sgd.step(w, grad);
  }
  std::vector<double> scores;
  std::vector<char> positive;
  for (const BinarySample& s : test) {
    double x = 0;
    for (int j = 0; j <= kFeatures; ++j) x += w[j] * s.f[j];
    scores.push_back(x);
    positive.push_back(s.kind != 0);
  }
  result.metric = all_finite(w) ? average_precision(scores, positive) : NAN;
  return result;
}

// ---- multi_cls ----------------------------------------------------------------

constexpr size_t kClasses = 4;  // 3 classes and the background (last)
constexpr size_t kMultiFeatures = 4;

struct MultiData {
  Array<double> features;  // rows × (kMultiFeatures + 1)
  Array<double> y, z;      // rows × kClasses
  std::vector<size_t> label;
};

MultiData multi_samples(size_t n, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0, 1), iou(0.3, 0.95);
  std::normal_distribution<double> z(0, 1);
  MultiData d{Array<double>(n, kMultiFeatures + 1), Array<double>(n, kClasses), Array<double>(n, kClasses), {}};
  for (size_t r = 0; r < n; ++r) {
    const size_t label = u(rng) < 0.6 ? kClasses - 1 : rng() % (kClasses - 1);
    const double q = label == kClasses - 1 ? 1 : iou(rng);
    double* f = d.features.row(r);
    for (size_t j = 0; j < kMultiFeatures; ++j) f[j] = (j == label ? 1.5 : 0) + z(rng);
    f[kMultiFeatures] = 1;
    for (size_t c = 0; c < kClasses; ++c) {
      d.y.row(r)[c] = c == label ? 1 : 0;
      d.z.row(r)[c] = q;
    }
    d.label.push_back(label);
  }
  return d;
}

std::vector<double> logits(const MultiData& d, const std::vector<double>& w) {
  std::vector<double> out(d.label.size() * kClasses, 0.0);
  for (size_t r = 0; r < d.label.size(); ++r)
    for (size_t c = 0; c < kClasses; ++c)
      for (size_t j = 0; j <= kMultiFeatures; ++j) out[r * kClasses + c] += w[c * (kMultiFeatures + 1) + j] * d.features.row(r)[j];
  return out;
}

SimulationResult simulate_multi(const Loss& loss, const SimulationOptions& o) {
  SimulationResult result;
  result.metric_name = "AP";
  std::mt19937_64 rng(o.seed);
  const MultiData train = multi_samples(256, rng), test = multi_samples(1000, rng);
  const size_t n = train.label.size();
  std::vector<double> w(kClasses * (kMultiFeatures + 1), 0.0), grad(w.size());
  std::vector<Array<double>> inputs = {Array<double>(n, kClasses), train.y, train.z};
  EvalOptions eval_options;
  eval_options.gradients = true;
  const int steps = std::max(1, o.steps / 2);  // each step is an interpreter batch here
  Sgd sgd(w.size(), 0.5 * o.learning_rate, steps, 10);
  for (int step = 0; step < steps; ++step) {
    inputs[0].data = logits(train, w);
    const Evaluation<double> eval = interpret<double>(loss, inputs, eval_options);
    const std::vector<double>& g = eval.grads.at(0).data;
    if (!all_finite(g)) {
      result.metric = NAN;
      result.detail = "non-finite gradient at step " + std::to_string(step);
      return result;
    }
    std::fill(grad.begin(), grad.end(), 0.0);
    for (size_t r = 0; r < n; ++r)
      for (size_t c = 0; c < kClasses; ++c)
        for (size_t j = 0; j <= kMultiFeatures; ++j)
          grad[c * (kMultiFeatures + 1) + j] += g[r * kClasses + c] * train.features.row(r)[j] / double(n);
    sgd.step(w, grad);
  }
  const std::vector<double> x = logits(test, w);
  double ap = 0;
  for (size_t c = 0; c + 1 < kClasses; ++c) {
    std::vector<double> scores;
    std::vector<char> positive;
    for (size_t r = 0; r < test.label.size(); ++r) {
      const double* row = x.data() + r * kClasses;
      const double top = *std::max_element(row, row + kClasses);
      double total = 0;
      for (size_t k = 0; k < kClasses; ++k) total += std::exp(row[k] - top);
      scores.push_back(std::exp(row[c] - top) / total);
      positive.push_back(test.label[r] == c);
    }
    ap += average_precision(scores, positive) / (kClasses - 1);
  }
  result.metric = all_finite(w) ? ap : NAN;
  return result;
}

// ---- reg ----------------------------------------------------------------------

SimulationResult simulate_reg(const Loss& loss, const SimulationOptions& o) {
  SimulationResult result;
  result.metric_name = "IoU";
  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<double> pos(0, 400), size(40, 160), inside(0.1, 0.9), factor(0.2, 2.0);
  const size_t n = 48;
  Array<double> P(n, 4), G(n, 4);
  std::vector<double> step_scale(n * 4);
  for (size_t r = 0; r < n; ++r) {
    const double x1 = pos(rng), y1 = pos(rng), w = size(rng), h = size(rng);
    const double g[4] = {x1, y1, x1 + w, y1 + h};
    std::copy(g, g + 4, G.row(r));
    // As FCOS predicts: distances to the four sides from a point inside the
    // target, each off by a random factor (so the boxes always overlap).
    const double px = x1 + inside(rng) * w, py = y1 + inside(rng) * h;
    const double p[4] = {px - factor(rng) * (px - g[0]), py - factor(rng) * (py - g[1]),
                         px + factor(rng) * (g[2] - px), py + factor(rng) * (g[3] - py)};
    std::copy(p, p + 4, P.row(r));
    for (int k = 0; k < 4; ++k) step_scale[r * 4 + k] = w * h;  // IoU-like gradients scale as 1/size
  }
  std::vector<Array<double>> inputs = {P, G};
  EvalOptions eval_options;
  eval_options.gradients = true;
  const int steps = std::max(1, o.steps / 2);
  Sgd sgd(P.data.size(), 0.05 * o.learning_rate, steps, INFINITY);
  for (int step = 0; step < steps; ++step) {
    const Evaluation<double> eval = interpret<double>(loss, inputs, eval_options);
    const std::vector<double>& g = eval.grads.at(0).data;
    if (!all_finite(g)) {
      result.metric = NAN;
      result.detail = "non-finite gradient at step " + std::to_string(step);
      return result;
    }
    sgd.step(inputs[0].data, g, step_scale.data());
  }
  double iou = 0;
  for (size_t r = 0; r < n; ++r) iou += box_iou(inputs[0].row(r), G.row(r)) / n;
  result.metric = all_finite(inputs[0].data) ? iou : NAN;
  return result;
}

SimulationResult simulate(const Loss& loss, const Preset& preset, const SimulationOptions& o) {
  if (preset.name == "binary_cls") return simulate_binary(loss, o);
  if (preset.name == "multi_cls") return simulate_multi(loss, o);
  return simulate_reg(loss, o);
}

double reference_metric(const Preset& preset, const SimulationOptions& o) {
  static std::mutex mutex;
  static std::map<std::tuple<std::string, int, double, uint64_t>, double> cache;
  const auto key = std::make_tuple(preset.name, o.steps, o.learning_rate, o.seed);
  {
    std::lock_guard lock(mutex);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
  }
  const Loss reference = load_formula(SourceFile::from_text("<reference>", reference_formula(preset)), preset, "reference");
  const double metric = simulate(reference, preset, o).metric;
  std::lock_guard lock(mutex);
  cache.emplace(key, metric);
  return metric;
}

}  // namespace

std::string reference_formula(const Preset& preset) {
  if (preset.name == "binary_cls")
    return "PY * (1 - sigmoid(X))^2 * softplus(-X) + NY * sigmoid(X)^2 * softplus(X)";  // focal, γ = 2
  if (preset.name == "multi_cls") return "-dot(Y, log_softmax(X))";                    // cross-entropy
  return "1 - I / U + (E - U) / E";                                                     // GIoU
}

SimulationResult simulate_optimization(const Loss& loss, const Preset& preset, const SimulationOptions& options) {
  const Preset* fits = matching_preset(loss);
  if (fits == nullptr || fits->name != preset.name)
    throw std::invalid_argument("simulate_optimization: " + loss.name + " does not have the signature of preset " + preset.name);
  SimulationResult result = simulate(loss, preset, options);
  result.reference = reference_metric(preset, options);
  const double needed = options.min_ratio * result.reference;
  result.passed = std::isfinite(result.metric) && result.metric >= needed;
  if (result.detail.empty())
    result.detail = result.metric_name + " " + num(result.metric) + (result.passed ? " >= " : " < ") + num(needed) +
                    " (" + num(options.min_ratio) + " x reference " + num(result.reference) + ")";
  return result;
}

}  // namespace lossforge
