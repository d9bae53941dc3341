#include "detectors/train/targets.hpp"

#include <ATen/ATen.h>

#include <cstdint>
#include <limits>

#include "detectors/train/boxes.hpp"

namespace lossforge::detectors {

Points make_points(const std::vector<std::array<int64_t, 2>>& level_sizes, const std::vector<int>& strides,
                   const TargetOptions& options) {
  std::vector<at::Tensor> xy, stride, range;
  const auto f = at::TensorOptions().dtype(at::kFloat);
  for (size_t l = 0; l < level_sizes.size(); ++l) {
    const auto [h, w] = level_sizes[l];
    const double s = strides.at(l);
    const at::Tensor xs = (at::arange(w, f) + 0.5) * s;
    const at::Tensor ys = (at::arange(h, f) + 0.5) * s;
    // Row-major over (y, x), as the head flattens its maps.
    xy.push_back(at::stack({xs.repeat({h}), ys.repeat_interleave(w)}, 1));
    stride.push_back(at::full({h * w}, s, f));
    std::array<double, 2> r;
    if (l < options.regress_ranges.size()) {
      r = options.regress_ranges[l];
    } else {
      r = {options.regress_ranges.empty() ? -1 : options.regress_ranges.back()[1], 1e8};
    }
    range.push_back(at::tensor({static_cast<float>(r[0]), static_cast<float>(r[1])}, f).repeat({h * w, 1}));
  }
  return {at::cat(xy), at::cat(stride), at::cat(range)};
}

Assignment assign_points(const Points& points, const at::Tensor& boxes, const at::Tensor& labels,
                         const TargetOptions& options) {
  const int64_t p = points.xy.size(0), g = boxes.size(0);
  Assignment out;
  if (g == 0) {
    out.labels = at::full({p}, -1, at::kLong);
    out.gt_index = at::full({p}, -1, at::kLong);
    out.distances = at::zeros({p, 4}, at::kFloat);
    return out;
  }
  const at::Tensor x = points.xy.select(1, 0).unsqueeze(1), y = points.xy.select(1, 1).unsqueeze(1);  // [P, 1]
  const at::Tensor x1 = boxes.select(1, 0).unsqueeze(0), y1 = boxes.select(1, 1).unsqueeze(0);       // [1, G]
  const at::Tensor x2 = boxes.select(1, 2).unsqueeze(0), y2 = boxes.select(1, 3).unsqueeze(0);
  const at::Tensor d = at::stack({x - x1, y - y1, x2 - x, y2 - y}, 2);  // [P, G, 4]

  at::Tensor inside;
  if (options.center_radius > 0) {
    const at::Tensor radius = (points.stride * options.center_radius).unsqueeze(1);  // [P, 1]
    const at::Tensor cx = (x1 + x2) / 2, cy = (y1 + y2) / 2;
    const at::Tensor cx1 = at::max(cx - radius, x1), cy1 = at::max(cy - radius, y1);
    const at::Tensor cx2 = at::min(cx + radius, x2), cy2 = at::min(cy + radius, y2);
    inside = at::stack({x - cx1, y - cy1, cx2 - x, cy2 - y}, 2).amin(2) > 0;
  } else {
    inside = d.amin(2) > 0;
  }
  const at::Tensor reach = d.amax(2);
  const at::Tensor in_range = (reach >= points.range.select(1, 0).unsqueeze(1)) & (reach <= points.range.select(1, 1).unsqueeze(1));
  const at::Tensor area = ((x2 - x1) * (y2 - y1)).expand({p, g});
  const at::Tensor candidate_area = at::where(inside & in_range, area, at::full({}, std::numeric_limits<float>::infinity(), area.options()));
  auto [min_area, index] = candidate_area.min(1);
  const at::Tensor positive = min_area.isfinite();
  out.gt_index = at::where(positive, index, at::full({}, -1, at::kLong));
  out.labels = at::where(positive, labels.index_select(0, index), at::full({}, -1, at::kLong));
  out.distances = at::where(positive.unsqueeze(1),
                            d.gather(1, index.view({p, 1, 1}).expand({p, 1, 4})).squeeze(1),
                            at::zeros({}, at::kFloat));
  return out;
}

}  // namespace lossforge::detectors
