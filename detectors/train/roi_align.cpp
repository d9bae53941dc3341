#include "detectors/train/roi_align.hpp"

#include <cstdint>

#include <ATen/ATen.h>

#include "compiler/error.hpp"

namespace lossforge::detectors {

at::Tensor roi_align(const at::Tensor& features, const at::Tensor& rois, double spatial_scale,
                     const RoiAlignOptions& options) {
  if (options.output_size < 1 || options.sampling_ratio < 1)
    throw InputError("roi_align: output_size and sampling_ratio must be >= 1");
  if (features.dim() != 4) throw InputError("roi_align: features must be [B, C, H, W]");
  if (rois.dim() != 2 || rois.size(1) != 5) throw InputError("roi_align: rois must be [R, 5]");
  const int64_t channels = features.size(1), height = features.size(2), width = features.size(3);
  const int64_t out = options.output_size, grid = options.sampling_ratio, r = rois.size(0);
  if (r == 0) return at::zeros({0, channels, out, out}, features.options());

  // Sample coordinates in feature cells: [R, out·grid] along each axis.
  const at::Tensor boxes = rois.detach().to(features.options().requires_grad(false));
  const at::Tensor x1 = boxes.select(1, 1) * spatial_scale - 0.5, y1 = boxes.select(1, 2) * spatial_scale - 0.5;
  const at::Tensor bin_w = ((boxes.select(1, 3) - boxes.select(1, 1)) * spatial_scale / out).unsqueeze(1);
  const at::Tensor bin_h = ((boxes.select(1, 4) - boxes.select(1, 2)) * spatial_scale / out).unsqueeze(1);
  // Sample k of the out·grid along an axis sits at (k + 0.5) / grid bins from the start.
  const at::Tensor steps = (at::arange(out * grid, features.options().requires_grad(false)) + 0.5) / grid;
  const at::Tensor xs = x1.unsqueeze(1) + steps * bin_w;  // [R, S]
  const at::Tensor ys = y1.unsqueeze(1) + steps * bin_h;

  // Per axis: the two neighbouring cells, their weights and the validity mask.
  struct Axis {
    at::Tensor low, high, w_low, w_high, valid;
  };
  auto axis = [](const at::Tensor& v, int64_t size) {
    Axis a;
    a.valid = (v >= -1.0) & (v <= static_cast<double>(size));
    at::Tensor c = v.clamp_min(0);
    at::Tensor low = c.floor().to(at::kLong);
    const at::Tensor at_edge = low >= size - 1;
    low = low.clamp_max(size - 1);
    a.low = low;
    a.high = at::where(at_edge, low, low + 1);
    c = at::where(at_edge, low.to(c.scalar_type()), c);
    a.w_high = c - low.to(c.scalar_type());
    a.w_low = 1 - a.w_high;
    return a;
  };
  const Axis ax = axis(xs, width), ay = axis(ys, height);

  // Gather from the feature map as rows [B·H·W, C] by flat index; index [R, S, S] (y, x).
  const at::Tensor rows = features.permute({0, 2, 3, 1}).reshape({-1, channels});
  const at::Tensor base = boxes.select(1, 0).to(at::kLong).mul(height * width).view({r, 1, 1});
  const int64_t s = out * grid;
  auto gather = [&](const at::Tensor& yi, const at::Tensor& xi) {
    const at::Tensor index = base + yi.view({r, s, 1}) * width + xi.view({r, 1, s});
    return rows.index_select(0, index.reshape({-1})).view({r, s, s, channels});
  };
  auto weight = [&](const at::Tensor& wy, const at::Tensor& wx) {
    return (wy.view({r, s, 1}) * wx.view({r, 1, s})).unsqueeze(3);
  };
  at::Tensor samples = gather(ay.low, ax.low) * weight(ay.w_low, ax.w_low) +
                       gather(ay.low, ax.high) * weight(ay.w_low, ax.w_high) +
                       gather(ay.high, ax.low) * weight(ay.w_high, ax.w_low) +
                       gather(ay.high, ax.high) * weight(ay.w_high, ax.w_high);
  const at::Tensor valid = (ay.valid.view({r, s, 1}) & ax.valid.view({r, 1, s})).unsqueeze(3);
  samples = samples * valid.to(samples.scalar_type());
  // Mean over each bin's grid×grid samples: [R, out, grid, out, grid, C] → [R, C, out, out].
  return samples.view({r, out, grid, out, grid, channels}).mean({2, 4}).permute({0, 3, 1, 2}).contiguous();
}

at::Tensor map_roi_levels(const at::Tensor& boxes, int min_level, int max_level, double canonical_size,
                          int canonical_level) {
  const at::Tensor b = boxes.detach();
  const at::Tensor scale = ((b.select(1, 2) - b.select(1, 0)) * (b.select(1, 3) - b.select(1, 1))).clamp_min(1e-12).sqrt();
  // The epsilon keeps a box of exactly canonical_size·2^k on level canonical_level + k (torchvision's).
  return at::floor(canonical_level + at::log2(scale / canonical_size) + 1e-6).clamp(min_level, max_level).to(at::kLong);
}

at::Tensor multilevel_roi_align(const std::vector<at::Tensor>& levels, const std::vector<int>& strides,
                                const std::vector<int>& level_ids, const at::Tensor& rois, double canonical_size,
                                int canonical_level, const RoiAlignOptions& options) {
  if (levels.empty() || levels.size() != strides.size() || levels.size() != level_ids.size())
    throw InputError("multilevel_roi_align: one stride and level id per level");
  const at::Tensor target = map_roi_levels(rois.slice(1, 1, 5), level_ids.front(), level_ids.back(), canonical_size,
                                           canonical_level);
  std::vector<at::Tensor> pooled, order;
  for (size_t l = 0; l < levels.size(); ++l) {
    const at::Tensor idx = (target == level_ids[l]).nonzero().squeeze(1);
    if (idx.size(0) == 0) continue;
    pooled.push_back(roi_align(levels[l], rois.index_select(0, idx), 1.0 / strides[l], options));
    order.push_back(idx);
  }
  if (pooled.empty()) {
    const int64_t c = levels.front().size(1);
    return at::zeros({0, c, options.output_size, options.output_size}, levels.front().options());
  }
  // Back to the order of `rois`: position i of the result is the RoI at inverse[i] of the concatenation.
  const at::Tensor inverse = at::argsort(at::cat(order));
  return at::cat(pooled).index_select(0, inverse);
}

}  // namespace lossforge::detectors
