#include "detectors/train/fcos_loss.hpp"

#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>

#include "compiler/error.hpp"
#include "compiler/frontend.hpp"
#include "compiler/presets.hpp"
#include "detectors/data/loader.hpp"
#include "detectors/train/boxes.hpp"

namespace lossforge::detectors {
namespace {

std::string signature_of(const std::vector<LossInput>& inputs) {
  std::string out = "(";
  for (const LossInput& in : inputs)
    out += (out.size() > 1 ? ", " : "") + std::string(in.pred ? "pred " : "") + in.name + ": " + in.type.str();
  return out + ")";
}

void check_fits(const Loss& loss, const Preset& preset, const std::string& spec) {
  bool fits = loss.inputs.size() == preset.inputs.size();
  for (size_t i = 0; fits && i < loss.inputs.size(); ++i)
    fits = loss.inputs[i].type == preset.inputs[i].type && loss.inputs[i].pred == preset.inputs[i].pred;
  if (!fits)
    throw InputError("loss '" + loss.name + "' from " + spec + " " + signature_of(loss.inputs) + " does not fit the " +
                     preset.name + " slot, whose inputs are " + signature_of(preset.inputs));
}

bool is_file(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

}  // namespace

torch_ops::TorchLoss load_slot_loss(const std::string& spec, const std::string& preset_name) {
  const Preset* preset = find_preset(preset_name);
  if (!preset) throw InputError("unknown preset '" + preset_name + "'");
  std::string path = spec, name;
  if (const size_t colon = spec.rfind(':'); colon != std::string::npos && !is_file(spec) && is_file(spec.substr(0, colon))) {
    path = spec.substr(0, colon);
    name = spec.substr(colon + 1);
  }
  if (is_file(path)) {
    const SourcePtr source = SourceFile::read(path);
    std::optional<Module> module;
    try {
      module = load_module(source);
    } catch (const CompileError&) {
      if (!name.empty()) throw;
    }
    if (module && !module->losses.empty()) {
      const Loss* loss = nullptr;
      if (!name.empty()) {
        loss = module->find(name);
        if (!loss) throw InputError(path + ": no loss named '" + name + "'");
      } else if (module->losses.size() == 1) {
        loss = &module->losses.front();
      } else {
        std::string names;
        for (const Loss& l : module->losses) names += (names.empty() ? "" : ", ") + l.name;
        throw InputError(path + " defines several losses; choose one as " + path + ":NAME (" + names + ")");
      }
      check_fits(*loss, *preset, spec);
      return torch_ops::TorchLoss(*loss);
    }
    return torch_ops::TorchLoss(load_formula(source, *preset));  // a file holding a bare formula
  }
  return torch_ops::TorchLoss(load_formula(SourceFile::from_text("<" + preset_name + " formula>", spec), *preset));
}

FcosCriterion::FcosCriterion(torch_ops::TorchLoss cls, torch_ops::TorchLoss reg, TargetOptions targets,
                             Assigner assigner)
    : cls_(std::move(cls)), reg_(std::move(reg)), targets_(std::move(targets)), assigner_(std::move(assigner)) {
  if (!assigner_)
    assigner_ = [options = targets_](const Points& points, const at::Tensor& boxes, const at::Tensor& labels) {
      return assign_points(points, boxes, labels, options);
    };
}

LossTerms FcosCriterion::operator()(const FcosOutput& output, const Points& points,
                                    const std::vector<data::ImageTargets>& images) const {
  const int64_t batch = output.cls.size(0), num_points = output.cls.size(1), classes = output.cls.size(2);
  std::vector<at::Tensor> labels, distances;
  for (const data::ImageTargets& image : images) {
    const GroundTruth truth = ground_truth(image);
    const Assignment a = assigner_(points, truth.boxes, truth.labels);
    labels.push_back(a.labels);
    distances.push_back(a.distances);
  }
  // The assignment is made on the CPU; the losses run where the predictions are.
  const at::Device device = output.cls.device();
  const at::Tensor label = at::cat(labels).to(device);                 // [B·P]
  const at::Tensor stride = points.stride.to(device).repeat({batch});  // [B·P]
  const at::Tensor xy = points.xy.to(device).repeat({batch, 1});       // [B·P, 2]
  const at::Tensor positive = (label >= 0).nonzero().squeeze(1);       // indices
  const int64_t npos = positive.size(0);
  const double normaliser = std::max<double>(1, npos);
  const auto float_options = output.cls.options();

  // Regression and the IoU targets, over the positives, in stride units.
  const at::Tensor pos_stride = stride.index_select(0, positive).unsqueeze(1);
  const at::Tensor pos_xy = xy.index_select(0, positive) / pos_stride;
  const at::Tensor pred_boxes = decode_distances(pos_xy, output.reg.reshape({-1, 4}).index_select(0, positive));
  const at::Tensor target_boxes = decode_distances(pos_xy, at::cat(distances).to(device).index_select(0, positive) / pos_stride);
  const at::Tensor iou = aligned_iou(pred_boxes.detach(), target_boxes).clamp_min(1e-7);

  LossTerms terms;
  terms.positives = npos;
  // Classification over every (point, class).
  const at::Tensor pos_label = label.index_select(0, positive);
  at::Tensor py = at::zeros({batch * num_points, classes}, float_options);
  at::Tensor q = at::zeros({batch * num_points, classes}, float_options);
  if (npos > 0) {
    py.index_put_({positive, pos_label}, at::ones({npos}, float_options));
    q.index_put_({positive, pos_label}, iou);
  }
  py = py.view({-1});
  q = q.view({-1});
  const at::Tensor ny = 1 - py;
  const at::Tensor alpha = 0.25 * py + 0.75 * ny;
  // Each term: Σ weight·loss / avg_factor.
  auto weighted_mean = [](at::Tensor weight, double avg_factor) {
    torch_ops::LossOptions o;
    o.reduction = torch_ops::Reduction::Mean;
    o.weight = std::move(weight);
    o.avg_factor = avg_factor;
    return o;
  };
  terms.cls = cls_({output.cls.reshape({-1}).contiguous(), q, py, ny}, weighted_mean(alpha, normaliser));
  if (npos > 0) {
    terms.reg = reg_({pred_boxes.contiguous(), target_boxes.contiguous()},
                     weighted_mean(iou, iou.sum().item<double>()));
    const at::Tensor ctr = output.centerness.reshape({-1}).index_select(0, positive);
    terms.centerness = at::binary_cross_entropy_with_logits(ctr, iou, {}, {}, at::Reduction::Sum) / normaliser;
  } else {
    terms.reg = output.reg.sum() * 0;
    terms.centerness = output.centerness.sum() * 0;
  }
  return terms;
}

}  // namespace lossforge::detectors
