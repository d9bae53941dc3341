// From head outputs to detections (mmdetection's FCOS test configuration):
// per image, class scores sigmoid(cls) above `score_threshold` become
// candidates scored sigmoid(cls)·sigmoid(centerness); the best
// `pre_nms_top_k` are decoded (point ± distance·stride), clipped to the
// image's part of the canvas, suppressed per class with NMS at `nms_iou`, and
// the best `max_detections` kept.
#pragma once

#include <vector>

#include "detectors/data/coco_eval.hpp"
#include "detectors/data/loader.hpp"
#include "detectors/train/model.hpp"
#include "detectors/train/targets.hpp"

namespace lossforge::detectors {

struct PostprocessOptions {
  double score_threshold = 0.05;
  int pre_nms_top_k = 1000;
  double nms_iou = 0.6;
  int max_detections = 100;
};

struct ImageDetections {
  at::Tensor boxes;   // [D, 4] canvas pixels, x1 y1 x2 y2
  at::Tensor scores;  // [D], descending
  at::Tensor labels;  // [D] int64, 0..K-1
};

std::vector<ImageDetections> postprocess(const FcosOutput& output, const Points& points,
                                         const std::vector<data::ImageTargets>& images,
                                         const PostprocessOptions& options = {});

// COCO results entries: boxes back in original image pixels ([x, y, w, h]),
// labels as category ids.
std::vector<data::Detection> to_coco(const ImageDetections& detections, const data::ImageTargets& image,
                                     const data::LabelMap& labels);

}  // namespace lossforge::detectors
