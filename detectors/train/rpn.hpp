// The region proposal network of Faster R-CNN (Ren et al., NeurIPS 2015) over
// a feature pyramid: a head shared by the levels, anchor assignment and
// sampling, its fixed losses, and the proposals it hands to the box head.
//
//   assignment  an anchor is foreground when its best IoU with a ground-truth
//               box is >= pos_iou, background when < neg_iou, ignored in
//               between; each box's best anchors (every anchor at the box's
//               highest IoU, when that is > 0) are foreground for that box,
//               so no box goes without one.
//   sampling    batch_per_image anchors per image, at most pos_fraction of
//               them foreground, the rest background, uniformly at random
//               (torch's default generator).
//   losses      rpn_cls: binary cross-entropy of the objectness logits over
//               the sampled anchors; rpn_reg: smooth-L1 (β = 1/9) of the
//               deltas (stds 1) of the sampled foreground; both divided by the
//               number of sampled anchors (torchvision's RPN).
//   proposals   per image and level the pre_nms_top_k best anchors by
//               objectness, decoded, clipped to the image's part of the
//               canvas, boxes under min_size dropped, NMS at nms_iou within
//               each level, and the post_nms_top_k best kept.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "detectors/train/anchors.hpp"
#include "detectors/train/boxes.hpp"

namespace lossforge::data {
struct ImageTargets;
}

namespace lossforge::detectors {

struct RpnOptions {
  AnchorOptions anchors;
  double pos_iou = 0.7, neg_iou = 0.3;
  int batch_per_image = 256;
  double pos_fraction = 0.5;
  double smooth_l1_beta = 1.0 / 9;
  // Per level before NMS, per image after it; sized for ~2300 anchors of a
  // 96 px canvas with a few objects (mmdetection's 2000/1000 are for 1333 px).
  int pre_nms_top_k_train = 500, post_nms_top_k_train = 300;
  int pre_nms_top_k_test = 300, post_nms_top_k_test = 100;
  double nms_iou = 0.7;
  double min_size = 1e-3;  // pixels
};

// What the head predicts, levels concatenated in anchor order (anchors.hpp).
struct RpnOutput {
  at::Tensor objectness;  // [B, A] logits
  at::Tensor deltas;      // [B, A, 4]
  std::vector<int64_t> anchors_per_level;
};

// A 3×3 conv + ReLU shared by the levels, then 1×1 convs to one objectness
// logit and 4 deltas per anchor of a cell. Parameters: conv, cls, reg.
class RpnHeadImpl : public torch::nn::Module {
 public:
  RpnHeadImpl(int channels, int anchors_per_cell);
  RpnOutput forward(const std::vector<at::Tensor>& levels);

 private:
  torch::nn::Conv2d conv_{nullptr}, cls_{nullptr}, reg_{nullptr};
  int anchors_per_cell_;
};
TORCH_MODULE(RpnHead);

struct AnchorAssignment {
  at::Tensor labels;   // [A] int64: 1 foreground, 0 background, -1 ignored
  at::Tensor matched;  // [A] int64: the box a foreground anchor learns (0 elsewhere)
};
AnchorAssignment assign_anchors(const at::Tensor& anchors, const at::Tensor& boxes, double pos_iou, double neg_iou);

// A random subset of at most `num` indices: at most round(num·pos_fraction)
// from `positive` (a bool mask), the rest from `negative`. Returns the sampled
// (positive, negative) indices, int64 on the masks' device.
std::pair<at::Tensor, at::Tensor> sample_balanced(const at::Tensor& positive, const at::Tensor& negative, int num,
                                                  double pos_fraction);

struct RpnLosses {
  at::Tensor cls, reg;  // scalars
};
// anchors [A, 4] on the output's device; one GroundTruth per image.
RpnLosses rpn_losses(const RpnOutput& output, const at::Tensor& anchors, const std::vector<GroundTruth>& truth,
                     const RpnOptions& options);

struct Proposals {
  at::Tensor boxes;   // [N, 4], detached
  at::Tensor scores;  // [N] objectness probabilities, descending
};
// Per image; `training` picks the train or test top-k.
std::vector<Proposals> make_proposals(const RpnOutput& output, const at::Tensor& anchors,
                                      const std::vector<data::ImageTargets>& images, const RpnOptions& options,
                                      bool training);

}  // namespace lossforge::detectors
