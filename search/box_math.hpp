// Box geometry in double for the simulations (x1, y1, x2, y2), with the
// conventions of the `reg` preset: overlap and enclosing sides clamped at 0.
#pragma once

#include <algorithm>

namespace lossforge {

inline double box_area(const double* b) { return std::max(b[2] - b[0], 0.0) * std::max(b[3] - b[1], 0.0); }

inline double box_iou(const double* p, const double* g) {
  const double w = std::max(std::min(p[2], g[2]) - std::max(p[0], g[0]), 0.0);
  const double h = std::max(std::min(p[3], g[3]) - std::max(p[1], g[1]), 0.0);
  const double inter = w * h;
  const double uni = box_area(p) + box_area(g) - inter;
  return uni > 0 ? inter / uni : 0;
}

}  // namespace lossforge
