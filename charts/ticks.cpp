// Round tick values and their labels (charts/chart.hpp).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "charts/chart.hpp"

namespace lossforge::charts {

std::vector<double> nice_ticks(double lo, double hi, int max_count) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (lo > hi) std::swap(lo, hi);
  if (lo == hi) {
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  // Two ticks cannot be round around zero (-k, 0, k): three is the least.
  max_count = std::max(max_count, 3);
  const double raw = (hi - lo) / (max_count - 1);
  // A relative slack so that 0.3 / 0.1 counts as 3, not 3.0000000000000004.
  constexpr double kSlack = 1e-9;
  for (double magnitude = std::pow(10.0, std::floor(std::log10(raw)));; magnitude *= 10) {
    for (double multiple : {1.0, 2.0, 5.0}) {
      const double step = multiple * magnitude;
      const double first = std::floor(lo / step + kSlack);
      const double last = std::ceil(hi / step - kSlack);
      const int count = static_cast<int>(last - first) + 1;
      if (count > max_count) continue;
      std::vector<double> ticks;
      for (int i = 0; i < count; ++i) {
        double value = (first + i) * step;
        if (std::abs(value) < step * 1e-9) value = 0;  // never -0 or 1e-17
        ticks.push_back(value);
      }
      return ticks;
    }
  }
}

std::string format_tick(double value, double step) {
  if (!std::isfinite(value)) return value != value ? "nan" : (value > 0 ? "inf" : "-inf");
  if (std::abs(value) < std::abs(step) * 1e-9 || value == 0) return "0";
  char text[64];
  const double size = std::max(std::abs(value), std::abs(step));
  if (size >= 1e6 || (step > 0 && step < 1e-4)) {
    std::snprintf(text, sizeof text, "%.3g", value);
    return text;
  }
  const int decimals = step > 0 ? std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9))) : 3;
  std::snprintf(text, sizeof text, "%.*f", std::min(decimals, 12), value);
  std::string out = text;
  if (out.find('.') != std::string::npos) {
    while (out.back() == '0') out.pop_back();
    if (out.back() == '.') out.pop_back();
  }
  if (out == "-0") out = "0";
  return out;
}

}  // namespace lossforge::charts
