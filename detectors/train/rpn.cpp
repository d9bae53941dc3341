#include "detectors/train/rpn.hpp"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "detectors/data/loader.hpp"
#include "detectors/train/boxes.hpp"

namespace lossforge::detectors {

namespace nn = torch::nn;

RpnHeadImpl::RpnHeadImpl(int channels, int anchors_per_cell) : anchors_per_cell_(anchors_per_cell) {
  conv_ = register_module("conv", nn::Conv2d(nn::Conv2dOptions(channels, channels, 3).padding(1)));
  cls_ = register_module("cls", nn::Conv2d(nn::Conv2dOptions(channels, anchors_per_cell, 1)));
  reg_ = register_module("reg", nn::Conv2d(nn::Conv2dOptions(channels, 4 * anchors_per_cell, 1)));
  for (nn::Conv2d* c : {&conv_, &cls_, &reg_}) {  // torchvision's RPNHead
    nn::init::normal_((*c)->weight, 0, 0.01);
    nn::init::constant_((*c)->bias, 0);
  }
}

RpnOutput RpnHeadImpl::forward(const std::vector<at::Tensor>& levels) {
  RpnOutput out;
  std::vector<at::Tensor> cls, reg;
  for (const at::Tensor& f : levels) {
    const at::Tensor t = torch::relu(conv_(f));
    const int64_t b = f.size(0);
    cls.push_back(cls_(t).permute({0, 2, 3, 1}).reshape({b, -1}));
    reg.push_back(reg_(t).permute({0, 2, 3, 1}).reshape({b, -1, 4}));
    out.anchors_per_level.push_back(cls.back().size(1));
  }
  out.objectness = at::cat(cls, 1);
  out.deltas = at::cat(reg, 1);
  return out;
}

AnchorAssignment assign_anchors(const at::Tensor& anchors, const at::Tensor& boxes, double pos_iou, double neg_iou) {
  const int64_t a = anchors.size(0);
  const auto long_options = anchors.options().dtype(at::kLong);
  if (boxes.size(0) == 0) return {at::zeros({a}, long_options), at::zeros({a}, long_options)};
  const at::Tensor iou = pairwise_iou(anchors, boxes);  // [A, G]
  auto [best, matched] = iou.max(1);
  at::Tensor labels = at::full({a}, -1, long_options);
  labels.masked_fill_(best < neg_iou, 0);
  labels.masked_fill_(best >= pos_iou, 1);
  // Each box's best anchors learn it, whatever their IoU (if any overlap).
  const at::Tensor box_best = std::get<0>(iou.max(0));                              // [G]
  const at::Tensor is_best = (iou == box_best.unsqueeze(0)) & (box_best > 0).unsqueeze(0);  // [A, G]
  const at::Tensor any_best = is_best.any(1);
  labels.masked_fill_(any_best, 1);
  matched = at::where(any_best, is_best.to(at::kFloat).argmax(1), matched);  // the first box it is best for
  return {labels, matched};
}

std::pair<at::Tensor, at::Tensor> sample_balanced(const at::Tensor& positive, const at::Tensor& negative, int num,
                                                  double pos_fraction) {
  const at::Tensor pos = positive.nonzero().squeeze(1), neg = negative.nonzero().squeeze(1);
  const int64_t want_pos = std::min<int64_t>(pos.size(0), std::llround(num * pos_fraction));
  const int64_t want_neg = std::min<int64_t>(neg.size(0), num - want_pos);
  // randperm on the CPU generator, so a run is reproducible from torch's seed on any device.
  auto pick = [](const at::Tensor& idx, int64_t k) {
    const at::Tensor order = at::randperm(idx.size(0), at::TensorOptions().dtype(at::kLong)).slice(0, 0, k);
    return idx.index_select(0, order.to(idx.device()));
  };
  return {pick(pos, want_pos), pick(neg, want_neg)};
}

RpnLosses rpn_losses(const RpnOutput& output, const at::Tensor& anchors, const std::vector<GroundTruth>& truth,
                     const RpnOptions& options) {
  std::vector<at::Tensor> logits, labels, pred_deltas, target_deltas;
  for (size_t b = 0; b < truth.size(); ++b) {
    const auto i = static_cast<int64_t>(b);
    const AnchorAssignment a = assign_anchors(anchors, truth[b].boxes, options.pos_iou, options.neg_iou);
    auto [pos, neg] = sample_balanced(a.labels == 1, a.labels == 0, options.batch_per_image, options.pos_fraction);
    const at::Tensor sampled = at::cat({pos, neg});
    logits.push_back(output.objectness[i].index_select(0, sampled));
    labels.push_back(at::cat({at::ones({pos.size(0)}), at::zeros({neg.size(0)})}).to(output.objectness.options()));
    if (pos.size(0) > 0) {
      pred_deltas.push_back(output.deltas[i].index_select(0, pos));
      const at::Tensor gt = truth[b].boxes.index_select(0, a.matched.index_select(0, pos));
      target_deltas.push_back(encode_deltas(anchors.index_select(0, pos), gt, kRpnDeltaStds));
    }
  }
  const at::Tensor all_logits = at::cat(logits);
  const double sampled = std::max<int64_t>(1, all_logits.size(0));
  RpnLosses out;
  out.cls = at::binary_cross_entropy_with_logits(all_logits, at::cat(labels), {}, {}, at::Reduction::Sum) / sampled;
  if (pred_deltas.empty()) {
    out.reg = output.deltas.sum() * 0;
  } else {
    out.reg = at::smooth_l1_loss(at::cat(pred_deltas), at::cat(target_deltas), at::Reduction::Sum,
                                 options.smooth_l1_beta) /
              sampled;
  }
  return out;
}

std::vector<Proposals> make_proposals(const RpnOutput& output, const at::Tensor& anchors,
                                      const std::vector<data::ImageTargets>& images, const RpnOptions& options,
                                      bool training) {
  at::NoGradGuard no_grad;
  const int pre = training ? options.pre_nms_top_k_train : options.pre_nms_top_k_test;
  const int post = training ? options.post_nms_top_k_train : options.post_nms_top_k_test;
  std::vector<Proposals> out;
  for (size_t b = 0; b < images.size(); ++b) {
    const at::Tensor objectness = output.objectness[static_cast<int64_t>(b)].detach();
    const at::Tensor deltas = output.deltas[static_cast<int64_t>(b)].detach();
    std::vector<at::Tensor> picked, level_of;
    int64_t start = 0;
    for (size_t l = 0; l < output.anchors_per_level.size(); ++l) {
      const int64_t n = output.anchors_per_level[l];
      const at::Tensor top = std::get<1>(objectness.slice(0, start, start + n).topk(std::min<int64_t>(pre, n))) + start;
      picked.push_back(top);
      level_of.push_back(at::full({top.size(0)}, static_cast<int64_t>(l), top.options()));
      start += n;
    }
    const at::Tensor idx = at::cat(picked);
    const data::ImageTargets& image = images[b];
    at::Tensor boxes = clip_boxes(decode_deltas(anchors.index_select(0, idx), deltas.index_select(0, idx), kRpnDeltaStds),
                                  image.resized_width, image.resized_height);
    at::Tensor scores = objectness.index_select(0, idx).sigmoid();
    at::Tensor level = at::cat(level_of);
    const at::Tensor big = ((boxes.select(1, 2) - boxes.select(1, 0) >= options.min_size) &
                            (boxes.select(1, 3) - boxes.select(1, 1) >= options.min_size))
                               .nonzero()
                               .squeeze(1);
    boxes = boxes.index_select(0, big);
    scores = scores.index_select(0, big);
    level = level.index_select(0, big);
    at::Tensor keep = batched_nms(boxes, scores, level, options.nms_iou).to(boxes.device());
    if (keep.size(0) > post) keep = keep.slice(0, 0, post);
    out.push_back({boxes.index_select(0, keep), scores.index_select(0, keep)});
  }
  return out;
}

}  // namespace lossforge::detectors
