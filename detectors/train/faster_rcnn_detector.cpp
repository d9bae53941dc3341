#include "detectors/train/faster_rcnn_detector.hpp"

#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <optional>

#include "compiler/error.hpp"
#include "compiler/frontend.hpp"
#include "detectors/data/loader.hpp"
#include "detectors/train/boxes.hpp"
#include "detectors/train/fcos_loss.hpp"
#include "detectors_default_losses.hpp"

namespace lossforge::detectors {
namespace {

torch_ops::TorchLoss default_loss(const char* name, const char* text) {
  return torch_ops::TorchLoss(load_module(SourceFile::from_text(name, text)).losses.front());
}

// A loss over deltas, (pred d: real[4], t: real[4]), named by FILE.loss[:NAME]; none otherwise.
std::optional<torch_ops::TorchLoss> delta_loss(const std::string& spec) {
  std::error_code ec;
  std::string path = spec, name;
  if (const size_t colon = spec.rfind(':'); colon != std::string::npos && !std::filesystem::is_regular_file(spec, ec)) {
    path = spec.substr(0, colon);
    name = spec.substr(colon + 1);
  }
  if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
  try {
    torch_ops::TorchLoss loss = torch_ops::load_loss(path, name);
    const std::vector<LossInput>& in = loss.loss().inputs;
    if (in.size() == 2 && in[0].pred && !in[1].pred && in[0].type.str() == "real[4]" && in[1].type.str() == "real[4]")
      return loss;
  } catch (const Error&) {
  }
  return std::nullopt;
}

struct RegSlot {
  torch_ops::TorchLoss loss;
  bool on_deltas = false;
};

RegSlot reg_slot(const std::string& spec) {
  if (spec.empty()) return {default_loss(kDefaultRegLossName, kDefaultRegLoss), false};
  try {
    return {load_slot_loss(spec, "reg"), false};
  } catch (const InputError&) {
    if (std::optional<torch_ops::TorchLoss> deltas = delta_loss(spec)) return {*deltas, true};
    throw;
  }
}

torch_ops::TorchLoss cls_slot(const std::string& spec) {
  if (spec.empty()) return default_loss(kDefaultRcnnClsLossName, kDefaultRcnnClsLoss);
  return load_slot_loss(spec, "multi_cls");
}

torch_ops::LossOptions mean_over(double count) {
  torch_ops::LossOptions o;
  o.reduction = torch_ops::Reduction::Mean;
  o.avg_factor = std::max(1.0, count);
  return o;
}

class FasterRcnnDetector final : public Detector {
 public:
  FasterRcnnDetector(const ModelConfig& config, const LossSlots& slots, const FasterRcnnOptions& options)
      : model_(config, options), cls_(cls_slot(slots.cls)), reg_(reg_slot(slots.reg)) {}

  torch::nn::Module& module() override { return *model_; }
  ResNetImpl& backbone() override { return *model_->backbone(); }
  std::string cls_preset() const override { return "multi_cls"; }

  std::string describe() const override {
    const ModelConfig& c = model_->config();
    const FasterRcnnOptions& o = model_->options();
    std::string sizes;
    for (double s : o.rpn.anchors.sizes) sizes += (sizes.empty() ? "" : "/") + std::to_string(std::lround(s));
    const int levels = static_cast<int>(o.strides().size());
    return "Faster R-CNN " + c.backbone_text() + ", P2-P" + std::to_string(1 + levels) + ", anchors " + sizes + " x" +
           std::to_string(o.rpn.anchors.ratios.size()) + " ratios, RoIAlign " + std::to_string(o.roi_align.output_size) +
           "x" + std::to_string(o.roi_align.output_size) + ", 2 fc " + std::to_string(o.head_channels) + ", " +
           std::to_string(c.num_classes) + " classes" + (reg_.on_deltas ? ", reg on deltas" : "");
  }

  std::vector<LossTerm> losses(const at::Tensor& images, const std::vector<data::ImageTargets>& targets) override {
    const FasterRcnnOptions& o = model_->options();
    const int64_t classes = model_->config().num_classes;
    const std::vector<at::Tensor> levels = model_->features(images);
    const RpnOutput rpn = model_->rpn(levels);
    const at::Tensor& anchors = anchors_for(levels);
    std::vector<GroundTruth> truth;
    for (const data::ImageTargets& t : targets) truth.push_back(ground_truth(t, images.device()));
    const RpnLosses rpn_terms = rpn_losses(rpn, anchors, truth, o.rpn);
    const std::vector<Proposals> proposals = make_proposals(rpn, anchors, targets, o.rpn, /*training=*/true);

    // The sampled RoIs of the batch, and which rows are positive.
    std::vector<at::Tensor> rois, labels, gt, positive_rows;
    int64_t offset = 0;
    for (size_t b = 0; b < targets.size(); ++b) {
      const RoiSample s = sample_rois(proposals[b].boxes, truth[b], classes, o);
      const int64_t r = s.boxes.size(0);
      rois.push_back(at::cat({at::full({r, 1}, static_cast<double>(b), s.boxes.options()), s.boxes}, 1));
      labels.push_back(s.labels);
      gt.push_back(s.targets);
      positive_rows.push_back(at::arange(offset, offset + s.positives, s.labels.options()));
      offset += r;
    }
    const at::Tensor all_rois = at::cat(rois), label = at::cat(labels), targets_pos = at::cat(gt);
    const at::Tensor pos = at::cat(positive_rows);
    const int64_t npos = pos.size(0), nrois = all_rois.size(0);
    auto [logits, deltas] = model_->box_head(levels, all_rois);

    // The second stage's losses, on the images' device like every term (where
    // the loss op runs the NVRTC kernels on CUDA tensors).
    const at::Tensor roi_boxes = all_rois.slice(1, 1, 5).index_select(0, pos);
    const at::Tensor pos_deltas = deltas.index_select(0, pos);
    const at::Tensor decoded = decode_deltas(roi_boxes, pos_deltas, kRcnnDeltaStds);
    const at::Tensor iou = aligned_iou(decoded.detach(), targets_pos);

    at::Tensor row_iou = at::zeros({nrois}, logits.options());
    at::Tensor positive = at::zeros({nrois}, logits.options().dtype(at::kBool));
    if (npos > 0) {
      row_iou.index_put_({pos}, iou);
      positive.index_fill_(0, pos, true);
    }
    const at::Tensor y = at::one_hot(label, classes + 1).to(logits.scalar_type());
    const at::Tensor z = multi_cls_iou_map(row_iou, positive, classes + 1);
    const at::Tensor cls = cls_({logits.contiguous(), y, z}, mean_over(static_cast<double>(nrois)));

    at::Tensor reg;
    if (npos == 0) {
      reg = deltas.sum() * 0;
    } else if (reg_.on_deltas) {
      const at::Tensor target = encode_deltas(roi_boxes, targets_pos, kRcnnDeltaStds);
      reg = reg_.loss({pos_deltas.contiguous(), target.contiguous()}, mean_over(nrois)) * o.delta_reg_weight;
    } else {
      reg = reg_.loss({decoded.contiguous(), targets_pos.contiguous()}, mean_over(nrois)) * o.reg_weight;
    }
    return {{"rpn_cls", rpn_terms.cls}, {"rpn_reg", rpn_terms.reg}, {"cls", cls}, {"reg", reg}};
  }

  std::vector<ImageDetections> detect(const at::Tensor& images,
                                      const std::vector<data::ImageTargets>& targets) override {
    at::NoGradGuard no_grad;
    const FasterRcnnOptions& o = model_->options();
    const int64_t classes = model_->config().num_classes;
    const std::vector<at::Tensor> levels = model_->features(images);
    const RpnOutput rpn = model_->rpn(levels);
    const std::vector<Proposals> proposals = make_proposals(rpn, anchors_for(levels), targets, o.rpn, /*training=*/false);
    std::vector<at::Tensor> rois;
    for (size_t b = 0; b < proposals.size(); ++b) {
      const at::Tensor& p = proposals[b].boxes;
      rois.push_back(at::cat({at::full({p.size(0), 1}, static_cast<double>(b), p.options()), p}, 1));
    }
    const at::Tensor all_rois = at::cat(rois);
    auto [logits, deltas] = model_->box_head(levels, all_rois);
    const at::Tensor scores = logits.softmax(1).slice(1, 0, classes).to(at::kCPU).contiguous();
    const at::Tensor boxes = decode_deltas(all_rois.slice(1, 1, 5), deltas, kRcnnDeltaStds).to(at::kCPU);

    std::vector<ImageDetections> out;
    int64_t start = 0;
    for (size_t b = 0; b < proposals.size(); ++b) {
      const int64_t n = proposals[b].boxes.size(0);
      const data::ImageTargets& image = targets.at(b);
      const at::Tensor image_boxes = clip_boxes(boxes.slice(0, start, start + n), image.resized_width, image.resized_height);
      const at::Tensor image_scores = scores.slice(0, start, start + n);
      start += n;
      const at::Tensor flat = (image_scores > o.score_threshold).view({-1}).nonzero().squeeze(1);
      const at::Tensor roi = flat.div(classes, "floor"), label = flat.remainder(classes);
      const at::Tensor candidate_boxes = image_boxes.index_select(0, roi);
      const at::Tensor candidate_scores = image_scores.view({-1}).index_select(0, flat);
      at::Tensor keep = batched_nms(candidate_boxes, candidate_scores, label, o.nms_iou);
      if (keep.size(0) > o.max_detections) keep = keep.slice(0, 0, o.max_detections);
      out.push_back({candidate_boxes.index_select(0, keep), candidate_scores.index_select(0, keep),
                     label.index_select(0, keep)});
    }
    return out;
  }

 private:
  // The anchors of the pyramid, made once per canvas size and device.
  const at::Tensor& anchors_for(const std::vector<at::Tensor>& levels) {
    std::vector<std::array<int64_t, 2>> sizes;
    for (const at::Tensor& l : levels) sizes.push_back({l.size(2), l.size(3)});
    if (!anchors_.defined() || sizes != level_sizes_ || anchors_.device() != levels.front().device()) {
      anchors_ = make_anchors(sizes, model_->options().strides(), model_->options().rpn.anchors)
                     .to(levels.front().device());
      level_sizes_ = sizes;
    }
    return anchors_;
  }

  FasterRcnn model_;
  torch_ops::TorchLoss cls_;
  RegSlot reg_;
  at::Tensor anchors_;
  std::vector<std::array<int64_t, 2>> level_sizes_;
};

}  // namespace

std::unique_ptr<Detector> make_faster_rcnn_detector(const ModelConfig& config, const LossSlots& slots,
                                                    const FasterRcnnOptions& options) {
  return std::make_unique<FasterRcnnDetector>(config, slots, options);
}

}  // namespace lossforge::detectors
