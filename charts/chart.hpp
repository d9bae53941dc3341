// Charts: a small value type describing a line (and bar) chart, drawn either as
// a PNG image (cairo) or as text for a terminal (Unicode braille).
//
// Why it exists: the REPL plots a loss and its gradient against one input, and
// the search writes plots into its reports; both want the same description of a
// chart and nothing else of a plotting library. A Chart is plain data; the two
// renderers are free functions that read it.
//
// Values that are not finite (NaN, ±inf) are skipped: a line has a gap there and
// they do not widen an automatic range.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace lossforge::charts {

// A named polyline through the points (x[i], y[i]); x and y have equal sizes.
struct LineSeries {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;
};

// Named bars standing on y = 0 at positions x[i] with heights height[i] (sizes
// equal); several bar series at the same x are drawn side by side.
struct BarSeries {
  std::string name;
  std::vector<double> x;
  std::vector<double> height;
};

// An axis range: each end fixed when set, otherwise taken from the data (and
// widened to the enclosing round tick values).
struct AxisRange {
  std::optional<double> min;
  std::optional<double> max;
};

struct Chart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<LineSeries> lines;
  std::vector<BarSeries> bars;
  AxisRange x_range;
  AxisRange y_range;
};

// Writes the chart as a width x height PNG: title, axes with round-number ticks
// and grid lines, axis labels and a legend, one colour per series. The image is
// rendered in memory and written with write_file_atomic. Throws
// lossforge::InputError for a size below 64x48 or series of unequal lengths,
// lossforge::Error when cairo fails or the file cannot be written.
void render_png(const Chart& chart, const std::filesystem::path& file, int width, int height);

// Whether render_terminal may use ANSI colour escapes.
enum class Colour { off, on };

// The chart as `rows` lines (more only when rows cannot hold the frame and two
// plot rows) of at most `columns` terminal cells each, every line ending with
// '\n': the title, a plot area of braille dots (2x4 per cell) framed
// by a y axis with tick labels on the left and an x axis with tick labels below,
// the x label, and a legend naming each series with its glyph. With colour on,
// every line is braille in its own ANSI colour. With colour off the first line
// is braille and each further line is drawn one cell at a time in its own
// marker glyph (•, ×, +, ∘, *), so the series stay distinguishable in plain
// text. Bars are drawn as block columns (█). Throws lossforge::InputError when
// columns < 20 or rows < 6.
std::string render_terminal(const Chart& chart, int columns, int rows,
                            Colour colour = Colour::off);

// Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten,
// at most max(max_count, 3) of them (three are needed for -k, 0, k), at least 2,
// first <= lo and last >= hi (up to a rounding of 1e-9 steps, so that 0.3 is a
// tick of [0.3, 1] with step 0.1). A range with lo == hi is widened around the
// value first.
std::vector<double> nice_ticks(double lo, double hi, int max_count);

// A tick value as short text: "0", "0.5", "-2.5", "1e+06", never "-0" or
// trailing zeros, with enough digits to tell neighbouring ticks `step` apart.
std::string format_tick(double value, double step);

}  // namespace lossforge::charts
