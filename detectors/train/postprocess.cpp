#include "detectors/train/postprocess.hpp"

#include <cstdint>

#include <ATen/ATen.h>

#include "detectors/train/boxes.hpp"

namespace lossforge::detectors {

std::vector<ImageDetections> postprocess(const FcosOutput& output, const Points& points,
                                         const std::vector<data::ImageTargets>& images,
                                         const PostprocessOptions& options) {
  at::NoGradGuard no_grad;
  std::vector<ImageDetections> out;
  const int64_t classes = output.cls.size(2);
  for (int64_t b = 0; b < output.cls.size(0); ++b) {
    const at::Tensor cls = output.cls[b].sigmoid().to(at::kCPU);                       // [P, K]
    const at::Tensor ctr = output.centerness[b].sigmoid().to(at::kCPU);                // [P]
    const at::Tensor candidates = (cls > options.score_threshold).view({-1}).nonzero().squeeze(1);
    at::Tensor scores = (cls * ctr.unsqueeze(1)).view({-1}).index_select(0, candidates);
    at::Tensor flat = candidates;
    if (scores.size(0) > options.pre_nms_top_k) {
      auto [top, order] = scores.topk(options.pre_nms_top_k);
      scores = top;
      flat = flat.index_select(0, order);
    }
    const at::Tensor point = flat.div(classes, "floor");
    const at::Tensor label = flat.remainder(classes);
    const at::Tensor dist = output.reg[b].to(at::kCPU).index_select(0, point) * points.stride.index_select(0, point).unsqueeze(1);
    at::Tensor boxes = decode_distances(points.xy.index_select(0, point), dist);
    const data::ImageTargets& image = images.at(static_cast<size_t>(b));
    boxes = at::stack({boxes.select(1, 0).clamp(0, image.resized_width), boxes.select(1, 1).clamp(0, image.resized_height),
                       boxes.select(1, 2).clamp(0, image.resized_width), boxes.select(1, 3).clamp(0, image.resized_height)}, 1);
    at::Tensor keep = batched_nms(boxes, scores, label, options.nms_iou);
    if (keep.size(0) > options.max_detections) keep = keep.slice(0, 0, options.max_detections);
    out.push_back({boxes.index_select(0, keep), scores.index_select(0, keep), label.index_select(0, keep)});
  }
  return out;
}

std::vector<data::Detection> to_coco(const ImageDetections& detections, const data::ImageTargets& image,
                                     const data::LabelMap& labels) {
  std::vector<data::Detection> out;
  const at::Tensor boxes = detections.boxes.to(at::kFloat).contiguous();
  const at::Tensor scores = detections.scores.to(at::kDouble).contiguous();
  const at::Tensor label = detections.labels.contiguous();
  for (int64_t i = 0; i < boxes.size(0); ++i) {
    const float* b = boxes.data_ptr<float>() + 4 * i;
    data::Detection d;
    d.image_id = image.image_id;
    d.category_id = labels.category_id(static_cast<int>(label.data_ptr<int64_t>()[i]));
    d.bbox = data::to_original_xywh(image, {b[0], b[1], b[2], b[3]});
    d.score = scores.data_ptr<double>()[i];
    out.push_back(d);
  }
  return out;
}

}  // namespace lossforge::detectors
