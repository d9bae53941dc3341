#include "detectors/train/boxes.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "detectors/data/loader.hpp"

namespace lossforge::detectors {

GroundTruth ground_truth(const data::ImageTargets& image, const at::Device& device) {
  std::vector<float> boxes;
  std::vector<int64_t> labels;
  for (size_t i = 0; i < image.boxes.size(); ++i) {
    if (image.crowd.size() > i && image.crowd[i]) continue;
    boxes.insert(boxes.end(), image.boxes[i].begin(), image.boxes[i].end());
    labels.push_back(image.labels[i]);
  }
  const int64_t g = static_cast<int64_t>(labels.size());
  return {at::tensor(boxes, at::kFloat).view({g, 4}).to(device), at::tensor(labels, at::kLong).to(device)};
}

at::Tensor encode_distances(const at::Tensor& points, const at::Tensor& boxes) {
  const at::Tensor x = points.select(1, 0), y = points.select(1, 1);
  return at::stack({x - boxes.select(1, 0), y - boxes.select(1, 1), boxes.select(1, 2) - x, boxes.select(1, 3) - y}, 1);
}

at::Tensor decode_distances(const at::Tensor& points, const at::Tensor& d) {
  const at::Tensor x = points.select(1, 0), y = points.select(1, 1);
  return at::stack({x - d.select(1, 0), y - d.select(1, 1), x + d.select(1, 2), y + d.select(1, 3)}, 1);
}

namespace {
at::Tensor area(const at::Tensor& b) {
  return (b.select(-1, 2) - b.select(-1, 0)).clamp_min(0) * (b.select(-1, 3) - b.select(-1, 1)).clamp_min(0);
}
}  // namespace

at::Tensor aligned_iou(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor w = (at::min(a.select(1, 2), b.select(1, 2)) - at::max(a.select(1, 0), b.select(1, 0))).clamp_min(0);
  const at::Tensor h = (at::min(a.select(1, 3), b.select(1, 3)) - at::max(a.select(1, 1), b.select(1, 1))).clamp_min(0);
  const at::Tensor inter = w * h;
  return inter / (area(a) + area(b) - inter).clamp_min(1e-12);
}

at::Tensor pairwise_iou(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor a2 = a.unsqueeze(1), b2 = b.unsqueeze(0);
  const at::Tensor w = (at::min(a2.select(2, 2), b2.select(2, 2)) - at::max(a2.select(2, 0), b2.select(2, 0))).clamp_min(0);
  const at::Tensor h = (at::min(a2.select(2, 3), b2.select(2, 3)) - at::max(a2.select(2, 1), b2.select(2, 1))).clamp_min(0);
  const at::Tensor inter = w * h;
  return inter / (area(a).unsqueeze(1) + area(b).unsqueeze(0) - inter).clamp_min(1e-12);
}

at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  const int64_t n = boxes.size(0);
  if (n == 0) return at::empty({0}, at::kLong);
  const at::Tensor b = boxes.detach().to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor s = scores.detach().to(at::kCPU, at::kDouble).contiguous();
  const double* box = b.data_ptr<double>();
  const double* score = s.data_ptr<double>();
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return score[i] > score[j]; });
  auto box_area = [&](int64_t i) {
    return std::max(0.0, box[4 * i + 2] - box[4 * i]) * std::max(0.0, box[4 * i + 3] - box[4 * i + 1]);
  };
  std::vector<char> suppressed(n, 0);
  std::vector<int64_t> keep;
  for (size_t r = 0; r < order.size(); ++r) {
    const int64_t i = order[r];
    if (suppressed[i]) continue;
    keep.push_back(i);
    const double ai = box_area(i);
    for (size_t q = r + 1; q < order.size(); ++q) {
      const int64_t j = order[q];
      if (suppressed[j]) continue;
      const double w = std::min(box[4 * i + 2], box[4 * j + 2]) - std::max(box[4 * i], box[4 * j]);
      const double h = std::min(box[4 * i + 3], box[4 * j + 3]) - std::max(box[4 * i + 1], box[4 * j + 1]);
      const double inter = std::max(0.0, w) * std::max(0.0, h);
      const double uni = ai + box_area(j) - inter;
      if (uni > 0 && inter / uni > iou_threshold) suppressed[j] = 1;
    }
  }
  return at::tensor(keep, at::kLong);
}

at::Tensor batched_nms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& labels,
                       double iou_threshold) {
  if (boxes.size(0) == 0) return at::empty({0}, at::kLong);
  // Shifting each label's boxes by a distinct offset larger than every
  // coordinate keeps labels from overlapping, so one NMS does them all.
  const at::Tensor b = boxes.detach().to(at::kDouble);
  const double span = b.abs().max().item<double>() * 2 + 1;
  const at::Tensor offsets = labels.to(at::kDouble).unsqueeze(1) * span;
  return nms(b + offsets, scores, iou_threshold);
}

}  // namespace lossforge::detectors
