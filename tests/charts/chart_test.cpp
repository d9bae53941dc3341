// The chart library: tick choice, tick labels, braille rendering, PNG output.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "charts/chart.hpp"
#include "compiler/error.hpp"

#if LOSSFORGE_HAVE_CAIRO
#include <cairo.h>
#endif

namespace lossforge::charts {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Code points of UTF-8 text.
std::u32string decode(const std::string& text) {
  std::u32string out;
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = text[i];
    const int n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    char32_t cp = n == 1 ? c : c & (0xFF >> (n + 1));
    for (int k = 1; k < n; ++k) cp = (cp << 6) | (text[i + k] & 0x3F);
    out += cp;
    i += n;
  }
  return out;
}

bool is_braille(char32_t c) { return c > 0x2800 && c <= 0x28FF; }

TEST(NiceTicks, StepsAreOneTwoOrFiveTimesAPowerOfTen) {
  for (auto [lo, hi] : std::vector<std::pair<double, double>>{{0, 1}, {-6, 6}, {0.013, 0.9}, {-1234, 98765}, {3, 3.0001}}) {
    for (int count : {2, 5, 8, 11}) {
      const std::vector<double> ticks = nice_ticks(lo, hi, count);
      ASSERT_GE(ticks.size(), 2u) << lo << " " << hi;
      EXPECT_LE(int(ticks.size()), std::max(count, 3)) << lo << " " << hi;
      const double step = ticks[1] - ticks[0];
      EXPECT_LE(ticks.front(), lo + step * 1e-9);
      EXPECT_GE(ticks.back(), hi - step * 1e-9);
      const double mantissa = step / std::pow(10.0, std::floor(std::log10(step)));
      const bool round = std::abs(mantissa - 1) < 1e-6 || std::abs(mantissa - 2) < 1e-6 ||
                         std::abs(mantissa - 5) < 1e-6 || std::abs(mantissa - 10) < 1e-6;
      EXPECT_TRUE(round) << "step " << step << " for [" << lo << ", " << hi << "]";
      for (size_t i = 1; i < ticks.size(); ++i) EXPECT_NEAR(ticks[i] - ticks[i - 1], step, step * 1e-9);
    }
  }
}

TEST(NiceTicks, KnownRanges) {
  EXPECT_EQ(nice_ticks(-6, 6, 7), (std::vector<double>{-6, -4, -2, 0, 2, 4, 6}));
  EXPECT_EQ(nice_ticks(0, 1, 6), (std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}));
  EXPECT_EQ(nice_ticks(0.1, 0.95, 3), (std::vector<double>{0, 0.5, 1}));
  // A single value is widened around itself.
  const std::vector<double> around = nice_ticks(5, 5, 5);
  EXPECT_LT(around.front(), 5);
  EXPECT_GT(around.back(), 5);
}

TEST(FormatTick, ShortAndNeverNegativeZero) {
  EXPECT_EQ(format_tick(0.5, 0.5), "0.5");
  EXPECT_EQ(format_tick(-2, 2), "-2");
  EXPECT_EQ(format_tick(0.6000000000000001, 0.2), "0.6");
  EXPECT_EQ(format_tick(-1e-17, 0.2), "0");
  EXPECT_EQ(format_tick(0.25, 0.05), "0.25");
  EXPECT_EQ(format_tick(2e6, 1e6), "2e+06");
}

Chart diagonal() {
  Chart chart;
  chart.title = "diagonal";
  chart.x_label = "x";
  LineSeries line{"y=x", {}, {}};
  for (int i = 0; i <= 100; ++i) {
    line.x.push_back(i / 100.0);
    line.y.push_back(i / 100.0);
  }
  chart.lines.push_back(line);
  chart.x_range = {0, 1};
  chart.y_range = {0, 1};
  return chart;
}

TEST(RenderTerminal, DiagonalRunsFromBottomLeftToTopRight) {
  const std::string text = render_terminal(diagonal(), 60, 20);
  const std::vector<std::string> lines = lines_of(text);
  ASSERT_EQ(lines.size(), 20u) << text;
  EXPECT_NE(lines[0].find("diagonal"), std::string::npos);
  // Plot rows are those with the axis bar; find the braille column per row.
  std::vector<int> first_dot;
  for (const std::string& line : lines) {
    const std::u32string cps = decode(line);
    const size_t bar = cps.find_first_of(U"│┤");
    if (bar == std::u32string::npos) continue;
    int column = -1;
    for (size_t c = bar + 1; c < cps.size(); ++c)
      if (is_braille(cps[c])) {
        column = int(c - bar - 1);
        break;
      }
    first_dot.push_back(column);
  }
  ASSERT_GE(first_dot.size(), 10u);
  // Every plot row has dots, and they move left as the rows go down.
  for (int c : first_dot) EXPECT_GE(c, 0) << text;
  for (size_t r = 1; r < first_dot.size(); ++r) EXPECT_LE(first_dot[r], first_dot[r - 1]) << text;
  EXPECT_EQ(first_dot.back(), 0) << text;
  EXPECT_GT(first_dot.front(), 40) << text;
  // Every line fits the width.
  for (const std::string& line : lines) EXPECT_LE(decode(line).size(), 60u) << line;
  // Tick labels of both axes, and the legend.
  EXPECT_NE(text.find("0.4 ┤"), std::string::npos) << text;
  EXPECT_NE(text.find(" 0.4 "), std::string::npos) << text;
  EXPECT_NE(lines.back().find("y=x"), std::string::npos);
}

TEST(RenderTerminal, AHorizontalLineLightsOneDotRowOfItsCells) {
  Chart chart;
  chart.lines.push_back({"flat", {0, 1}, {0.5, 0.5}});
  chart.x_range = {0, 1};
  chart.y_range = {0, 1};
  size_t dots = 0;
  char32_t glyph = 0;
  for (const std::string& line : lines_of(render_terminal(chart, 40, 12))) {
    const std::u32string cps = decode(line);
    if (cps.find_first_of(U"│┤") == std::u32string::npos) continue;  // the plot rows only, not the legend
    for (char32_t c : cps) {
      if (!is_braille(c)) continue;
      ++dots;
      if (glyph == 0) glyph = c;
      EXPECT_EQ(c, glyph) << "a horizontal line is the same dot row in every cell";
    }
  }
  EXPECT_GE(dots, 30u);
  // One dot row: both columns of one row of the 2x4 cell.
  const unsigned bits = glyph - 0x2800;
  EXPECT_TRUE(bits == 0x09 || bits == 0x12 || bits == 0x24 || bits == 0xC0) << std::hex << bits;
}

TEST(RenderTerminal, PlainTextGivesEachFurtherSeriesItsOwnGlyph) {
  Chart chart;
  chart.lines.push_back({"up", {0, 1}, {0, 1}});
  chart.lines.push_back({"down", {0, 1}, {1, 0}});
  chart.lines.push_back({"flat", {0, 1}, {0.25, 0.25}});
  const std::string plain = render_terminal(chart, 50, 16);
  EXPECT_EQ(plain.find("\x1b["), std::string::npos);
  EXPECT_NE(plain.find("•"), std::string::npos);
  EXPECT_NE(plain.find("×"), std::string::npos);
  EXPECT_NE(plain.find("• down"), std::string::npos);
  EXPECT_NE(plain.find("× flat"), std::string::npos);
  const std::string coloured = render_terminal(chart, 50, 16, Colour::on);
  EXPECT_NE(coloured.find("\x1b[31m"), std::string::npos);
  EXPECT_EQ(coloured.find("•"), std::string::npos);
}

TEST(RenderTerminal, SkipsNonFiniteValuesAndDrawsBars) {
  Chart chart;
  chart.lines.push_back({"gap", {0, 1, 2, 3}, {0, NAN, INFINITY, 3}});
  chart.bars.push_back({"counts", {0, 1, 2, 3}, {1, 2, 3, 4}});
  const std::string text = render_terminal(chart, 40, 14);
  EXPECT_NE(text.find("█"), std::string::npos);
  EXPECT_NE(text.find("counts"), std::string::npos);
  EXPECT_EQ(text.find("inf"), std::string::npos) << "infinity must not widen the range";
}

TEST(RenderTerminal, RejectsTinySizesAndRaggedSeries) {
  EXPECT_THROW(render_terminal(diagonal(), 10, 20), InputError);
  Chart ragged;
  ragged.lines.push_back({"bad", {0, 1, 2}, {0, 1}});
  EXPECT_THROW(render_terminal(ragged, 40, 10), InputError);
}

#if LOSSFORGE_HAVE_CAIRO
TEST(RenderPng, WritesAChartOfTheRequestedSizeWithTheLinesInIt) {
  const std::filesystem::path file = std::filesystem::temp_directory_path() / ("chart_test_" + std::to_string(getpid()) + ".png");
  Chart chart = diagonal();
  chart.y_label = "y";
  chart.bars.push_back({"bars", {0.25, 0.75}, {0.5, 0.25}});
  render_png(chart, file, 320, 240);
  cairo_surface_t* image = cairo_image_surface_create_from_png(file.c_str());
  ASSERT_EQ(cairo_surface_status(image), CAIRO_STATUS_SUCCESS);
  EXPECT_EQ(cairo_image_surface_get_width(image), 320);
  EXPECT_EQ(cairo_image_surface_get_height(image), 240);
  // The first line's colour (blue, #1f77b4) appears on the diagonal of the plot area.
  const unsigned char* data = cairo_image_surface_get_data(image);
  const int stride = cairo_image_surface_get_stride(image);
  int blue = 0;
  for (int y = 60; y < 180; ++y)
    for (int x = 80; x < 300; ++x) {
      const uint32_t pixel = *reinterpret_cast<const uint32_t*>(data + y * stride + x * 4);
      const int r = (pixel >> 16) & 0xFF, g = (pixel >> 8) & 0xFF, b = pixel & 0xFF;
      if (b > 150 && r < 80 && g > 90 && g < 150) ++blue;
    }
  EXPECT_GT(blue, 50);
  cairo_surface_destroy(image);
  std::filesystem::remove(file);
  EXPECT_THROW(render_png(chart, file, 10, 10), InputError);
  EXPECT_FALSE(std::filesystem::exists(file));
}
#endif

}  // namespace
}  // namespace lossforge::charts
