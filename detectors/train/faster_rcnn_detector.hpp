// Faster R-CNN as a Detector (detector.hpp): the FasterRcnn model
// (faster_rcnn.hpp), its four loss terms and its post-processing.
//
// Loss terms, in this order:
//   rpn_cls, rpn_reg  the RPN's fixed losses (rpn.hpp)
//   cls  the classification slot: any `multi_cls` loss over the sampled RoIs
//        of the batch, X the K + 1 logits (background last), Y the one-hot
//        label, Z per row the detached IoU of the positive's decoded box with
//        its ground truth (all ones on background rows, SPEC §2); the mean
//        over the sampled RoIs. Default rcnn_cross_entropy.loss.
//   reg  the regression slot: any `reg` loss on the positives' decoded boxes
//        (reg_decoded_bbox) against their ground truth, in canvas pixels,
//        weight 10 (SPEC §4). Default giou.loss. A loss over real[4] deltas,
//        such as box_l1.loss:l1, fills the slot too: it then sees the
//        predicted and target deltas (stds 0.1, 0.1, 0.2, 0.2), weight 1 (the
//        CE + L1 baseline). Either way the sum over the positives is divided
//        by the number of sampled RoIs, as mmdetection's bbox head does
//        (avg_factor = all sampled RoIs), the setting those weights and
//        CSE-Autoloss-A were tuned in; a mean over the positives would weigh
//        regression up to 4 times more at 25% positives.
//
// Post-processing: per RoI the softmax scores of the K classes, the one
// class-agnostic box decoded and clipped to the image's part of the canvas;
// every (RoI, class) scoring above 0.05 is a candidate, NMS at 0.5 within
// each class, the best 100 kept.
#pragma once

#include <memory>

#include "detectors/train/detector.hpp"
#include "detectors/train/faster_rcnn.hpp"

namespace lossforge::detectors {

std::unique_ptr<Detector> make_faster_rcnn_detector(const ModelConfig& config, const LossSlots& slots,
                                                    const FasterRcnnOptions& options = {});

}  // namespace lossforge::detectors
