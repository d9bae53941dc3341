// FCOS as a Detector (detector.hpp): the Fcos model, FcosCriterion and the
// FCOS post-processing. ATSS shares all of it and differs only in which
// points learn which box (the Assigner), as in the ATSS paper's anchor-free
// variant.
#pragma once

#include <memory>
#include <string>

#include "detectors/train/detector.hpp"
#include "detectors/train/targets.hpp"

namespace lossforge::detectors {

// `name` is what describe() calls it ("FCOS", "ATSS"); an empty `assigner`
// is FCOS's own center sampling with regression ranges.
std::unique_ptr<Detector> make_fcos_detector(const ModelConfig& config, const LossSlots& slots,
                                             std::string name = "FCOS", Assigner assigner = {});

}  // namespace lossforge::detectors
