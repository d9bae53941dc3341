// ATSS's sample selection (atss_targets.hpp) on hand-made boxes whose
// candidates, IoUs and thresholds are worked out in the comments, against a
// plain loop over points and boxes on random boxes, and the ATSS detector
// (make_detector("atss")) through one forward and backward pass.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <set>
#include <vector>

#include "compiler/error.hpp"
#include "detectors/data/loader.hpp"
#include "detectors/train/atss_targets.hpp"
#include "detectors/train/detector.hpp"
#include "detectors/train/targets.hpp"

namespace lossforge::detectors {
namespace {

using Box = std::array<double, 4>;

torch::Tensor boxes_tensor(const std::vector<Box>& boxes) {
  std::vector<float> flat;
  for (const Box& b : boxes) flat.insert(flat.end(), b.begin(), b.end());
  return torch::tensor(flat, torch::kFloat).view({static_cast<int64_t>(boxes.size()), 4});
}

std::set<int64_t> positives_of(const Assignment& a, int64_t gt) {
  std::set<int64_t> out;
  for (int64_t i = 0; i < a.gt_index.size(0); ++i)
    if (a.gt_index[i].item<int64_t>() == gt) out.insert(i);
  return out;
}

double plain_iou(const Box& a, const Box& b) {
  const double w = std::max(std::min(a[2], b[2]) - std::max(a[0], b[0]), 0.0);
  const double h = std::max(std::min(a[3], b[3]) - std::max(a[1], b[1]), 0.0);
  const double inter = w * h;
  const double area_a = std::max(a[2] - a[0], 0.0) * std::max(a[3] - a[1], 0.0);
  const double area_b = std::max(b[2] - b[0], 0.0) * std::max(b[3] - b[1], 0.0);
  return inter / std::max(area_a + area_b - inter, 1e-12);
}

// One level of stride 8 over a 64×64 image: points at 4, 12, ..., 60, row-major.
Points one_level() { return make_points({{8, 8}}, {8}, TargetOptions{}); }

TEST(AtssAssignment, CandidatesAreTheNearestPoints) {
  // Box 64×32 centred at (32, 24); 16-px anchors (scale 2). The 4 nearest
  // points are (28|36, 20|28) at squared distance 32 (the next ones at 160).
  // Every anchor of x in 12..52, y in 20..28 lies inside the box: IoU
  // 256/2048 = 0.125 for all 4 candidates, so the threshold is 0.125 (std 0)
  // and all 4 are positives -- but (12, 20), as good and inside the box, is
  // not among the nearest 4 and stays background.
  const Assignment a = assign_atss(one_level(), boxes_tensor({{0, 8, 64, 40}}), torch::tensor({2}, torch::kLong),
                                   AtssOptions{.top_k = 4, .anchor_scale = 2});
  EXPECT_EQ(positives_of(a, 0), (std::set<int64_t>{19, 20, 27, 28}));
  EXPECT_EQ(a.labels[19].item<int64_t>(), 2);
  EXPECT_EQ(a.labels[17].item<int64_t>(), -1);  // (12, 20)
  EXPECT_EQ(a.gt_index[17].item<int64_t>(), -1);
  // (28, 20) to the sides of (0, 8, 64, 40).
  EXPECT_TRUE(torch::equal(a.distances[19], torch::tensor({28.f, 12.f, 36.f, 20.f})));
  EXPECT_TRUE(torch::equal(a.distances[17], torch::zeros({4})));
}

TEST(AtssAssignment, ThresholdIsMeanPlusStdOverEveryLevel) {
  // Levels of stride 8 (8×8 points, 0..63) and 16 (4×4 points, 64..79);
  // 4 candidates per level, anchors of 4 strides (32 and 64 px).
  const Points points = make_points({{8, 8}, {4, 4}}, {8, 16}, TargetOptions{});
  const AtssOptions options{.top_k = 4, .anchor_scale = 4};
  struct Case {
    Box box;
    std::vector<int64_t> candidates;  // the 4 nearest of each level, by hand
    std::set<int64_t> positives;
  };
  const std::vector<Case> cases = {
      // Centre (21, 17): level 0 (20|28, 12|20), level 1 (8|24, 8|24). IoUs
      // 0.595 (20, 12|20), 0.472 (28, 12|20), 0.190 (level 1): mean 0.362,
      // std 0.190, threshold 0.551 -- the mean alone would admit (28, ·) too.
      {{2.5, 6.5, 39.5, 27.5}, {10, 18, 11, 19, 64, 65, 68, 69}, {10, 18}},
      // A big box, centre (26, 32): the coarse level's anchors fit it best.
      {{0.5, 2.5, 51.5, 61.5}, {26, 27, 34, 35, 69, 70, 73, 74}, {69, 73}},
  };
  for (const Case& c : cases) {
    const Assignment a = assign_atss(points, boxes_tensor({c.box}), torch::tensor({0}, torch::kLong), options);
    std::vector<double> iou;
    for (int64_t i : c.candidates) {
      const double x = points.xy[i][0].item<double>(), y = points.xy[i][1].item<double>();
      const double half = points.stride[i].item<double>() * 2;
      iou.push_back(plain_iou({x - half, y - half, x + half, y + half}, c.box));
    }
    const double mean = std::accumulate(iou.begin(), iou.end(), 0.0) / iou.size();
    double squares = 0;
    for (double v : iou) squares += (v - mean) * (v - mean);
    const double threshold = mean + std::sqrt(squares / (iou.size() - 1));
    std::set<int64_t> expected, over_mean;
    for (size_t j = 0; j < iou.size(); ++j) {
      if (iou[j] >= threshold) expected.insert(c.candidates[j]);
      if (iou[j] >= mean) over_mean.insert(c.candidates[j]);
    }
    EXPECT_EQ(expected, c.positives);  // the hand-made case is what the comment says
    EXPECT_GT(over_mean.size(), expected.size());
    EXPECT_EQ(positives_of(a, 0), c.positives);
    EXPECT_EQ((a.labels >= 0).sum().item<int64_t>(), static_cast<int64_t>(c.positives.size()));
  }
}

TEST(AtssAssignment, PointsOutsideTheBoxAreNeverPositive) {
  // Box (5, 4, 13, 20), 9 candidates, 16-px anchors: the IoUs are 0.500 at
  // (12, 12) and 0.412 at (4, 12), then 0.2 and below; the threshold is 0.361,
  // which both pass, but x = 4 is left of the box. With x1 = 4 (IoUs 0.563,
  // 0.471, ...; threshold 0.407) the point lies on the edge: still not
  // strictly inside.
  for (const double x1 : {5.0, 4.0}) {
    const Assignment a = assign_atss(one_level(), boxes_tensor({{x1, 4, 13, 20}}), torch::tensor({1}, torch::kLong),
                                     AtssOptions{.top_k = 9, .anchor_scale = 2});
    EXPECT_EQ(positives_of(a, 0), (std::set<int64_t>{9})) << "x1 = " << x1;  // (12, 12) only, not 8 = (4, 12)
  }
  // A sliver between two columns of points has no positive at all.
  const Assignment sliver = assign_atss(one_level(), boxes_tensor({{13, 2, 19, 60}}), torch::tensor({0}, torch::kLong),
                                        AtssOptions{.top_k = 9, .anchor_scale = 2});
  EXPECT_TRUE((sliver.labels == -1).all().item<bool>());
}

TEST(AtssAssignment, HighestIouBoxWinsASharedPoint) {
  // (12, 12) is a positive of both boxes: its anchor (4, 4, 20, 20) has IoU
  // 256/576 = 0.444 with the big box and 16/256 = 0.0625 with the small one
  // (thresholds 0.394 and 0.051). The big box wins in either order, where
  // FCOS's rule would give the point to the smaller box.
  const Box big = {0, 0, 24, 24}, small = {10, 10, 14, 14};
  const AtssOptions options{.top_k = 5, .anchor_scale = 2};
  const Assignment first =
      assign_atss(one_level(), boxes_tensor({big, small}), torch::tensor({3, 4}, torch::kLong), options);
  EXPECT_EQ(first.gt_index[9].item<int64_t>(), 0);
  EXPECT_EQ(first.labels[9].item<int64_t>(), 3);
  const Assignment second =
      assign_atss(one_level(), boxes_tensor({small, big}), torch::tensor({4, 3}, torch::kLong), options);
  EXPECT_EQ(second.gt_index[9].item<int64_t>(), 1);
  EXPECT_EQ(second.labels[9].item<int64_t>(), 3);
  EXPECT_TRUE(torch::equal(second.distances[9], torch::tensor({12.f, 12.f, 12.f, 12.f})));
  // The small box alone keeps it.
  const Assignment alone = assign_atss(one_level(), boxes_tensor({small}), torch::tensor({4}, torch::kLong), options);
  EXPECT_EQ(positives_of(alone, 0), (std::set<int64_t>{9}));
}

TEST(AtssAssignment, NoBoxesMeansBackground) {
  const Assignment a = assign_atss(one_level(), torch::zeros({0, 4}), torch::zeros({0}, torch::kLong));
  EXPECT_TRUE((a.labels == -1).all().item<bool>());
  EXPECT_TRUE((a.gt_index == -1).all().item<bool>());
  EXPECT_EQ(a.labels.size(0), 64);
  EXPECT_EQ(a.distances.sizes(), (std::vector<int64_t>{64, 4}));
}

TEST(AtssAssignment, BadOptionsAreInputErrors) {
  const torch::Tensor box = boxes_tensor({{0, 0, 8, 8}});
  const torch::Tensor label = torch::tensor({0}, torch::kLong);
  EXPECT_THROW(assign_atss(one_level(), box, label, AtssOptions{.top_k = 0}), InputError);
  EXPECT_THROW(assign_atss(one_level(), box, label, AtssOptions{.anchor_scale = 0}), InputError);
}

// The rule of atss_targets.hpp one box and one point at a time: the gt_index
// of every point.
std::vector<int64_t> plain_atss(const Points& points, const std::vector<Box>& boxes, const AtssOptions& options) {
  const int64_t n = points.xy.size(0);
  const auto xy = points.xy.accessor<float, 2>();
  const auto point_stride = points.stride.accessor<float, 1>();
  std::vector<double> x(n), y(n), stride(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = xy[i][0];
    y[i] = xy[i][1];
    stride[i] = point_stride[i];
  }
  std::vector<int64_t> best(n, -1);
  std::vector<double> best_iou(n, -1);
  for (size_t g = 0; g < boxes.size(); ++g) {
    const Box& b = boxes[g];
    const double cx = (b[0] + b[2]) / 2, cy = (b[1] + b[3]) / 2;
    auto distance = [&](int64_t i) { return (x[i] - cx) * (x[i] - cx) + (y[i] - cy) * (y[i] - cy); };
    auto iou = [&](int64_t i) {
      const double half = stride[i] * (options.anchor_scale / 2);
      return plain_iou({x[i] - half, y[i] - half, x[i] + half, y[i] + half}, b);
    };
    std::vector<int64_t> candidates;
    for (int64_t start = 0; start < n;) {
      int64_t end = start;
      while (end < n && stride[end] == stride[start]) ++end;
      std::vector<int64_t> level(end - start);
      std::iota(level.begin(), level.end(), start);
      std::stable_sort(level.begin(), level.end(), [&](int64_t i, int64_t j) { return distance(i) < distance(j); });
      level.resize(std::min<int64_t>(options.top_k, end - start));
      candidates.insert(candidates.end(), level.begin(), level.end());
      start = end;
    }
    double mean = 0, squares = 0;
    for (int64_t i : candidates) mean += iou(i);
    mean /= candidates.size();
    for (int64_t i : candidates) squares += (iou(i) - mean) * (iou(i) - mean);
    const double threshold = mean + (candidates.size() > 1 ? std::sqrt(squares / (candidates.size() - 1)) : 0);
    for (int64_t i : candidates) {
      const bool inside = x[i] > b[0] && x[i] < b[2] && y[i] > b[1] && y[i] < b[3];
      if (iou(i) >= threshold && inside && iou(i) > best_iou[i]) {
        best[i] = static_cast<int64_t>(g);
        best_iou[i] = iou(i);
      }
    }
  }
  return best;
}

TEST(AtssAssignment, MatchesAPlainLoopOnRandomBoxes) {
  // A 128×128 canvas: levels of 16², 8², 4², 2², 1² points.
  const Points points = make_points({{16, 16}, {8, 8}, {4, 4}, {2, 2}, {1, 1}}, {8, 16, 32, 64, 128}, TargetOptions{});
  torch::manual_seed(7);
  int64_t positives = 0, shared = 0;
  for (int trial = 0; trial < 12; ++trial) {
    const int64_t g = 1 + trial * 2;
    const torch::Tensor xy = torch::rand({g, 2}) * 110;
    const torch::Tensor wh = torch::rand({g, 2}) * (trial % 2 ? 90 : 30) + 2;
    const torch::Tensor boxes = torch::cat({xy, xy + wh}, 1);
    const torch::Tensor labels = torch::randint(5, {g}, torch::kLong);
    std::vector<Box> plain;
    for (int64_t i = 0; i < g; ++i)
      plain.push_back({boxes[i][0].item<float>(), boxes[i][1].item<float>(), boxes[i][2].item<float>(),
                       boxes[i][3].item<float>()});
    const AtssOptions options = trial < 8 ? AtssOptions{} : AtssOptions{.top_k = 3, .anchor_scale = 5};
    const Assignment a = assign_atss(points, boxes, labels, options);
    const std::vector<int64_t> expected = plain_atss(points, plain, options);
    for (int64_t p = 0; p < points.xy.size(0); ++p) {
      const int64_t gt = expected[p];
      ASSERT_EQ(a.gt_index[p].item<int64_t>(), gt) << "trial " << trial << ", point " << p;
      EXPECT_EQ(a.labels[p].item<int64_t>(), gt >= 0 ? labels[gt].item<int64_t>() : -1);
      if (gt < 0) {
        EXPECT_TRUE(torch::equal(a.distances[p], torch::zeros({4})));
        continue;
      }
      ++positives;
      const float x = points.xy[p][0].item<float>(), y = points.xy[p][1].item<float>();
      const torch::Tensor d = torch::tensor({x - boxes[gt][0].item<float>(), y - boxes[gt][1].item<float>(),
                                             boxes[gt][2].item<float>() - x, boxes[gt][3].item<float>() - y});
      EXPECT_TRUE(torch::equal(a.distances[p], d)) << "trial " << trial << ", point " << p;
      EXPECT_TRUE((d > 0).all().item<bool>());
    }
    // Points that more than one box selects, decided by the highest IoU.
    std::vector<int64_t> claims(points.xy.size(0), 0);
    for (int64_t i = 0; i < g; ++i) {
      const std::vector<int64_t> alone = plain_atss(points, {plain[i]}, options);
      for (size_t p = 0; p < claims.size(); ++p) claims[p] += alone[p] >= 0;
    }
    shared += std::count_if(claims.begin(), claims.end(), [](int64_t c) { return c > 1; });
  }
  EXPECT_GT(positives, 100);
  EXPECT_GT(shared, 0);  // the tie rule was exercised
}

TEST(AtssDetector, TrainsOneStepAndDetects) {
  const auto& names = detector_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "atss"), names.end());
  torch::manual_seed(4);
  const ModelConfig config{.depth = 18, .width = 0.125, .fpn_channels = 16, .tower_convs = 1, .num_classes = 2};
  const std::unique_ptr<Detector> detector = make_detector("atss", config, {});
  EXPECT_EQ(detector->describe().rfind("ATSS ", 0), 0u) << detector->describe();
  EXPECT_EQ(detector->cls_preset(), "binary_cls");
  std::vector<data::ImageTargets> targets(2);
  for (data::ImageTargets& t : targets) {
    t.resized_width = t.resized_height = t.original_width = t.original_height = 64;
  }
  targets[0].boxes = {{6, 8, 40, 44}, {30, 2, 62, 22}};
  targets[0].labels = {0, 1};
  targets[0].crowd = {false, false};
  targets[1].boxes = {{10, 12, 30, 60}, {0, 0, 64, 64}};
  targets[1].labels = {1, 0};
  targets[1].crowd = {false, true};  // the crowd box is not learnt
  const torch::Tensor images = torch::randn({2, 3, 64, 64});
  detector->module().train();
  const std::vector<LossTerm> terms = detector->losses(images, targets);
  ASSERT_EQ(terms.size(), 3u);
  torch::Tensor total = torch::zeros({});
  for (const LossTerm& t : terms) {
    EXPECT_EQ(t.value.dim(), 0) << t.name;
    EXPECT_TRUE(std::isfinite(t.value.item<double>())) << t.name;
    EXPECT_GT(t.value.item<double>(), 0) << t.name;
    total = total + t.value;
  }
  total.backward();
  int64_t with_gradient = 0, parameters = 0;
  for (const auto& p : detector->module().parameters()) {
    ++parameters;
    with_gradient += p.grad().defined() && p.grad().isfinite().all().item<bool>();
  }
  EXPECT_EQ(with_gradient, parameters);

  detector->module().eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(detector->detect(images, targets).size(), 2u);
}

}  // namespace
}  // namespace lossforge::detectors
