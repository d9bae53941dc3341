#include "search/convergence.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "compiler/print.hpp"
#include "runtime/interpreter.hpp"
#include "search/box_math.hpp"

namespace lossforge {
namespace {

constexpr size_t kWidth = 4;  // multi_cls rows: 3 classes and the background (last)

// One trajectory of the simulated batch: rows [begin, begin + count) along which
// the loss must fall ("falls") or rise ("rises").
struct Segment {
  enum Kind { Falls, Rises, FiniteOnly } kind;
  size_t begin = 0, count = 0;
  int moving = 0;  // multi_cls: the column whose logit moves
};

struct Probes {
  std::vector<Array<double>> inputs;
  std::vector<Array<float>> single;  // the same in float32
  std::vector<Segment> segments;
  // reg only: for each perfect-match row, the rows it must be no worse than.
  std::vector<std::pair<size_t, std::vector<size_t>>> matches;
};

std::string num(double v) {
  std::ostringstream s;
  s.precision(4);
  s << v;
  return s.str();
}

std::string box_text(const double* b) {
  return "[" + num(b[0]) + "," + num(b[1]) + "," + num(b[2]) + "," + num(b[3]) + "]";
}

std::string row_text(const double* r, size_t width) {
  std::string s = "[";
  for (size_t c = 0; c < width; ++c) s += (c ? "," : "") + num(r[c]);
  return s + "]";
}

double logit(double p) { return std::log(p / (1 - p)); }

// ---- simulated inputs ---------------------------------------------------------

Probes binary_probes(const ConvergenceOptions& o) {
  struct Row { double x, q, py; };
  std::vector<Row> rows;
  std::vector<Segment> segments;
  const int n = std::max(o.points, 3);
  auto sweep = [&](Segment::Kind kind, double from, double to, double q, double py) {
    segments.push_back({kind, rows.size(), size_t(n), 0});
    for (int k = 0; k < n; ++k) rows.push_back({from + (to - from) * k / (n - 1), q, py});
  };
  for (double q : {0.5, 0.75, 0.95}) sweep(Segment::Falls, logit(0.01), logit(q), q, 1);
  sweep(Segment::Rises, -8, 8, 0, 0);
  for (double q : {0.05, 0.5, 1.0}) sweep(Segment::FiniteOnly, -15, 15, q, 1);
  sweep(Segment::FiniteOnly, -15, 15, 0, 0);
  Probes p;
  for (int i = 0; i < 4; ++i) p.inputs.emplace_back(rows.size(), 1);
  for (size_t r = 0; r < rows.size(); ++r) {
    p.inputs[0].data[r] = rows[r].x;
    p.inputs[1].data[r] = rows[r].q;
    p.inputs[2].data[r] = rows[r].py;
    p.inputs[3].data[r] = 1 - rows[r].py;
  }
  p.segments = std::move(segments);
  return p;
}

Probes multi_probes(const ConvergenceOptions& o) {
  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<double> base(-2, 2), wide(-15, 15);
  const int n = std::max(o.points, 3);
  std::vector<std::array<double, 3 * kWidth>> rows;  // X, Y, Z of one row
  Probes p;
  auto start_row = [&](size_t label, double iou) {
    std::array<double, 3 * kWidth> r{};
    for (size_t c = 0; c < kWidth; ++c) {
      r[c] = base(rng);
      r[kWidth + c] = c == label ? 1 : 0;
      r[2 * kWidth + c] = label == kWidth - 1 ? 1 : iou;
    }
    return r;
  };
  // Positives of each class (two IoU values) and background rows.
  const std::vector<std::pair<size_t, double>> kinds = {{0, 0.9}, {1, 0.6}, {2, 0.75}, {kWidth - 1, 1}, {kWidth - 1, 1}};
  for (auto [label, iou] : kinds) {
    const auto start = start_row(label, iou);
    const size_t other = (label + 1 + rng() % (kWidth - 1)) % kWidth;
    for (auto [kind, column] : {std::pair{Segment::Falls, label}, std::pair{Segment::Rises, other}}) {
      p.segments.push_back({kind, rows.size(), size_t(n), int(column)});
      for (int k = 0; k < n; ++k) {
        auto r = start;
        r[column] = -6 + 12.0 * k / (n - 1);
        rows.push_back(r);
      }
    }
  }
  // Confident logits of every size, for finiteness.
  const size_t finite_begin = rows.size();
  for (int k = 0; k < 4 * n; ++k) {
    auto r = start_row(size_t(k) % kWidth, 0.3 + 0.6 * (k % 5) / 4);
    for (size_t c = 0; c < kWidth; ++c) r[c] = wide(rng);
    rows.push_back(r);
  }
  p.segments.push_back({Segment::FiniteOnly, finite_begin, rows.size() - finite_begin, 0});
  for (int i = 0; i < 3; ++i) p.inputs.emplace_back(rows.size(), kWidth);
  for (size_t r = 0; r < rows.size(); ++r)
    for (int i = 0; i < 3; ++i)
      std::copy_n(rows[r].begin() + i * kWidth, kWidth, p.inputs[i].row(r));
  return p;
}

Probes reg_probes(const ConvergenceOptions& o) {
  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<double> pos(0, 300), size(20, 200);
  const int n = std::max(o.points, 3);
  std::vector<std::array<double, 8>> rows;  // P then G
  Probes p;
  for (int g = 0; g < 6; ++g) {
    const double x1 = pos(rng), y1 = pos(rng), w = size(rng), h = size(rng);
    const std::array<double, 4> gt = {x1, y1, x1 + w, y1 + h};
    const double cx = x1 + w / 2, cy = y1 + h / 2;
    // Starts: shifted, larger, smaller, disjoint, a different aspect ratio.
    const std::vector<std::array<double, 4>> starts = {
        {x1 + 0.5 * w, y1 + 0.3 * h, x1 + 1.5 * w, y1 + 1.3 * h},
        {cx - w, cy - h, cx + w, cy + h},
        {cx - 0.2 * w, cy - 0.2 * h, cx + 0.2 * w, cy + 0.2 * h},
        {x1 - 1.8 * w, y1 + 0.2 * h, x1 - 0.8 * w, y1 + 1.2 * h},
        {cx - 1.2 * w, cy - 0.2 * h, cx + 1.2 * w, cy + 0.2 * h},
    };
    std::vector<size_t> others;
    for (const auto& s : starts) {
      p.segments.push_back({Segment::Falls, rows.size(), size_t(n), 0});
      for (int k = 0; k < n; ++k) {
        const double t = double(k) / (n - 1);
        std::array<double, 8> r{};
        for (int c = 0; c < 4; ++c) r[c] = s[c] + t * (gt[c] - s[c]);
        std::copy(gt.begin(), gt.end(), r.begin() + 4);
        others.push_back(rows.size());
        rows.push_back(r);
      }
    }
    // Small moves of each corner coordinate, both ways.
    for (int c = 0; c < 4; ++c)
      for (double sign : {-1.0, 1.0}) {
        std::array<double, 8> r{};
        std::copy(gt.begin(), gt.end(), r.begin());
        std::copy(gt.begin(), gt.end(), r.begin() + 4);
        r[c] += sign * 0.02 * (c % 2 ? h : w);
        others.push_back(rows.size());
        rows.push_back(r);
      }
    std::array<double, 8> exact{};
    std::copy(gt.begin(), gt.end(), exact.begin());
    std::copy(gt.begin(), gt.end(), exact.begin() + 4);
    p.matches.push_back({rows.size(), others});
    rows.push_back(exact);
  }
  p.inputs.emplace_back(rows.size(), 4);
  p.inputs.emplace_back(rows.size(), 4);
  for (size_t r = 0; r < rows.size(); ++r) {
    std::copy_n(rows[r].begin(), 4, p.inputs[0].row(r));
    std::copy_n(rows[r].begin() + 4, 4, p.inputs[1].row(r));
  }
  return p;
}

const Probes& probes_for(const Preset& preset, const ConvergenceOptions& o) {
  static std::mutex mutex;
  static std::map<std::tuple<std::string, int, uint64_t>, Probes> cache;
  std::lock_guard lock(mutex);
  auto key = std::make_tuple(preset.name, o.points, o.seed);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  Probes p = preset.name == "binary_cls" ? binary_probes(o)
             : preset.name == "multi_cls" ? multi_probes(o)
                                          : reg_probes(o);
  for (const Array<double>& a : p.inputs)
    p.single.emplace_back(a.rows, a.width, std::vector<float>(a.data.begin(), a.data.end()));
  return cache.emplace(key, std::move(p)).first->second;
}

// ---- the checks ---------------------------------------------------------------

class Checker {
 public:
  Checker(const Preset& preset, const Probes& probes, const Evaluation<double>& eval, const ConvergenceOptions& o)
      : preset_(preset), probes_(probes), eval_(eval), o_(o) {}

  // In double (where the other properties are checked) and in float32, where
  // training runs: U / I with disjoint boxes is 1e24, finite in double only.
  PropertyCheck finite(const Evaluation<float>& single) const {
    if (auto failed = first_non_finite(eval_, "")) return *failed;
    if (auto failed = first_non_finite(single, " (float32)")) return *failed;
    return pass("finite", std::to_string(eval_.loss.size()) + " simulated inputs, loss and gradient finite in float64 and float32");
  }

  // Classification: along each segment of `kind` the loss must fall (Falls) or rise (Rises).
  PropertyCheck monotone(Segment::Kind kind, const std::string& property) const {
    size_t count = 0;
    for (const Segment& s : probes_.segments) {
      if (s.kind != kind) continue;
      ++count;
      const double sign = kind == Segment::Falls ? 1 : -1;  // compare sign·loss, which must fall
      for (size_t k = 1; k < s.count; ++k) {
        const size_t a = s.begin + k - 1, b = s.begin + k;
        if (sign * (eval_.loss[b] - eval_.loss[a]) > slack(eval_.loss[a]))
          return fail(property, move_text(s, a, b));
      }
      const size_t first = s.begin, last = s.begin + s.count - 1;
      if (!(sign * (eval_.loss[first] - eval_.loss[last]) > slack(eval_.loss[first])))
        return fail(property, move_text(s, first, last) + " (no change end to end)");
    }
    return pass(property, std::to_string(count) + " trajectories of " + std::to_string(o_.points) + " points");
  }

  // Regression: along each trajectory, the loss falls wherever the IoU rises.
  PropertyCheck falls_with_iou() const {
    const Array<double>& P = probes_.inputs[0];
    const Array<double>& G = probes_.inputs[1];
    for (const Segment& s : probes_.segments) {
      for (size_t k = 1; k < s.count; ++k) {
        const size_t a = s.begin + k - 1, b = s.begin + k;
        const double iou_a = box_iou(P.row(a), G.row(a)), iou_b = box_iou(P.row(b), G.row(b));
        if (iou_b > iou_a + 1e-12 && eval_.loss[b] - eval_.loss[a] > slack(eval_.loss[a]))
          return fail("falls as IoU rises", box_move_text(a, b));
      }
      const size_t first = s.begin, last = s.begin + s.count - 1;
      if (!(eval_.loss[first] - eval_.loss[last] > slack(eval_.loss[first])))
        return fail("falls as IoU rises", box_move_text(first, last) + " (no fall from start to perfect match)");
    }
    return pass("falls as IoU rises", std::to_string(probes_.segments.size()) + " box trajectories towards the target");
  }

  PropertyCheck minimal_at_match() const {
    const Array<double>& P = probes_.inputs[0];
    const Array<double>& G = probes_.inputs[1];
    for (const auto& [exact, others] : probes_.matches)
      for (size_t r : others)
        if (eval_.loss[exact] - eval_.loss[r] > slack(eval_.loss[r]))
          return fail("minimal at perfect match", "G=" + box_text(G.row(exact)) + ": loss " + num(eval_.loss[exact]) +
                                                      " at P=G, " + num(eval_.loss[r]) + " at P=" + box_text(P.row(r)) +
                                                      " (IoU " + num(box_iou(P.row(r), G.row(r))) + ")");
    return pass("minimal at perfect match",
                std::to_string(probes_.matches.size()) + " targets, against nearby boxes and trajectory points");
  }

 private:
  template <class T>
  std::optional<PropertyCheck> first_non_finite(const Evaluation<T>& eval, const std::string& where) const {
    for (size_t r = 0; r < eval.loss.size(); ++r) {
      if (!std::isfinite(eval.loss[r])) return fail("finite", "loss " + num(eval.loss[r]) + where + " at " + input_text(r));
      for (const Array<T>& g : eval.grads)
        for (size_t c = 0; c < g.width; ++c)
          if (!std::isfinite(g.row(r)[c]))
            return fail("finite", "gradient " + num(g.row(r)[c]) + where + " at " + input_text(r));
    }
    return std::nullopt;
  }

  double slack(double v) const { return o_.tolerance * std::max(1.0, std::abs(v)); }

  static PropertyCheck pass(std::string property, std::string detail) { return {std::move(property), true, std::move(detail)}; }
  static PropertyCheck fail(std::string property, std::string detail) { return {std::move(property), false, std::move(detail)}; }

  std::string input_text(size_t r) const {
    std::string s;
    for (size_t i = 0; i < preset_.inputs.size(); ++i) {
      const Array<double>& a = probes_.inputs[i];
      s += (i ? " " : "") + preset_.inputs[i].name + "=" +
           (a.width == 1 ? num(a.row(r)[0]) : a.width == 4 && preset_.inputs[i].type.is_box() ? box_text(a.row(r))
                                                                                              : row_text(a.row(r), a.width));
    }
    return s;
  }

  std::string move_text(const Segment& s, size_t a, size_t b) const {
    const Array<double>& X = probes_.inputs[0];
    if (X.width == 1)
      return "Q=" + num(probes_.inputs[1].row(a)[0]) + " PY=" + num(probes_.inputs[2].row(a)[0]) + ": loss " +
             num(eval_.loss[a]) + " at X=" + num(X.row(a)[0]) + ", " + num(eval_.loss[b]) + " at X=" + num(X.row(b)[0]);
    return "Y=" + row_text(probes_.inputs[1].row(a), X.width) + " Z=" + row_text(probes_.inputs[2].row(a), X.width) +
           ": loss " + num(eval_.loss[a]) + " at X=" + row_text(X.row(a), X.width) + ", " + num(eval_.loss[b]) +
           " with X[" + std::to_string(s.moving) + "]=" + num(X.row(b)[s.moving]);
  }

  std::string box_move_text(size_t a, size_t b) const {
    const Array<double>& P = probes_.inputs[0];
    const Array<double>& G = probes_.inputs[1];
    return "G=" + box_text(G.row(a)) + ": loss " + num(eval_.loss[a]) + " at P=" + box_text(P.row(a)) + " (IoU " +
           num(box_iou(P.row(a), G.row(a))) + "), " + num(eval_.loss[b]) + " at P=" + box_text(P.row(b)) + " (IoU " +
           num(box_iou(P.row(b), G.row(b))) + ")";
  }

  const Preset& preset_;
  const Probes& probes_;
  const Evaluation<double>& eval_;
  const ConvergenceOptions& o_;
};

}  // namespace

std::string ConvergenceReport::first_failure() const {
  for (const PropertyCheck& c : checks)
    if (!c.passed) return c.property + ": " + c.detail;
  return "";
}

const Preset* matching_preset(const Loss& loss) {
  for (const Preset& preset : all_presets()) {
    if (loss.inputs.size() != preset.inputs.size() || loss.inputs.empty() || !loss.inputs[0].pred) continue;
    bool same = true;
    for (size_t i = 0; i < loss.inputs.size(); ++i)
      same = same && loss.inputs[i].type.kind() == preset.inputs[i].type.kind();
    if (same) return &preset;
  }
  return nullptr;
}

Loss candidate_loss(const Preset& preset, const Expr& body, std::string name) {
  Loss loss;
  loss.name = std::move(name);
  loss.inputs = preset.inputs;
  loss.body = body;
  loss.preset = preset.name;
  return loss;
}

ConvergenceReport verify_convergence(const Loss& loss, const Preset& preset, const ConvergenceOptions& options) {
  const Preset* fits = matching_preset(loss);
  if (fits == nullptr || fits->name != preset.name)
    throw std::invalid_argument("verify_convergence: " + loss.name + " does not have the signature of preset " + preset.name);
  const Probes& probes = probes_for(preset, options);
  EvalOptions eval_options;
  eval_options.gradients = true;
  const Evaluation<double> eval = interpret<double>(loss, probes.inputs, eval_options);
  const Evaluation<float> single = interpret<float>(loss, probes.single, eval_options);
  const Checker checker(preset, probes, eval, options);

  ConvergenceReport report;
  report.passed = true;
  auto add = [&](PropertyCheck check) {
    report.passed = report.passed && check.passed;
    report.checks.push_back(std::move(check));
    return report.passed || !options.stop_at_first_failure;
  };
  if (!add(checker.finite(single))) return report;
  if (preset.name == "reg") {
    if (!add(checker.falls_with_iou())) return report;
    add(checker.minimal_at_match());
  } else {
    if (!add(checker.monotone(Segment::Falls, "falls as p_gt rises"))) return report;
    add(checker.monotone(Segment::Rises, "rises as a negative's score rises"));
  }
  return report;
}

}  // namespace lossforge
