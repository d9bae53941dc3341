// COCOeval (bbox) as pycocotools 2.0 computes it; the comments name the
// pycocotools step each part mirrors. Built with -ffp-contract=off so that
// IoUs and precisions round exactly as numpy's and maskApi.c's do.
#include "detectors/data/coco_eval.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "compiler/error.hpp"
#include "detectors/data/json_fields.hpp"

namespace lossforge::data {

using nlohmann::json;
namespace jf = json_fields;

std::vector<Detection> parse_results(const json& results, const std::string& where) {
  if (!results.is_array()) jf::fail(where, "expected a list of detections {image_id, category_id, bbox, score}");
  std::vector<Detection> detections;
  detections.reserve(results.size());
  for (size_t i = 0; i < results.size(); ++i) {
    const std::string at = where + ": [" + std::to_string(i) + "]";
    const json& entry = results[i];
    Detection d;
    d.image_id = jf::integer(jf::member(entry, "image_id", at), at + ".image_id");
    d.category_id = jf::integer(jf::member(entry, "category_id", at), at + ".category_id");
    const json& bbox = jf::member(entry, "bbox", at);
    if (!bbox.is_array() || bbox.size() != 4) jf::fail(at + ".bbox", "expected 4 numbers [x, y, w, h]");
    for (size_t k = 0; k < 4; ++k) d.bbox[k] = jf::finite_number(bbox[k], at + ".bbox[" + std::to_string(k) + "]");
    if (d.bbox[2] < 0 || d.bbox[3] < 0) jf::fail(at + ".bbox", "negative width or height");
    d.score = jf::finite_number(jf::member(entry, "score", at), at + ".score");
    detections.push_back(d);
  }
  return detections;
}

std::vector<Detection> load_results(const std::filesystem::path& path) {
  return parse_results(jf::read_file(path), path.string());
}

json results_json(std::span<const Detection> detections) {
  json list = json::array();
  for (const Detection& d : detections)
    list.push_back({{"image_id", d.image_id}, {"category_id", d.category_id}, {"bbox", d.bbox}, {"score", d.score}});
  return list;
}

namespace {

constexpr int kThresholds = 10;  // IoU 0.50:0.05:0.95
constexpr int kRecalls = 101;    // recall 0:0.01:1
constexpr int kAreas = 4;        // all, small, medium, large
constexpr std::array<int, 3> kMaxDets = {1, 10, 100};
constexpr std::array<std::array<double, 2>, kAreas> kAreaRanges = {
    {{0, 1e10}, {0, 32.0 * 32.0}, {32.0 * 32.0, 96.0 * 96.0}, {96.0 * 96.0, 1e10}}};

// numpy.linspace(start, stop, num): i * ((stop - start) / (num - 1)) + start, the last one stop.
template <int N>
std::array<double, N> linspace(double start, double stop) {
  std::array<double, N> values{};
  const double step = (stop - start) / (N - 1);
  for (int i = 0; i < N; ++i) values[i] = static_cast<double>(i) * step + start;
  values[N - 1] = stop;
  return values;
}

const std::array<double, kThresholds> kIouThresholds = linspace<kThresholds>(0.5, 0.95);
const std::array<double, kRecalls> kRecallThresholds = linspace<kRecalls>(0.0, 1.0);

// maskApi.c bbIou: boxes x, y, w, h; a crowd box is divided by the detection's area only.
double box_iou(const std::array<double, 4>& d, const std::array<double, 4>& g, bool crowd) {
  const double ga = g[2] * g[3];
  const double da = d[2] * d[3];
  const double w = std::fmin(d[2] + d[0], g[2] + g[0]) - std::fmax(d[0], g[0]);
  if (w <= 0) return 0;
  const double h = std::fmin(d[3] + d[1], g[3] + g[1]) - std::fmax(d[1], g[1]);
  if (h <= 0) return 0;
  const double i = w * h;
  const double u = crowd ? da : da + ga - i;
  return i / u;
}

// evaluateImg's result for one image, category and area range (maxDet 100).
struct ImageResult {
  std::vector<double> scores;        // detections in score order
  std::vector<uint8_t> matched;      // [t * D + d]: dtm != 0
  std::vector<uint8_t> ignored;      // [t * D + d]: dtIg
  int not_ignored_gt = 0;            // count of gtIgnore == 0
};

// One image and category: its ground truth in file order, its detections
// sorted (stably) by descending score and cut to 100, and their IoUs.
struct Cell {
  std::vector<const CocoAnnotation*> gt;
  std::vector<const Detection*> dt;
};

ImageResult evaluate_image(const Cell& cell, const std::vector<double>& ious, const std::array<double, 2>& range) {
  const size_t G = cell.gt.size();
  const size_t D = cell.dt.size();
  // _ignore: crowd, or area outside the range; stable sort puts the ignored last.
  std::vector<uint8_t> gt_ignore_file_order(G);
  for (size_t g = 0; g < G; ++g) {
    const CocoAnnotation& a = *cell.gt[g];
    gt_ignore_file_order[g] = a.iscrowd || a.area < range[0] || a.area > range[1];
  }
  std::vector<size_t> order(G);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return gt_ignore_file_order[a] < gt_ignore_file_order[b]; });

  ImageResult result;
  result.scores.resize(D);
  for (size_t d = 0; d < D; ++d) result.scores[d] = cell.dt[d]->score;
  result.matched.assign(kThresholds * D, 0);
  result.ignored.assign(kThresholds * D, 0);
  for (size_t g = 0; g < G; ++g) result.not_ignored_gt += gt_ignore_file_order[g] == 0;

  std::vector<uint8_t> gt_taken(G);
  if (G > 0 && D > 0) {
    for (int t = 0; t < kThresholds; ++t) {
      std::fill(gt_taken.begin(), gt_taken.end(), 0);
      for (size_t d = 0; d < D; ++d) {
        double best = std::min(kIouThresholds[t], 1 - 1e-10);
        long m = -1;
        for (size_t gi = 0; gi < G; ++gi) {
          const size_t g = order[gi];
          const bool crowd = cell.gt[g]->iscrowd;
          if (gt_taken[gi] && !crowd) continue;
          if (m > -1 && gt_ignore_file_order[order[m]] == 0 && gt_ignore_file_order[g] == 1) break;
          const double iou = ious[d * G + g];
          if (iou < best) continue;
          best = iou;
          m = static_cast<long>(gi);
        }
        if (m == -1) continue;
        const size_t g = order[m];
        result.ignored[t * D + d] = gt_ignore_file_order[g];
        // dtm holds the ground truth's id: pycocotools reads id 0 as "unmatched".
        result.matched[t * D + d] = cell.gt[g]->id != 0;
        gt_taken[m] = 1;  // gtm holds the detection's id, always >= 1
      }
    }
  }
  // Unmatched detections outside the area range are ignored.
  for (size_t d = 0; d < D; ++d) {
    const std::array<double, 4>& b = cell.dt[d]->bbox;
    const double area = b[2] * b[3];
    if (area < range[0] || area > range[1])
      for (int t = 0; t < kThresholds; ++t)
        if (!result.matched[t * D + d]) result.ignored[t * D + d] = 1;
  }
  return result;
}

// accumulate() for one category, area range and maxDet: precision[t][r] and recall[t],
// left at -1 when there is no non-ignored ground truth.
void accumulate(const std::vector<const ImageResult*>& images, int max_det, double* precision /* [T][R] */,
                double* recall /* [T] */) {
  struct Entry {
    double score;
    const ImageResult* image;
    size_t d;
  };
  std::vector<Entry> entries;
  long not_ignored_gt = 0;
  for (const ImageResult* image : images) {
    const size_t kept = std::min(image->scores.size(), static_cast<size_t>(max_det));
    for (size_t d = 0; d < kept; ++d) entries.push_back({image->scores[d], image, d});
    not_ignored_gt += image->not_ignored_gt;
  }
  if (not_ignored_gt == 0) return;
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.score > b.score; });
  const size_t n = entries.size();
  std::vector<double> rc(n), pr(n);
  const double eps = std::numeric_limits<double>::epsilon();  // np.spacing(1)
  for (int t = 0; t < kThresholds; ++t) {
    double tp = 0, fp = 0;
    for (size_t i = 0; i < n; ++i) {
      const Entry& e = entries[i];
      const size_t D = e.image->scores.size();
      const bool matched = e.image->matched[t * D + e.d];
      const bool ignored = e.image->ignored[t * D + e.d];
      if (!ignored) (matched ? tp : fp) += 1;
      rc[i] = tp / static_cast<double>(not_ignored_gt);
      pr[i] = tp / (fp + tp + eps);
    }
    recall[t] = n ? rc[n - 1] : 0;
    for (size_t i = n; i-- > 1;)
      if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
    // searchsorted(rc, recThrs, side='left'); thresholds past the last recall stay 0.
    double* q = precision + static_cast<size_t>(t) * kRecalls;
    size_t i = 0;
    for (int r = 0; r < kRecalls; ++r) {
      while (i < n && rc[i] < kRecallThresholds[r]) ++i;
      if (i >= n) {
        std::fill(q + r, q + kRecalls, 0.0);
        break;
      }
      q[r] = pr[i];
    }
  }
}

// numpy's pairwise summation (umath's pairwise_sum: blocks of 128, eight
// accumulators), which np.mean uses; summing in any other order changes the
// last bits, and then and again a printed .xxx5 rounds the other way.
double pairwise_sum(const double* a, size_t n) {
  if (n < 8) {
    double sum = 0.;
    for (size_t i = 0; i < n; ++i) sum += a[i];
    return sum;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    size_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    double sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) sum += a[i];
    return sum;
  }
  size_t half = n / 2;
  half -= half % 8;
  return pairwise_sum(a, half) + pairwise_sum(a + half, n - half);
}

// summarize(): np.mean(s[s > -1]) over the values in numpy's C order, or -1
// when there are none.
struct Mean {
  std::vector<double> values;
  void add(double v) {
    if (v > -1) values.push_back(v);
  }
  double value() const {
    if (values.empty()) return -1;
    return (0.0 + pairwise_sum(values.data(), values.size())) / static_cast<double>(values.size());
  }
};

}  // namespace

CocoStats evaluate_bbox(const CocoDataset& gt, std::span<const Detection> dt) {
  // params: sorted unique image and category ids.
  std::vector<int64_t> image_ids;
  image_ids.reserve(gt.images.size());
  for (const CocoImage& image : gt.images) image_ids.push_back(image.id);
  std::sort(image_ids.begin(), image_ids.end());
  image_ids.erase(std::unique(image_ids.begin(), image_ids.end()), image_ids.end());
  std::vector<int64_t> category_ids;
  for (const CocoCategory& c : gt.categories) category_ids.push_back(c.id);
  std::sort(category_ids.begin(), category_ids.end());
  category_ids.erase(std::unique(category_ids.begin(), category_ids.end()), category_ids.end());
  const size_t I = image_ids.size(), K = category_ids.size();
  std::unordered_map<int64_t, size_t> image_index, category_index;
  for (size_t i = 0; i < I; ++i) image_index.emplace(image_ids[i], i);
  for (size_t k = 0; k < K; ++k) category_index.emplace(category_ids[k], k);

  // _prepare: ground truth and detections per (category, image), in file order.
  std::vector<Cell> cells(K * I);
  for (const CocoAnnotation& a : gt.annotations) {
    auto i = image_index.find(a.image_id);
    auto k = category_index.find(a.category_id);
    if (i == image_index.end() || k == category_index.end()) continue;
    cells[k->second * I + i->second].gt.push_back(&a);
  }
  for (size_t n = 0; n < dt.size(); ++n) {
    const Detection& d = dt[n];
    auto i = image_index.find(d.image_id);
    if (i == image_index.end())
      throw InputError("detection " + std::to_string(n) + " has image_id " + std::to_string(d.image_id) +
                       ", which the ground truth does not have");
    auto k = category_index.find(d.category_id);
    if (k == category_index.end()) continue;
    cells[k->second * I + i->second].dt.push_back(&d);
  }

  // evaluate(): per cell, the IoUs once and the matching per area range.
  std::vector<ImageResult> results(K * kAreas * I);
  std::vector<uint8_t> present(K * I, 0);
  std::vector<double> ious;
  for (size_t k = 0; k < K; ++k)
    for (size_t i = 0; i < I; ++i) {
      Cell& cell = cells[k * I + i];
      if (cell.gt.empty() && cell.dt.empty()) continue;  // evaluateImg returns None
      present[k * I + i] = 1;
      std::stable_sort(cell.dt.begin(), cell.dt.end(),
                       [](const Detection* a, const Detection* b) { return a->score > b->score; });
      if (cell.dt.size() > static_cast<size_t>(kMaxDets.back())) cell.dt.resize(kMaxDets.back());
      const size_t G = cell.gt.size(), D = cell.dt.size();
      ious.assign(D * G, 0.0);
      for (size_t d = 0; d < D; ++d)
        for (size_t g = 0; g < G; ++g) ious[d * G + g] = box_iou(cell.dt[d]->bbox, cell.gt[g]->bbox, cell.gt[g]->iscrowd);
      for (int a = 0; a < kAreas; ++a) results[(k * kAreas + a) * I + i] = evaluate_image(cell, ious, kAreaRanges[a]);
    }

  // accumulate(): precision[k][a][m][t][r], recall[k][a][m][t].
  const size_t M = kMaxDets.size();
  std::vector<double> precision(K * kAreas * M * kThresholds * kRecalls, -1.0);
  std::vector<double> recall(K * kAreas * M * kThresholds, -1.0);
  std::vector<const ImageResult*> images;
  for (size_t k = 0; k < K; ++k)
    for (int a = 0; a < kAreas; ++a) {
      images.clear();
      for (size_t i = 0; i < I; ++i)
        if (present[k * I + i]) images.push_back(&results[(k * kAreas + a) * I + i]);
      if (images.empty()) continue;
      for (size_t m = 0; m < M; ++m) {
        const size_t slot = (k * kAreas + a) * M + m;
        accumulate(images, kMaxDets[m], &precision[slot * kThresholds * kRecalls], &recall[slot * kThresholds]);
      }
    }

  // summarize(): _summarizeDets' twelve numbers.
  // pycocotools' arrays are precision[T][R][K][A][M] and recall[T][K][A][M]: the
  // means visit t, then r, then k.
  auto ap = [&](int threshold /* -1: all */, int area, int max_det_index) {
    Mean mean;
    for (int t = 0; t < kThresholds; ++t)
      if (threshold < 0 || t == threshold)
        for (int r = 0; r < kRecalls; ++r)
          for (size_t k = 0; k < K; ++k) {
            const size_t slot = (k * kAreas + area) * M + max_det_index;
            mean.add(precision[(slot * kThresholds + t) * kRecalls + r]);
          }
    return mean.value();
  };
  auto ar = [&](int area, int max_det_index) {
    Mean mean;
    for (int t = 0; t < kThresholds; ++t)
      for (size_t k = 0; k < K; ++k) mean.add(recall[((k * kAreas + area) * M + max_det_index) * kThresholds + t]);
    return mean.value();
  };
  // np.where(iouThr == p.iouThrs): 0.5 and 0.75 are exactly thresholds 0 and 5.
  const int t50 = static_cast<int>(std::find(kIouThresholds.begin(), kIouThresholds.end(), 0.5) - kIouThresholds.begin());
  const int t75 = static_cast<int>(std::find(kIouThresholds.begin(), kIouThresholds.end(), 0.75) - kIouThresholds.begin());
  CocoStats stats;
  stats.stats = {ap(-1, 0, 2), ap(t50, 0, 2), ap(t75, 0, 2), ap(-1, 1, 2), ap(-1, 2, 2), ap(-1, 3, 2),
                 ar(0, 0),     ar(0, 1),      ar(0, 2),      ar(1, 2),     ar(2, 2),     ar(3, 2)};
  stats.category_ids = category_ids;
  stats.category_ap.resize(K);
  for (size_t k = 0; k < K; ++k) {
    Mean mean;
    const size_t slot = (k * kAreas + 0) * M + 2;
    for (int j = 0; j < kThresholds * kRecalls; ++j) mean.add(precision[slot * kThresholds * kRecalls + j]);
    stats.category_ap[k] = mean.value();
  }
  return stats;
}

std::string summary_text(const CocoStats& stats) {
  struct Line {
    bool ap;
    const char* iou;
    const char* area;
    int max_dets;
  };
  static constexpr std::array<Line, 12> kLines = {{{true, "0.50:0.95", "all", 100},
                                                   {true, "0.50", "all", 100},
                                                   {true, "0.75", "all", 100},
                                                   {true, "0.50:0.95", "small", 100},
                                                   {true, "0.50:0.95", "medium", 100},
                                                   {true, "0.50:0.95", "large", 100},
                                                   {false, "0.50:0.95", "all", 1},
                                                   {false, "0.50:0.95", "all", 10},
                                                   {false, "0.50:0.95", "all", 100},
                                                   {false, "0.50:0.95", "small", 100},
                                                   {false, "0.50:0.95", "medium", 100},
                                                   {false, "0.50:0.95", "large", 100}}};
  std::string text;
  char line[160];
  for (size_t n = 0; n < kLines.size(); ++n) {
    const Line& l = kLines[n];
    // ' {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}'
    std::snprintf(line, sizeof line, " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %0.3f\n",
                  l.ap ? "Average Precision" : "Average Recall", l.ap ? "(AP)" : "(AR)", l.iou, l.area, l.max_dets,
                  stats.stats[n]);
    text += line;
  }
  return text;
}

json to_json(const CocoStats& stats) {
  json object = json::object();
  for (size_t n = 0; n < stats.stats.size(); ++n) object[std::string(CocoStats::kNames[n])] = stats.stats[n];
  return object;
}

}  // namespace lossforge::data
