// What the trainer trains: a detector behind one small interface, so that
// `lossforge train --detector fcos|atss|faster_rcnn` shares the loop, the
// checkpoints, the NaN checks and the COCO evaluation (trainer.cpp), and each
// detector keeps its model, targets and losses to itself.
//
//   std::unique_ptr<Detector> d = make_detector("fcos", config, slots);
//   std::vector<LossTerm> terms = d->losses(images, batch.targets);   // training
//   std::vector<ImageDetections> found = d->detect(images, batch.targets);  // eval
//
// Each detector fills the loss slots of SPEC §2 with lossforge losses: a
// one-stage detector's classification slot takes a `binary_cls` loss, a
// two-stage detector's a `multi_cls` loss; the regression slot a `reg` loss.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "detectors/train/model.hpp"
#include "detectors/train/postprocess.hpp"

namespace lossforge::data {
struct ImageTargets;
}

namespace lossforge::detectors {

// One named scalar term of the training loss ("cls", "reg", "centerness",
// "rpn_cls", ...); the total is their sum.
struct LossTerm {
  std::string name;
  at::Tensor value;
};

// The loss specifications of the two slots (load_slot_loss in fcos_loss.hpp);
// empty: the detector's default DSL files.
struct LossSlots {
  std::string cls, reg;
};

class Detector {
 public:
  virtual ~Detector() = default;

  // The model: parameters, train()/eval(), to(device), save/load.
  virtual torch::nn::Module& module() = 0;
  // The ResNet backbone, for ImageNet weights (safetensors.hpp).
  virtual ResNetImpl& backbone() = 0;
  // One line: "FCOS ResNet-18 x0.25, FPN 64, 2 tower convs, 5 levels, 5 classes".
  virtual std::string describe() const = 0;
  // The preset of the classification slot: "binary_cls" or "multi_cls".
  virtual std::string cls_preset() const = 0;

  // The loss terms of a training batch: images [B, 3, H, W] on the model's
  // device (H, W multiples of the top stride), one ImageTargets per image.
  // The same names in the same order on every call.
  virtual std::vector<LossTerm> losses(const at::Tensor& images, const std::vector<data::ImageTargets>& targets) = 0;
  // Detections per image in canvas pixels, in eval mode under NoGradGuard.
  virtual std::vector<ImageDetections> detect(const at::Tensor& images,
                                              const std::vector<data::ImageTargets>& targets) = 0;
};

// The detectors `lossforge train --detector` accepts.
const std::vector<std::string>& detector_names();  // {"fcos", "atss", "faster_rcnn"}

// A new detector with freshly initialised weights (torch's current RNG).
// Throws InputError for an unknown name, a bad configuration or a loss that
// does not fit its slot, CompileError for bad loss text.
std::unique_ptr<Detector> make_detector(const std::string& name, const ModelConfig& config, const LossSlots& slots);

}  // namespace lossforge::detectors
