#include "detectors/train/fcos_detector.hpp"

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>

#include "compiler/frontend.hpp"
#include "detectors/train/fcos_loss.hpp"
#include "detectors_default_losses.hpp"

namespace lossforge::detectors {
namespace {

// A slot's loss: the specification, or the bundled default.
torch_ops::TorchLoss slot_loss(const std::string& spec, const char* preset, const char* default_name,
                               const char* default_text) {
  if (!spec.empty()) return load_slot_loss(spec, preset);
  const Module module = load_module(SourceFile::from_text(default_name, default_text));
  return torch_ops::TorchLoss(module.losses.front());
}

class FcosDetector final : public Detector {
 public:
  FcosDetector(const ModelConfig& config, const LossSlots& slots, std::string name, Assigner assigner)
      : name_(std::move(name)),
        model_(config),
        criterion_(slot_loss(slots.cls, "binary_cls", kDefaultClsLossName, kDefaultClsLoss),
                   slot_loss(slots.reg, "reg", kDefaultRegLossName, kDefaultRegLoss), TargetOptions{},
                   std::move(assigner)) {}

  torch::nn::Module& module() override { return *model_; }
  ResNetImpl& backbone() override { return *model_->backbone(); }
  std::string cls_preset() const override { return "binary_cls"; }

  std::string describe() const override {
    const ModelConfig& c = model_->config();
    return name_ + " " + c.backbone_text() + ", " + std::to_string(c.tower_convs) + " tower convs, " +
           std::to_string(c.strides.size()) + " levels, " + std::to_string(c.num_classes) + " classes";
  }

  std::vector<LossTerm> losses(const at::Tensor& images, const std::vector<data::ImageTargets>& targets) override {
    // On the images' device: the loss op runs CUDA tensors on its NVRTC kernels.
    const FcosOutput out = model_->forward(images);
    const LossTerms terms = criterion_(out, points_for(out), targets);
    return {{"cls", terms.cls}, {"reg", terms.reg}, {"centerness", terms.centerness}};
  }

  std::vector<ImageDetections> detect(const at::Tensor& images,
                                      const std::vector<data::ImageTargets>& targets) override {
    FcosOutput out = model_->forward(images);
    return postprocess(out, points_for(out), targets);
  }

 private:
  // The points of the pyramid, made once per canvas size.
  const Points& points_for(const FcosOutput& out) {
    if (!points_ || level_sizes_ != out.level_sizes) {
      points_ = make_points(out.level_sizes, model_->config().strides, criterion_.target_options());
      level_sizes_ = out.level_sizes;
    }
    return *points_;
  }

  std::string name_;
  Fcos model_;
  FcosCriterion criterion_;
  std::optional<Points> points_;
  std::vector<std::array<int64_t, 2>> level_sizes_;
};

}  // namespace

std::unique_ptr<Detector> make_fcos_detector(const ModelConfig& config, const LossSlots& slots, std::string name,
                                             Assigner assigner) {
  return std::make_unique<FcosDetector>(config, slots, std::move(name), std::move(assigner));
}

}  // namespace lossforge::detectors
