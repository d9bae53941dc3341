// FCOS training targets: the points of every pyramid level and, per image,
// which ground-truth box each point learns (if any).
//
// A point at (x, y) on a level of stride s may learn a box when
//   - it lies inside the box's centre region (center sampling): the square of
//     half-side radius·s around the box centre, clipped to the box; and
//   - the largest of its distances (l, t, r, b) to the box's sides is within
//     the level's regression range (lo, hi].
// Among the boxes it may learn it takes the one of least area; points with
// none are background. Crowd boxes are never learnt.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

namespace lossforge::detectors {

struct TargetOptions {
  double center_radius = 1.5;  // in strides; 0 disables center sampling (the whole box)
  // Per level, P3..P7 (FCOS's); a level beyond the list takes (last hi, inf).
  std::vector<std::array<double, 2>> regress_ranges = {{-1, 64}, {64, 128}, {128, 256}, {256, 512}, {512, 1e8}};
};

// All points of a pyramid, levels concatenated in the head's order (FcosOutput).
struct Points {
  at::Tensor xy;      // [P, 2] float: x, y of each point, in input pixels (cell centres)
  at::Tensor stride;  // [P] float
  at::Tensor range;   // [P, 2] float: the level's regression range
};

Points make_points(const std::vector<std::array<int64_t, 2>>& level_sizes, const std::vector<int>& strides,
                   const TargetOptions& options);

struct Assignment {
  at::Tensor labels;     // [P] int64: the class 0..K-1, or -1 for background
  at::Tensor gt_index;   // [P] int64: the box learnt, -1 for background
  at::Tensor distances;  // [P, 4] float: (l, t, r, b) in pixels to the learnt box; 0 for background
};

// boxes [G, 4] float (x1, y1, x2, y2), labels [G] int64; crowd boxes left out by the caller.
Assignment assign_points(const Points& points, const at::Tensor& boxes, const at::Tensor& labels,
                         const TargetOptions& options);

// Which box each point learns: assign_points (FCOS's rule above) or another
// rule over the same points, such as ATSS's (atss_targets.hpp).
using Assigner = std::function<Assignment(const Points& points, const at::Tensor& boxes, const at::Tensor& labels)>;

}  // namespace lossforge::detectors
