#include "search/fingerprint.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <map>
#include <random>

#include "runtime/interpreter.hpp"

namespace lossforge {
namespace {

constexpr size_t kClasses = 5;  // real[C] probes: 4 classes and the background

uint64_t mix(uint64_t h, uint64_t v) {
  v += 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  v = (v ^ (v >> 30)) * 0xBF58476D1CE4E5B9ull;
  v = (v ^ (v >> 27)) * 0x94D049BB133111EBull;
  return h ^ v ^ (v >> 31);
}

// The cell of one number on a grid shifted by `offset` cells; NaN and the
// infinities get cells no finite number reaches.
int64_t cell(double v, double offset) {
  if (std::isnan(v)) return INT64_MIN;
  if (std::isinf(v)) return v > 0 ? INT64_MAX : INT64_MIN + 1;
  return static_cast<int64_t>(std::floor(std::asinh(v) / kFingerprintTolerance + offset));
}

double uniform(std::mt19937_64& rng, double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }

// Probes for the inputs of a classification preset, by input name.
void fill_row(const std::string& name, Array<double>& a, size_t r, bool positive, size_t label, double iou,
              std::mt19937_64& rng) {
  double* row = a.row(r);
  if (name == "X") {
    for (size_t c = 0; c < a.width; ++c) row[c] = uniform(rng, -4, 4);  // logits
  } else if (name == "Y") {
    for (size_t c = 0; c < a.width; ++c) row[c] = c == label ? 1 : 0;   // one-hot, background last
  } else if (name == "Z") {
    for (size_t c = 0; c < a.width; ++c) row[c] = positive ? iou : 1;   // IoU row; ones for background
  } else if (name == "Q") {
    row[0] = positive ? iou : 0;
  } else if (name == "PY") {
    row[0] = positive ? 1 : 0;
  } else if (name == "NY") {
    row[0] = positive ? 0 : 1;
  } else {
    for (size_t c = 0; c < a.width; ++c) row[c] = uniform(rng, -2, 2);
  }
}

void fill_box_pair(Array<double>& p, Array<double>& g, size_t r, std::mt19937_64& rng) {
  double* gt = g.row(r);
  const double w = uniform(rng, 10, 120), h = uniform(rng, 10, 120);
  gt[0] = uniform(rng, 0, 400);
  gt[1] = uniform(rng, 0, 400);
  gt[2] = gt[0] + w;
  gt[3] = gt[1] + h;
  // From near-perfect to disjoint: jitter by a growing fraction of the size.
  const double spread = 0.02 + 1.5 * double(r % 8) / 8.0;
  double* pr = p.row(r);
  for (int k = 0; k < 4; ++k) pr[k] = gt[k] + uniform(rng, -spread, spread) * (k % 2 ? h : w);
  if (pr[2] < pr[0] + 1) pr[2] = pr[0] + 1;  // keep predictions proper boxes
  if (pr[3] < pr[1] + 1) pr[3] = pr[1] + 1;
}

}  // namespace

std::vector<Array<double>> probe_inputs(const Preset& preset, size_t rows, uint64_t seed) {
  std::mt19937_64 rng(seed ^ std::hash<std::string>{}(preset.name));
  std::vector<Array<double>> arrays;
  for (const LossInput& in : preset.inputs)
    arrays.emplace_back(rows, in.type.is_box() ? 4 : in.type.is_vec() ? kClasses : 1);
  const bool boxes = std::any_of(preset.inputs.begin(), preset.inputs.end(), [](const LossInput& i) { return i.type.is_box(); });
  for (size_t r = 0; r < rows; ++r) {
    if (boxes) {
      fill_box_pair(arrays.at(0), arrays.at(1), r, rng);
      continue;
    }
    const bool positive = r % 3 != 2;  // a third background rows
    const size_t label = positive ? r % (kClasses - 1) : kClasses - 1;
    const double iou = uniform(rng, 0.05, 0.95);
    for (size_t i = 0; i < preset.inputs.size(); ++i) fill_row(preset.inputs[i].name, arrays[i], r, positive, label, iou, rng);
  }
  return arrays;
}

Fingerprint fingerprint(const Preset& preset, const Expr& candidate) {
  // The probes are the same for every candidate of a preset: built once.
  static std::mutex mutex;
  static std::map<std::string, std::vector<Array<double>>> probes;
  const std::vector<Array<double>>* inputs;
  {
    std::lock_guard lock(mutex);
    auto it = probes.find(preset.name);
    if (it == probes.end()) it = probes.emplace(preset.name, probe_inputs(preset)).first;
    inputs = &it->second;
  }
  Loss loss;
  loss.name = "candidate";
  loss.inputs = preset.inputs;
  loss.body = candidate;
  EvalOptions options;
  options.gradients = true;
  const Evaluation<double> eval = interpret<double>(loss, *inputs, options);
  Fingerprint f{0x243F6A8885A308D3ull, 0x13198A2E03707344ull};
  auto add = [&](double v) {
    f.grid = mix(f.grid, static_cast<uint64_t>(cell(v, 0)));
    f.offset_grid = mix(f.offset_grid, static_cast<uint64_t>(cell(v, 0.5)));
  };
  // Values relative to the first finite one: a constant added to a loss changes
  // no gradient, so it trains the same (the 30-minute search of issue 8 trained
  // Log(Sig(X)) - Sin(1), - Sin(2) and - Sin(Sin(1)) for the same AP).
  const auto finite = std::find_if(eval.loss.begin(), eval.loss.end(), [](double v) { return std::isfinite(v); });
  const double reference = finite == eval.loss.end() ? 0.0 : *finite;
  for (double v : eval.loss) add(v - reference);
  for (const Array<double>& g : eval.grads)
    for (double v : g.data) add(v);
  return f;
}

bool FingerprintSet::insert(const Fingerprint& f) {
  if (grid_.count(f.grid) || offset_grid_.count(f.offset_grid)) return false;
  grid_.insert(f.grid);
  offset_grid_.insert(f.offset_grid);
  return true;
}

}  // namespace lossforge
