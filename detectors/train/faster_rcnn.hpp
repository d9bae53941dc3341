// Faster R-CNN with an FPN (Ren et al., NeurIPS 2015; Lin et al., CVPR 2017)
// in LibTorch, sized for CPU training on small images: the model, the RoI
// sampling of its box head and the IoU map Z of the multi_cls slot. The
// detector (losses, post-processing) is faster_rcnn_detector.hpp.
//
//   backbone   ResNet (model.hpp), stages C2..C5
//   fpn        P2..P5 (strides 4..32), `extra_levels` more by max-pooling
//   rpn        rpn.hpp, one anchor size per level, 3 aspect ratios
//   RoIAlign   roi_align.hpp: output 7×7, each RoI from the level FPN's rule
//              gives it with canonical size 56 at level 4 (the 224 of the FPN
//              paper scaled to images ~8× smaller than COCO's), so an RoI
//              covers 3.5 to 7 cells of its level
//   box head   two fully connected layers + ReLU, then K + 1 class logits
//              (background LAST, as the multi_cls preset's C + 1) and 4
//              class-agnostic deltas (stds 0.1, 0.1, 0.2, 0.2), i.e.
//              mmdetection's reg_class_agnostic: one box per RoI, scored per
//              class; it keeps the head small and every positive trains the
//              same regressor.
#pragma once

#include <cstdint>

#include <torch/nn/modules/conv.h>

#include "detectors/train/model.hpp"
#include "detectors/train/roi_align.hpp"
#include "detectors/train/rpn.hpp"

namespace lossforge::detectors {

// What ModelConfig does not cover. `lossforge train --detector faster_rcnn`
// takes these defaults, with the backbone and FPN sizes of its flags
// (--backbone, --width, --fpn-channels); the FCOS fields (strides, tower
// convs, prior) do not apply.
struct FasterRcnnOptions {
  int extra_levels = 0;  // 0: P2..P5; 1: also P6
  RpnOptions rpn;        // anchor sizes: one per level
  RoiAlignOptions roi_align = {7, 1};  // sampling 1: what torchvision's adaptive choice gives RoIs of <= 7 cells
  double canonical_size = 56;
  int canonical_level = 4;
  int head_channels = 256;   // width of the two fully connected layers
  // Box head training: mmdetection's defaults but 128 RoIs per image instead
  // of 512. The synthetic images hold 1 to 6 objects, so 32 positives per
  // image is about all there are, and the head costs a quarter on CPU.
  int rois_per_image = 128;
  double roi_pos_fraction = 0.25;
  double roi_pos_iou = 0.5;  // positive at IoU >= this with a box, background below
  double reg_weight = 10;    // reg slot on decoded boxes (SPEC §4)
  double delta_reg_weight = 1;  // a real[4] delta loss (box_l1.loss) in the reg slot
  // Post-processing.
  double score_threshold = 0.05;
  double nms_iou = 0.5;
  int max_detections = 100;

  std::vector<int> strides() const;  // 4, 8, 16, 32[, 64, ...]
  // Throws InputError naming the bad field.
  void validate() const;
};

// Two fully connected layers (fc1, fc2) and the outputs cls (K + 1) and reg
// (4), each written as a convolution: fc1 an S×S conv over the S×S pooled
// RoI, the others 1×1 convs. They are the same functions as Linear layers,
// but LibTorch runs convolutions through oneDNN and Linear layers through the
// system BLAS, which on Debian is by default the reference netlib one (20 to
// 30 times slower for these shapes on one thread).
class BoxHeadImpl : public torch::nn::Module {
 public:
  BoxHeadImpl(int channels, int pooled_size, int hidden, int num_classes);
  // pooled [R, C, S, S] → logits [R, K + 1], deltas [R, 4].
  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& pooled);

 private:
  torch::nn::Conv2d fc1_{nullptr}, fc2_{nullptr}, cls_{nullptr}, reg_{nullptr};
};
TORCH_MODULE(BoxHead);

// The model. Parameters: backbone.* (torchvision's names), fpn.*, rpn.*, box_head.*.
class FasterRcnnImpl : public torch::nn::Module {
 public:
  FasterRcnnImpl(const ModelConfig& config, const FasterRcnnOptions& options);
  // The pyramid levels, finest first.
  std::vector<at::Tensor> features(const at::Tensor& images);
  RpnOutput rpn(const std::vector<at::Tensor>& levels) { return rpn_->forward(levels); }
  // rois [R, 5] (batch index, x1, y1, x2, y2) → logits [R, K + 1], deltas [R, 4].
  std::pair<at::Tensor, at::Tensor> box_head(const std::vector<at::Tensor>& levels, const at::Tensor& rois);

  const ModelConfig& config() const { return config_; }
  const FasterRcnnOptions& options() const { return options_; }
  ResNet backbone() const { return backbone_; }

 private:
  ModelConfig config_;
  FasterRcnnOptions options_;
  ResNet backbone_{nullptr};
  Fpn fpn_{nullptr};
  RpnHead rpn_{nullptr};
  BoxHead box_head_{nullptr};
};
TORCH_MODULE(FasterRcnn);

// The RoIs of one image that train the box head: the proposals and the
// ground-truth boxes, each labelled by its best box (IoU >= pos_iou: that
// box's class, else background = num_classes), then sampled
// (sample_balanced). Positives come first.
struct RoiSample {
  at::Tensor boxes;      // [R, 4]
  at::Tensor labels;     // [R] int64: 0..K-1, or K (background)
  at::Tensor targets;    // [P, 4]: the box each of the P positives learns
  int64_t positives = 0;
};
RoiSample sample_rois(const at::Tensor& proposals, const GroundTruth& truth, int64_t num_classes,
                      const FasterRcnnOptions& options);

// Z of the multi_cls slot (SPEC §2) for RoIs [R]: row r is iou[r] at every
// one of `width` columns where positive[r], all ones on background rows.
at::Tensor multi_cls_iou_map(const at::Tensor& iou, const at::Tensor& positive, int64_t width);

}  // namespace lossforge::detectors
