// ATSS training targets (Zhang et al., CVPR 2020, "Bridging the Gap Between
// Anchor-based and Anchor-free Detection via Adaptive Training Sample
// Selection"): which ground-truth box each point of the pyramid learns, with
// the positives chosen per box from statistics of its candidates' IoUs
// instead of FCOS's center sampling and regression ranges. With the FCOS
// model, losses and post-processing this is the paper's anchor-free ATSS
// (make_detector("atss", ...), fcos_detector.hpp).
//
// Each point carries, for the statistics only, a square anchor of side
// anchor_scale·stride centred on it. For each box:
//   1. candidates: on every level, the top_k points whose centres are nearest
//      the box centre (all of the level's points when it has fewer; equal
//      distances: the lower point index first);
//   2. threshold: mean + standard deviation of the candidates' anchor IoUs with
//      the box (the unbiased std, as torch.std in mmdetection's
//      ATSSAssigner; 0 when there is a single candidate);
//   3. positives: candidates whose IoU is >= the threshold and whose centre
//      lies strictly inside the box.
// A point that is a positive of several boxes learns the one its anchor
// overlaps most (mmdetection's rule; equal IoUs: the lower box index). Points
// with none are background. Crowd boxes are left out by the caller.
//
// The rule runs in float64 on the device of `points`, vectorised over points
// and boxes (loops only over levels); distances come out as float.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "detectors/train/targets.hpp"

namespace lossforge::detectors {

// The paper's values; make_detector("atss") (detector.cpp) takes anchors of 4
// strides, which suit the small images of the bundled synthetic data.
struct AtssOptions {
  int64_t top_k = 9;          // candidates per level and box
  double anchor_scale = 8;    // the anchor's side in strides (mmdetection's octave_base_scale)
};

// points: make_points() of the pyramid (levels in order, told apart by their
// stride; the regression ranges are ignored). boxes [G, 4] float (x1, y1, x2,
// y2), labels [G] int64. Throws InputError for top_k < 1 or anchor_scale <= 0.
Assignment assign_atss(const Points& points, const at::Tensor& boxes, const at::Tensor& labels,
                       const AtssOptions& options = {});

}  // namespace lossforge::detectors
