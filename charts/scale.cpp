#include "charts/scale.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "compiler/error.hpp"

namespace lossforge::charts::detail {
namespace {

struct Extent {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return lo > hi; }
};

Axis resolve(Extent data, const AxisRange& range, int max_ticks) {
  if (data.empty()) data = {0, 1};
  double lo = range.min.value_or(data.lo);
  double hi = range.max.value_or(data.hi);
  if (range.min && !range.max && hi <= lo) hi = lo + 1;
  if (range.max && !range.min && lo >= hi) lo = hi - 1;
  if (lo > hi) std::swap(lo, hi);
  Axis axis;
  std::vector<double> ticks = nice_ticks(lo, hi, max_ticks);
  axis.step = ticks.size() >= 2 ? ticks[1] - ticks[0] : 1;
  axis.min = range.min ? lo : ticks.front();
  axis.max = range.max ? hi : ticks.back();
  if (!(axis.min < axis.max)) axis.max = axis.min + 1;
  const double slack = axis.step * 1e-9;
  for (double t : ticks)
    if (t >= axis.min - slack && t <= axis.max + slack) axis.ticks.push_back(t);
  return axis;
}

}  // namespace

void check_chart(const Chart& chart) {
  for (const LineSeries& s : chart.lines)
    if (s.x.size() != s.y.size())
      throw InputError("chart series '" + s.name + "': " + std::to_string(s.x.size()) + " x values but " +
                       std::to_string(s.y.size()) + " y values");
  for (const BarSeries& s : chart.bars)
    if (s.x.size() != s.height.size())
      throw InputError("chart bars '" + s.name + "': " + std::to_string(s.x.size()) + " positions but " +
                       std::to_string(s.height.size()) + " heights");
}

Axis x_axis(const Chart& chart, int x_ticks) {
  Extent data;
  for (const LineSeries& s : chart.lines)
    for (size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.y[i])) data.add(s.x[i]);
  for (const BarSeries& s : chart.bars)
    for (double x : s.x) data.add(x);
  return resolve(data, chart.x_range, x_ticks);
}

Axis y_axis(const Chart& chart, int y_ticks) {
  Extent data;
  for (const LineSeries& s : chart.lines)
    for (size_t i = 0; i < s.y.size(); ++i)
      if (std::isfinite(s.x[i])) data.add(s.y[i]);
  for (const BarSeries& s : chart.bars) {
    if (!s.height.empty()) data.add(0);  // bars stand on zero
    for (double h : s.height) data.add(h);
  }
  return resolve(data, chart.y_range, y_ticks);
}

std::vector<std::string> series_names(const Chart& chart) {
  std::vector<std::string> names;
  for (const LineSeries& s : chart.lines) names.push_back(s.name);
  for (const BarSeries& s : chart.bars) names.push_back(s.name);
  return names;
}

}  // namespace lossforge::charts::detail
