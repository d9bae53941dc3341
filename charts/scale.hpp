// What both renderers share: checking a chart, the extent of its data and the
// axis ranges with their ticks. Internal to charts/.
#pragma once

#include <string>
#include <vector>

#include "charts/chart.hpp"

namespace lossforge::charts::detail {

// A resolved axis: [min, max] with min < max, and the ticks inside it.
struct Axis {
  double min = 0;
  double max = 1;
  std::vector<double> ticks;
  double step = 1;  // distance between neighbouring ticks

  // Where `value` falls, 0 at min and 1 at max.
  double fraction(double value) const { return (value - min) / (max - min); }
};

// Throws InputError when a series has x and y of different lengths.
void check_chart(const Chart& chart);

// The axes for a chart, with at most about `x_ticks` / `y_ticks` ticks each.
// Automatic ends are widened to the enclosing ticks; fixed ends are kept.
Axis x_axis(const Chart& chart, int x_ticks);
Axis y_axis(const Chart& chart, int y_ticks);

// Every series name in drawing order: lines, then bars.
std::vector<std::string> series_names(const Chart& chart);

}  // namespace lossforge::charts::detail
