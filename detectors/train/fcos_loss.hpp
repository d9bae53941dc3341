// The losses of FCOS training, with the classification and regression slots
// filled by lossforge losses (SPEC §2, §4):
//
//   cls  any `binary_cls` loss over every (point, class) element: X the logit,
//        PY the one-hot label (all 0 for background), NY = 1 - PY, Q the
//        detached IoU of the decoded prediction at a positive's class, else 0.
//        Multiplied by α_t = 0.25·PY + 0.75·NY, summed, divided by the number
//        of positive points.
//   reg  any `reg` loss over the positive points: P the predicted box decoded
//        from the point, G the target box (both in stride units, so the loss
//        sees every level alike); weighted by the centerness target and
//        normalised by its sum (mmdetection's FCOS), loss weight 1.
//   centerness  binary cross-entropy against the centerness target, which is,
//        as in CSE-Autoloss, the IoU of the decoded prediction with its target
//        (detached, at least 1e-7); divided by the number of positives.
#pragma once

#include <cstdint>
#include <string>

#include "detectors/train/model.hpp"
#include "detectors/train/targets.hpp"
#include "runtime/torch/loss_op.hpp"

namespace lossforge::data {
struct ImageTargets;
}

namespace lossforge::detectors {

// A slot's loss from a specification:
//   FILE.loss         the file's only loss
//   FILE.loss:NAME    the loss NAME of the file
//   FORMULA           a bare formula (infix or DEAP prefix, or a file holding
//                     one) over the slot's preset: "binary_cls" or "reg"
// A loss fits a slot when its inputs match the preset's inputs in order and
// type, the first being its only pred. Throws CompileError for bad text and
// InputError when the loss does not fit.
torch_ops::TorchLoss load_slot_loss(const std::string& spec, const std::string& preset);

struct LossTerms {
  at::Tensor cls, reg, centerness;  // scalars
  int64_t positives = 0;
  at::Tensor total() const { return cls + reg + centerness; }
};

class FcosCriterion {
 public:
  // `assigner` picks each point's box; empty: assign_points with `targets`.
  FcosCriterion(torch_ops::TorchLoss cls, torch_ops::TorchLoss reg, TargetOptions targets = {},
                Assigner assigner = {});
  // The loss terms of a batch. `points` must be make_points() of the output's levels.
  LossTerms operator()(const FcosOutput& output, const Points& points,
                       const std::vector<data::ImageTargets>& images) const;
  const TargetOptions& target_options() const { return targets_; }

 private:
  torch_ops::TorchLoss cls_, reg_;
  TargetOptions targets_;
  Assigner assigner_;
};

}  // namespace lossforge::detectors
