// Box arithmetic of the detectors: an image's ground truth as tensors, FCOS's
// distance coding, pairwise IoU and non-maximum suppression. Boxes are
// x1, y1, x2, y2 tensors of shape [N, 4].
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace lossforge::data {
struct ImageTargets;
}

namespace lossforge::detectors {

// The ground truth of one image: the boxes that are learnt (crowd boxes left out).
struct GroundTruth {
  at::Tensor boxes;   // [G, 4] float, canvas pixels
  at::Tensor labels;  // [G] int64, 0..K-1
};
GroundTruth ground_truth(const data::ImageTargets& image, const at::Device& device = at::kCPU);

// (l, t, r, b): distances from each point [N, 2] (x, y) to the sides of its box [N, 4].
at::Tensor encode_distances(const at::Tensor& points, const at::Tensor& boxes);
// The inverse: the box each point [N, 2] and distances [N, 4] describe.
at::Tensor decode_distances(const at::Tensor& points, const at::Tensor& distances);

// IoU of aligned pairs a[i], b[i]: [N].
at::Tensor aligned_iou(const at::Tensor& a, const at::Tensor& b);
// IoU of every pair: [N, M].
at::Tensor pairwise_iou(const at::Tensor& a, const at::Tensor& b);

// Greedy NMS: the indices (int64, [K]) of the boxes kept, by descending score
// (ties: lower index first). A box is suppressed by a kept box of higher rank
// whose IoU with it exceeds `iou_threshold`.
at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold);
// NMS within each label independently (labels int64 [N]); kept indices by
// descending score over all labels.
at::Tensor batched_nms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& labels,
                       double iou_threshold);

}  // namespace lossforge::detectors
