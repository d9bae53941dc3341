#include "detectors/train/anchors.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>

#include "compiler/error.hpp"

namespace lossforge::detectors {

at::Tensor make_anchors(const std::vector<std::array<int64_t, 2>>& level_sizes, const std::vector<int>& strides,
                        const AnchorOptions& options) {
  if (options.sizes.size() != level_sizes.size() || strides.size() != level_sizes.size())
    throw InputError(std::to_string(options.sizes.size()) + " anchor sizes for " + std::to_string(level_sizes.size()) +
                     " pyramid levels");
  std::vector<at::Tensor> levels;
  for (size_t l = 0; l < level_sizes.size(); ++l) {
    const auto [h, w] = level_sizes[l];
    const double s = strides[l];
    std::vector<float> shape;  // half-width, half-height per ratio
    for (double r : options.ratios) {
      shape.push_back(static_cast<float>(options.sizes[l] / std::sqrt(r) / 2));
      shape.push_back(static_cast<float>(options.sizes[l] * std::sqrt(r) / 2));
    }
    const int64_t nr = static_cast<int64_t>(options.ratios.size());
    const at::Tensor half = at::tensor(shape, at::kFloat).view({1, nr, 2});
    const at::Tensor ys = (at::arange(h, at::kFloat) + 0.5) * s;
    const at::Tensor xs = (at::arange(w, at::kFloat) + 0.5) * s;
    const at::Tensor cy = ys.view({h, 1}).expand({h, w}).reshape({-1, 1, 1});
    const at::Tensor cx = xs.view({1, w}).expand({h, w}).reshape({-1, 1, 1});
    const at::Tensor centre = at::cat({cx, cy}, 2);  // [H·W, 1, 2]
    levels.push_back(at::cat({centre - half, centre + half}, 2).reshape({-1, 4}));
  }
  return at::cat(levels);
}

namespace {
struct Xywh {
  at::Tensor x, y, w, h;
};
Xywh xywh(const at::Tensor& b) {
  const at::Tensor w = b.select(1, 2) - b.select(1, 0), h = b.select(1, 3) - b.select(1, 1);
  return {b.select(1, 0) + 0.5 * w, b.select(1, 1) + 0.5 * h, w, h};
}
}  // namespace

at::Tensor encode_deltas(const at::Tensor& reference, const at::Tensor& boxes, const DeltaStds& stds) {
  const Xywh r = xywh(reference), g = xywh(boxes);
  return at::stack({(g.x - r.x) / r.w / stds[0], (g.y - r.y) / r.h / stds[1], at::log(g.w / r.w) / stds[2],
                    at::log(g.h / r.h) / stds[3]},
                   1);
}

at::Tensor decode_deltas(const at::Tensor& reference, const at::Tensor& deltas, const DeltaStds& stds) {
  static const double kMaxLogSize = std::log(1000.0 / 16);
  const Xywh r = xywh(reference);
  const at::Tensor x = r.x + deltas.select(1, 0) * stds[0] * r.w;
  const at::Tensor y = r.y + deltas.select(1, 1) * stds[1] * r.h;
  const at::Tensor w = r.w * at::exp((deltas.select(1, 2) * stds[2]).clamp_max(kMaxLogSize));
  const at::Tensor h = r.h * at::exp((deltas.select(1, 3) * stds[3]).clamp_max(kMaxLogSize));
  return at::stack({x - 0.5 * w, y - 0.5 * h, x + 0.5 * w, y + 0.5 * h}, 1);
}

at::Tensor clip_boxes(const at::Tensor& boxes, double width, double height) {
  return at::stack({boxes.select(1, 0).clamp(0, width), boxes.select(1, 1).clamp(0, height),
                    boxes.select(1, 2).clamp(0, width), boxes.select(1, 3).clamp(0, height)},
                   1);
}

}  // namespace lossforge::detectors
