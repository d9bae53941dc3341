#include "detectors/train/atss_targets.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "compiler/error.hpp"
#include "detectors/train/boxes.hpp"

namespace lossforge::detectors {
namespace {

Assignment background(int64_t points, const at::TensorOptions& on) {
  return {at::full({points}, -1, on.dtype(at::kLong)), at::full({points}, -1, on.dtype(at::kLong)),
          at::zeros({points, 4}, on.dtype(at::kFloat))};
}

// The number of points of each level: runs of equal stride, in order.
std::vector<int64_t> level_counts(const at::Tensor& stride) {
  const at::Tensor counts = std::get<2>(at::unique_consecutive(stride, false, true)).to(at::kCPU);
  return {counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + counts.numel()};
}

}  // namespace

Assignment assign_atss(const Points& points, const at::Tensor& boxes, const at::Tensor& labels,
                       const AtssOptions& options) {
  if (options.top_k < 1) throw InputError("ATSS top_k must be at least 1, not " + std::to_string(options.top_k));
  if (!(options.anchor_scale > 0))
    throw InputError("ATSS anchor_scale must be positive, not " + std::to_string(options.anchor_scale));
  const int64_t p = points.xy.size(0), g = boxes.size(0);
  const at::TensorOptions on = points.xy.options();
  if (g == 0 || p == 0) return background(p, on);

  const at::Tensor xy = points.xy.to(at::kDouble);
  const at::Tensor box = boxes.to(xy.device(), at::kDouble);
  const at::Tensor half = (points.stride.to(at::kDouble) * (options.anchor_scale / 2)).unsqueeze(1);  // [P, 1]
  const at::Tensor anchors = at::cat({xy - half, xy + half}, 1);                                     // [P, 4]
  const at::Tensor iou = pairwise_iou(anchors, box);                                                 // [P, G]

  // Squared distances from every point to every box centre: only their order counts.
  const at::Tensor x = xy.select(1, 0).unsqueeze(1), y = xy.select(1, 1).unsqueeze(1);  // [P, 1]
  const at::Tensor x1 = box.select(1, 0).unsqueeze(0), y1 = box.select(1, 1).unsqueeze(0);  // [1, G]
  const at::Tensor x2 = box.select(1, 2).unsqueeze(0), y2 = box.select(1, 3).unsqueeze(0);
  const at::Tensor dx = x - (x1 + x2) / 2, dy = y - (y1 + y2) / 2;
  const at::Tensor distance = dx * dx + dy * dy;  // [P, G]

  // 1. The top_k nearest points of every level, per box: [C, G] point indices.
  std::vector<at::Tensor> per_level;
  int64_t start = 0;
  for (const int64_t count : level_counts(points.stride)) {
    const int64_t k = std::min(options.top_k, count);
    const at::Tensor order = distance.narrow(0, start, count).argsort(/*stable=*/true, /*dim=*/0);
    per_level.push_back(order.narrow(0, 0, k) + start);
    start += count;
  }
  const at::Tensor candidates = at::cat(per_level);  // [C, G]
  const int64_t c = candidates.size(0);

  // 2. The threshold of each box: mean + unbiased std of its candidates' IoUs.
  const at::Tensor candidate_iou = iou.gather(0, candidates);  // [C, G]
  at::Tensor threshold = candidate_iou.mean(0);
  if (c > 1) threshold = threshold + candidate_iou.std(at::IntArrayRef{0}, /*unbiased=*/true);

  // 3. Positives: over the threshold, centre strictly inside the box.
  const at::Tensor cx = x.squeeze(1).index_select(0, candidates.reshape(-1)).view({c, g});
  const at::Tensor cy = y.squeeze(1).index_select(0, candidates.reshape(-1)).view({c, g});
  const at::Tensor inside = at::stack({cx - x1, cy - y1, x2 - cx, y2 - cy}).amin(0) > 0;
  const at::Tensor positive = (candidate_iou >= threshold.unsqueeze(0)) & inside;

  // A point claimed by several boxes takes the one of highest IoU; IoU >= 0,
  // so -1 marks "not a positive of this box".
  const at::Tensor unclaimed = at::full({}, -1.0, iou.options());
  const at::Tensor claims =
      at::full({p, g}, -1.0, iou.options()).scatter_(0, candidates, at::where(positive, candidate_iou, unclaimed));
  const at::Tensor best = claims.argmax(1);  // the first of equal maxima: the lower box index
  const at::Tensor assigned = claims.gather(1, best.unsqueeze(1)).squeeze(1) >= 0;

  Assignment out;
  const at::Tensor none = at::full({}, -1, best.options());
  out.gt_index = at::where(assigned, best, none).to(on.dtype(at::kLong));
  out.labels = at::where(assigned, labels.to(best.device()).index_select(0, best), none).to(on.dtype(at::kLong));
  const at::Tensor learnt = boxes.to(on.dtype(at::kFloat)).index_select(0, best.to(on.device()));
  out.distances = at::where(assigned.to(on.device()).unsqueeze(1),
                            encode_distances(points.xy.to(at::kFloat), learnt), at::zeros({}, on.dtype(at::kFloat)));
  return out;
}

}  // namespace lossforge::detectors
