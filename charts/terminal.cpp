// The terminal renderer (charts/chart.hpp): braille dots, 2 x 4 per cell.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "charts/chart.hpp"
#include "charts/scale.hpp"
#include "compiler/error.hpp"

namespace lossforge::charts {
namespace {

using detail::Axis;

// Markers for the second and later lines when colour is off.
constexpr const char* kMarkers[] = {"•", "×", "+", "∘", "*", "◆"};
constexpr const char* kColours[] = {"\x1b[34m", "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[35m", "\x1b[36m"};
constexpr const char* kReset = "\x1b[0m";
constexpr const char* kBarGlyph = "█";

std::string utf8(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xE0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  }
  return out;
}

// Code points in UTF-8 text (every glyph used here is one cell wide).
size_t cells(const std::string& text) {
  size_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

std::string fit(const std::string& text, size_t width) {
  if (cells(text) <= width) return text;
  std::string out;
  size_t n = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = text[i];
    if ((c & 0xC0) != 0x80 && ++n > width) break;
    out += text[i];
  }
  return out;
}

// One series' dots on the braille grid.
class DotGrid {
 public:
  DotGrid(int cols, int rows) : cols_(cols), rows_(rows), bits_(size_t(cols) * rows, 0) {}

  void set(int dx, int dy) {
    if (dx < 0 || dy < 0 || dx >= cols_ * 2 || dy >= rows_ * 4) return;
    static constexpr uint8_t kBit[4][2] = {{0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20}, {0x40, 0x80}};
    bits_[size_t(dy / 4) * cols_ + dx / 2] |= kBit[dy % 4][dx % 2];
  }
  // Bresenham between two dots; long segments are bounded by the grid anyway.
  void line(long x0, long y0, long x1, long y1) {
    const long dx = std::labs(x1 - x0), dy = -std::labs(y1 - y0);
    const long sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    long err = dx + dy;
    for (long steps = 0; steps < 100000; ++steps) {
      set(int(x0), int(y0));
      if (x0 == x1 && y0 == y1) break;
      const long e2 = 2 * err;
      if (e2 >= dy) err += dy, x0 += sx;
      if (e2 <= dx) err += dx, y0 += sy;
    }
  }
  uint8_t cell(int col, int row) const { return bits_[size_t(row) * cols_ + col]; }

 private:
  int cols_, rows_;
  std::vector<uint8_t> bits_;
};

// A dot coordinate, clamped far outside the grid so Bresenham stays bounded.
long to_dot(double fraction, int dots) {
  const double d = fraction * (dots - 1);
  return std::lround(std::clamp(d, -4.0 * dots, 5.0 * dots));
}

DotGrid draw_line(const LineSeries& s, const Axis& x, const Axis& y, int cols, int rows) {
  DotGrid grid(cols, rows);
  bool have_previous = false;
  long px = 0, py = 0;
  for (size_t i = 0; i < s.x.size(); ++i) {
    if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
      have_previous = false;  // a gap
      continue;
    }
    const long dx = to_dot(x.fraction(s.x[i]), cols * 2);
    const long dy = to_dot(1 - y.fraction(s.y[i]), rows * 4);
    if (have_previous)
      grid.line(px, py, dx, dy);
    else
      grid.set(int(dx), int(dy));
    px = dx, py = dy, have_previous = true;
  }
  return grid;
}

struct Cell {
  uint8_t dots = 0;        // braille dots of the lines drawn in braille
  const char* mark = nullptr;  // a marker or bar glyph, drawn instead of the dots
  int series = -1;         // whose colour, -1 for none

  std::string glyph() const { return mark ? mark : dots ? utf8(0x2800 + dots) : " "; }
};

std::string centred(const std::string& text, size_t width) {
  const std::string t = fit(text, width);
  return std::string((width - cells(t)) / 2, ' ') + t;
}

}  // namespace

std::string render_terminal(const Chart& chart, int columns, int rows, Colour colour) {
  if (columns < 20 || rows < 6)
    throw InputError("a terminal chart needs at least 20 columns and 6 rows (got " + std::to_string(columns) + "x" +
                     std::to_string(rows) + ")");
  detail::check_chart(chart);
  const bool coloured = colour == Colour::on;
  const std::vector<std::string> names = detail::series_names(chart);

  // Rows: title, y label, plot, x axis, x tick labels, x label, legend.
  const int fixed_rows = !chart.title.empty() + !chart.y_label.empty() + 2 + !chart.x_label.empty() + !names.empty();
  const int plot_rows = std::max(2, rows - fixed_rows);
  const Axis y = detail::y_axis(chart, std::max(2, plot_rows / 3 + 1));
  std::vector<std::string> y_labels;
  size_t gutter = 1;
  for (double t : y.ticks) {
    y_labels.push_back(format_tick(t, y.step));
    gutter = std::max(gutter, y_labels.back().size());
  }
  const int plot_cols = std::max(4, columns - int(gutter) - 2);
  const Axis x = detail::x_axis(chart, std::max(2, plot_cols / 8 + 1));

  // Compose the cells: lines, then bars on top.
  std::vector<Cell> grid(size_t(plot_cols) * plot_rows);
  for (size_t k = 0; k < chart.lines.size(); ++k) {
    const DotGrid dots = draw_line(chart.lines[k], x, y, plot_cols, plot_rows);
    const bool braille = coloured || k == 0;
    for (int r = 0; r < plot_rows; ++r)
      for (int c = 0; c < plot_cols; ++c) {
        const uint8_t bits = dots.cell(c, r);
        if (!bits) continue;
        Cell& cell = grid[size_t(r) * plot_cols + c];
        // Dots of several braille series in one cell merge; the last colour wins.
        if (braille)
          cell.dots |= bits;
        else
          cell.mark = kMarkers[(k - 1) % std::size(kMarkers)];
        cell.series = int(k);
      }
  }
  const double zero_row = (1 - y.fraction(0)) * (plot_rows * 4 - 1) / 4.0;
  for (size_t b = 0; b < chart.bars.size(); ++b) {
    const BarSeries& s = chart.bars[b];
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.height[i])) continue;
      const int c = int(std::lround(x.fraction(s.x[i]) * (plot_cols - 1))) + int(b);
      if (c < 0 || c >= plot_cols) continue;
      const double top_row = (1 - y.fraction(s.height[i])) * (plot_rows * 4 - 1) / 4.0;
      const int r0 = int(std::lround(std::min(zero_row, top_row))), r1 = int(std::lround(std::max(zero_row, top_row)));
      for (int r = std::max(r0, 0); r <= std::min(r1, plot_rows - 1); ++r) {
        Cell& cell = grid[size_t(r) * plot_cols + c];
        cell.mark = kBarGlyph;
        cell.series = int(chart.lines.size() + b);
      }
    }
  }

  // Which plot row each y tick labels.
  std::vector<std::string> row_label(plot_rows);
  for (size_t i = 0; i < y.ticks.size(); ++i) {
    const int r = int(std::lround((1 - y.fraction(y.ticks[i])) * (plot_rows * 4 - 1) / 4.0 - 0.375));
    if (r >= 0 && r < plot_rows) row_label[r] = y_labels[i];
  }

  std::string out;
  if (!chart.title.empty()) out += centred(chart.title, size_t(columns)) + '\n';
  if (!chart.y_label.empty()) out += fit(chart.y_label, size_t(columns)) + '\n';
  for (int r = 0; r < plot_rows; ++r) {
    const std::string& label = row_label[r];
    out += std::string(gutter - label.size(), ' ') + label + (label.empty() ? " │" : " ┤");
    int current = -1;
    for (int c = 0; c < plot_cols; ++c) {
      const Cell& cell = grid[size_t(r) * plot_cols + c];
      if (coloured && cell.series != current) {
        out += cell.series >= 0 ? kColours[cell.series % std::size(kColours)] : kReset;
        current = cell.series;
      }
      out += cell.glyph();
    }
    if (coloured && current >= 0) out += kReset;
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += '\n';
  }

  // The x axis with a mark under each tick, and the tick labels below it,
  // skipping a label that would touch the previous one.
  std::string axis = std::string(gutter + 1, ' ') + "└";
  std::string labels(gutter + 2 + plot_cols + 8, ' ');
  std::vector<bool> tick_at(plot_cols, false);
  int free_from = 0;
  for (double t : x.ticks) {
    const int c = int(std::lround(x.fraction(t) * (plot_cols * 2 - 1) / 2.0 - 0.25));
    if (c < 0 || c >= plot_cols) continue;
    tick_at[c] = true;
    const std::string text = format_tick(t, x.step);
    int start = int(gutter) + 2 + c - int(text.size()) / 2;
    start = std::max(start, 0);
    if (start < free_from || start + text.size() > labels.size()) continue;
    labels.replace(size_t(start), text.size(), text);
    free_from = start + int(text.size()) + 1;
  }
  for (int c = 0; c < plot_cols; ++c) axis += tick_at[c] ? "┬" : "─";
  while (!labels.empty() && labels.back() == ' ') labels.pop_back();
  out += axis + '\n' + fit(labels, size_t(columns)) + '\n';
  if (!chart.x_label.empty()) out += centred(chart.x_label, size_t(columns)) + '\n';

  if (!names.empty()) {
    std::string legend;
    size_t width = 0;
    for (size_t k = 0; k < names.size(); ++k) {
      std::string glyph = k >= chart.lines.size() ? kBarGlyph : (coloured || k == 0) ? "⠉" : kMarkers[(k - 1) % std::size(kMarkers)];
      const std::string entry_text = glyph + " " + names[k];
      const size_t entry_width = cells(entry_text) + (k ? 2 : 0);
      if (width + entry_width > size_t(columns)) break;
      width += entry_width;
      if (k) legend += "  ";
      legend += coloured ? kColours[k % std::size(kColours)] + glyph + kReset + " " + names[k] : entry_text;
    }
    out += legend + '\n';
  }
  return out;
}

}  // namespace lossforge::charts
