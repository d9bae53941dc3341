#include "detectors/train/faster_rcnn.hpp"

#include <cstdint>

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include "compiler/error.hpp"
#include "detectors/train/boxes.hpp"

namespace lossforge::detectors {

namespace nn = torch::nn;

std::vector<int> FasterRcnnOptions::strides() const {
  std::vector<int> s = {4, 8, 16, 32};
  for (int e = 0; e < extra_levels; ++e) s.push_back(s.back() * 2);
  return s;
}

void FasterRcnnOptions::validate() const {
  if (extra_levels < 0 || extra_levels > 2) throw InputError("Faster R-CNN extra levels must be 0..2");
  if (rpn.anchors.sizes.size() != strides().size())
    throw InputError("Faster R-CNN: " + std::to_string(rpn.anchors.sizes.size()) + " anchor sizes for " +
                     std::to_string(strides().size()) + " pyramid levels");
  if (rpn.anchors.ratios.empty()) throw InputError("Faster R-CNN: no anchor aspect ratios");
  if (roi_align.output_size < 1 || roi_align.sampling_ratio < 1)
    throw InputError("Faster R-CNN: RoIAlign output size and sampling ratio must be >= 1");
  if (head_channels < 1) throw InputError("Faster R-CNN: head channels must be >= 1");
  if (rois_per_image < 1 || rpn.batch_per_image < 1) throw InputError("Faster R-CNN: sample sizes must be >= 1");
}

BoxHeadImpl::BoxHeadImpl(int channels, int pooled_size, int hidden, int num_classes) {
  auto layer = [](int in, int out, int kernel) { return nn::Conv2d(nn::Conv2dOptions(in, out, kernel)); };
  fc1_ = register_module("fc1", layer(channels, hidden, pooled_size));
  fc2_ = register_module("fc2", layer(hidden, hidden, 1));
  cls_ = register_module("cls", layer(hidden, num_classes + 1, 1));
  reg_ = register_module("reg", layer(hidden, 4, 1));
  // mmdetection's Shared2FCBBoxHead: Xavier-uniform fcs (fans of the [out, in] matrix), small normal outputs.
  at::NoGradGuard no_grad;
  for (nn::Conv2d* fc : {&fc1_, &fc2_}) {
    at::Tensor matrix = (*fc)->weight.view({(*fc)->weight.size(0), -1});
    nn::init::xavier_uniform_(matrix);
    nn::init::constant_((*fc)->bias, 0);
  }
  nn::init::normal_(cls_->weight, 0, 0.01);
  nn::init::constant_(cls_->bias, 0);
  nn::init::normal_(reg_->weight, 0, 0.001);
  nn::init::constant_(reg_->bias, 0);
}

std::pair<at::Tensor, at::Tensor> BoxHeadImpl::forward(const at::Tensor& pooled) {
  const at::Tensor x = torch::relu(fc2_(torch::relu(fc1_(pooled))));  // [R, hidden, 1, 1]
  return {cls_(x).flatten(1), reg_(x).flatten(1)};
}

FasterRcnnImpl::FasterRcnnImpl(const ModelConfig& config, const FasterRcnnOptions& options)
    : config_(config), options_(options) {
  config_.validate();
  options_.validate();
  backbone_ = register_module("backbone", ResNet(config.depth, config.width));
  fpn_ = register_module("fpn", Fpn(backbone_->stage_channels(), config.fpn_channels, options.extra_levels));
  rpn_ = register_module("rpn", RpnHead(config.fpn_channels, static_cast<int>(options.rpn.anchors.ratios.size())));
  box_head_ = register_module("box_head", BoxHead(config.fpn_channels, options.roi_align.output_size,
                                                  options.head_channels, config.num_classes));
}

std::vector<at::Tensor> FasterRcnnImpl::features(const at::Tensor& images) {
  return fpn_->forward(backbone_->stages(images));
}

std::pair<at::Tensor, at::Tensor> FasterRcnnImpl::box_head(const std::vector<at::Tensor>& levels, const at::Tensor& rois) {
  std::vector<int> ids;
  for (size_t l = 0; l < levels.size(); ++l) ids.push_back(2 + static_cast<int>(l));
  const at::Tensor pooled = multilevel_roi_align(levels, options_.strides(), ids, rois, options_.canonical_size,
                                                 options_.canonical_level, options_.roi_align);
  return box_head_->forward(pooled);
}

RoiSample sample_rois(const at::Tensor& proposals, const GroundTruth& truth, int64_t num_classes,
                      const FasterRcnnOptions& options) {
  const at::Tensor candidates = at::cat({proposals.detach(), truth.boxes.to(proposals.dtype())});
  const int64_t n = candidates.size(0);
  const auto long_options = candidates.options().dtype(at::kLong);
  at::Tensor matched = at::zeros({n}, long_options);
  at::Tensor positive = at::zeros({n}, candidates.options().dtype(at::kBool));
  if (truth.boxes.size(0) > 0) {
    auto [best, index] = pairwise_iou(candidates, truth.boxes).max(1);
    matched = index;
    positive = best >= options.roi_pos_iou;
  }
  auto [pos, neg] = sample_balanced(positive, ~positive, options.rois_per_image, options.roi_pos_fraction);
  RoiSample s;
  s.positives = pos.size(0);
  s.boxes = candidates.index_select(0, at::cat({pos, neg}));
  const at::Tensor pos_gt = matched.index_select(0, pos);
  s.labels = at::cat({truth.labels.index_select(0, pos_gt), at::full({neg.size(0)}, num_classes, long_options)});
  s.targets = truth.boxes.index_select(0, pos_gt).to(proposals.dtype());
  return s;
}

at::Tensor multi_cls_iou_map(const at::Tensor& iou, const at::Tensor& positive, int64_t width) {
  const at::Tensor value = at::where(positive, iou.detach(), at::ones_like(iou));
  return value.unsqueeze(1).expand({iou.size(0), width}).contiguous();
}

}  // namespace lossforge::detectors
