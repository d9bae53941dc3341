// RoIAlign (He et al., Mask R-CNN, ICCV 2017) with torchvision's semantics
// for aligned=True, written with ATen tensor ops (bilinear gathers by
// index_select), so that it runs on any device and autograd gives the
// gradient with respect to the features. The boxes get no gradient, as in
// torchvision.
//
// For a box (x1, y1, x2, y2) in input pixels and a level of scale 1/stride,
// the box in feature cells starts at x1·scale - 0.5 and spans (x2 - x1)·scale;
// it is split into output_size × output_size bins, each the mean of
// sampling_ratio² bilinear samples at the centres of a regular sub-grid.
// A sample more than one cell outside the map contributes 0 (but counts in
// the mean); one within a cell of the border is clamped onto it.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace lossforge::detectors {

struct RoiAlignOptions {
  int output_size = 7;
  // Samples per bin along each axis; torchvision's adaptive choice (<= 0,
  // ceil(bin size in cells)) is not offered: its sample count varies per box.
  int sampling_ratio = 2;
};

// features [B, C, H, W]; rois [R, 5] (batch index, x1, y1, x2, y2) in input
// pixels; returns [R, C, output_size, output_size]. Throws InputError for a
// sampling_ratio or output_size < 1 or badly shaped inputs.
at::Tensor roi_align(const at::Tensor& features, const at::Tensor& rois, double spatial_scale,
                     const RoiAlignOptions& options = {});

// FPN's level of each box (Lin et al., eq. 1): floor(k0 + log2(sqrt(w·h) / canonical_size)),
// clamped to [min_level, max_level]; returns int64 [R] levels (not indices).
at::Tensor map_roi_levels(const at::Tensor& boxes, int min_level, int max_level, double canonical_size,
                          int canonical_level);

// RoIAlign over a pyramid: each RoI pooled from the level map_roi_levels gives
// it. levels[i] has stride strides[i] and pyramid level level_ids[i] (e.g.
// P2 → 2). Same output as roi_align, in the order of `rois`.
at::Tensor multilevel_roi_align(const std::vector<at::Tensor>& levels, const std::vector<int>& strides,
                                const std::vector<int>& level_ids, const at::Tensor& rois, double canonical_size,
                                int canonical_level, const RoiAlignOptions& options = {});

}  // namespace lossforge::detectors
