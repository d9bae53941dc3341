// Anchors of a two-stage detector and the box coder between anchors (or
// proposals) and boxes.
//
// make_anchors places, on every cell of every pyramid level, one anchor per
// aspect ratio, centred on the cell centre ((x + 0.5)·stride, (y + 0.5)·stride)
// with area size² and height / width = ratio. Anchors are ordered level by
// level, then row-major over the level's cells, then by ratio: the order of an
// RPN head's outputs [B, A·R, H, W] permuted to [B, H, W, A·R].
//
// The coder is Faster R-CNN's (mmdetection's DeltaXYWHBBoxCoder with zero
// means): a box relative to a reference box is
//   ((gx - rx)/rw, (gy - ry)/rh, log(gw/rw), log(gh/rh)) / stds
// with centres x, y and sizes w, h; decoding clamps log-sizes at
// log(1000/16) as torchvision and mmdetection do.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <vector>

namespace lossforge::detectors {

struct AnchorOptions {
  std::vector<double> sizes = {8, 16, 32, 64};  // one per level (square-root of the area), pixels
  std::vector<double> ratios = {0.5, 1, 2};     // height / width
};

// [Σ H·W·R, 4] float anchors for levels of the given (H, W) and strides.
// Throws InputError when sizes and levels differ in number.
at::Tensor make_anchors(const std::vector<std::array<int64_t, 2>>& level_sizes, const std::vector<int>& strides,
                        const AnchorOptions& options);

using DeltaStds = std::array<double, 4>;
inline constexpr DeltaStds kRpnDeltaStds = {1, 1, 1, 1};          // mmdetection's RPN
inline constexpr DeltaStds kRcnnDeltaStds = {0.1, 0.1, 0.2, 0.2};  // its box head (SPEC §4's L1 baseline)

// Deltas [N, 4] of boxes [N, 4] relative to reference boxes [N, 4], and back.
at::Tensor encode_deltas(const at::Tensor& reference, const at::Tensor& boxes, const DeltaStds& stds);
at::Tensor decode_deltas(const at::Tensor& reference, const at::Tensor& deltas, const DeltaStds& stds);

// Boxes clipped to [0, width] × [0, height].
at::Tensor clip_boxes(const at::Tensor& boxes, double width, double height);

}  // namespace lossforge::detectors
