#include "detectors/train/detector.hpp"

#include "compiler/error.hpp"
#include "detectors/train/atss_targets.hpp"
#include "detectors/train/fcos_detector.hpp"
#include "detectors/train/faster_rcnn_detector.hpp"

namespace lossforge::detectors {

const std::vector<std::string>& detector_names() {
  static const std::vector<std::string> names = {"fcos", "atss", "faster_rcnn"};
  return names;
}

std::unique_ptr<Detector> make_detector(const std::string& name, const ModelConfig& config, const LossSlots& slots) {
  if (name == "fcos") return make_fcos_detector(config, slots);
  if (name == "faster_rcnn") return make_faster_rcnn_detector(config, slots);
  if (name == "atss")  // the paper's anchor-free ATSS: FCOS with ATSS's sample selection
    return make_fcos_detector(config, slots, "ATSS",
                              [options = AtssOptions{.anchor_scale = config.atss_anchor_scale}](
                                  const Points& points, const at::Tensor& boxes, const at::Tensor& labels) {
                                return assign_atss(points, boxes, labels, options);
                              });
  std::string known;
  for (const std::string& n : detector_names()) known += (known.empty() ? "" : ", ") + n;
  throw InputError("unknown detector '" + name + "' (use " + known + ")");
}

}  // namespace lossforge::detectors
