// The PNG renderer (charts/chart.hpp): cairo draws into an image surface in
// memory, which is encoded to PNG and written atomically.
#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "charts/chart.hpp"
#include "charts/scale.hpp"
#include "compiler/error.hpp"
#include "runtime/files.hpp"

namespace lossforge::charts {
namespace {

using detail::Axis;

struct Rgb {
  double r, g, b;
};
// A palette that stays distinguishable for most colour-blind readers (Tableau 10).
constexpr Rgb kPalette[] = {{0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173},
                            {0.839, 0.153, 0.157}, {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294},
                            {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498}, {0.737, 0.741, 0.133},
                            {0.090, 0.745, 0.812}};

void set_colour(cairo_t* cr, const Rgb& c, double alpha = 1) { cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha); }
const Rgb& series_colour(size_t k) { return kPalette[k % std::size(kPalette)]; }

struct Destroy {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
  void operator()(cairo_t* c) const { cairo_destroy(c); }
};

// The plot area in device pixels.
struct Frame {
  double left, top, right, bottom;
  double px(const Axis& x, double v) const { return left + x.fraction(v) * (right - left); }
  double py(const Axis& y, double v) const { return bottom - y.fraction(v) * (bottom - top); }
};

double text_width(cairo_t* cr, const std::string& text) {
  cairo_text_extents_t extents;
  cairo_text_extents(cr, text.c_str(), &extents);
  return extents.x_advance;
}

void draw_text(cairo_t* cr, const std::string& text, double x, double y, double align_x, double align_y) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, text.c_str(), &e);
  cairo_move_to(cr, x - e.x_advance * align_x, y + e.height * align_y);
  cairo_show_text(cr, text.c_str());
}

void draw_lines(cairo_t* cr, const Chart& chart, const Axis& x, const Axis& y, const Frame& f) {
  cairo_save(cr);
  cairo_rectangle(cr, f.left, f.top, f.right - f.left, f.bottom - f.top);
  cairo_clip(cr);
  // Bars first, so lines stay visible over them.
  const size_t bar_series = chart.bars.size();
  for (size_t b = 0; b < bar_series; ++b) {
    const BarSeries& s = chart.bars[b];
    // Bars share the space between neighbouring positions.
    double gap = x.max - x.min;
    for (size_t i = 1; i < s.x.size(); ++i) gap = std::min(gap, std::abs(s.x[i] - s.x[i - 1]));
    const double slot = std::max(2.0, gap / (x.max - x.min) * (f.right - f.left) * 0.8);
    const double width = slot / double(bar_series);
    set_colour(cr, series_colour(chart.lines.size() + b), 0.75);
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.height[i])) continue;
      const double left = f.px(x, s.x[i]) - slot / 2 + width * double(b);
      const double y0 = f.py(y, 0), y1 = f.py(y, s.height[i]);
      cairo_rectangle(cr, left, std::min(y0, y1), width, std::abs(y1 - y0));
    }
    cairo_fill(cr);
  }
  cairo_set_line_width(cr, 2);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  for (size_t k = 0; k < chart.lines.size(); ++k) {
    const LineSeries& s = chart.lines[k];
    set_colour(cr, series_colour(k));
    bool open = false;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
        open = false;  // a gap
        continue;
      }
      // Far-away points are pulled in so cairo's fixed-point coordinates stay valid.
      const double px = std::clamp(f.px(x, s.x[i]), -1e5, 1e5), py = std::clamp(f.py(y, s.y[i]), -1e5, 1e5);
      if (open)
        cairo_line_to(cr, px, py);
      else
        cairo_move_to(cr, px, py);
      open = true;
    }
    cairo_stroke(cr);
  }
  cairo_restore(cr);
}

void draw_axes(cairo_t* cr, const Axis& x, const Axis& y, const Frame& f) {
  cairo_set_font_size(cr, 11);
  for (double t : y.ticks) {
    const double py = std::round(f.py(y, t)) + 0.5;
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    cairo_set_line_width(cr, 1);
    cairo_move_to(cr, f.left, py);
    cairo_line_to(cr, f.right, py);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_move_to(cr, f.left - 5, py);
    cairo_line_to(cr, f.left, py);
    cairo_stroke(cr);
    draw_text(cr, format_tick(t, y.step), f.left - 8, py, 1, 0.5);
  }
  for (double t : x.ticks) {
    const double px = std::round(f.px(x, t)) + 0.5;
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    cairo_set_line_width(cr, 1);
    cairo_move_to(cr, px, f.top);
    cairo_line_to(cr, px, f.bottom);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_move_to(cr, px, f.bottom);
    cairo_line_to(cr, px, f.bottom + 5);
    cairo_stroke(cr);
    draw_text(cr, format_tick(t, x.step), px, f.bottom + 9, 0.5, 1);
  }
  cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, std::round(f.left) + 0.5, std::round(f.top) + 0.5, std::round(f.right - f.left),
                  std::round(f.bottom - f.top));
  cairo_stroke(cr);
}

void draw_labels(cairo_t* cr, const Chart& chart, const Frame& f, int width, int height) {
  cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
  if (!chart.title.empty()) {
    cairo_set_font_size(cr, 15);
    draw_text(cr, chart.title, width / 2.0, f.top / 2, 0.5, 0.5);
  }
  cairo_set_font_size(cr, 12);
  if (!chart.x_label.empty()) draw_text(cr, chart.x_label, (f.left + f.right) / 2, height - 10.0, 0.5, 0);
  if (!chart.y_label.empty()) {
    cairo_save(cr);
    cairo_translate(cr, 16, (f.top + f.bottom) / 2);
    cairo_rotate(cr, -M_PI / 2);
    draw_text(cr, chart.y_label, 0, 0, 0.5, 0.5);
    cairo_restore(cr);
  }
}

void draw_legend(cairo_t* cr, const Chart& chart, const Frame& f) {
  const std::vector<std::string> names = detail::series_names(chart);
  if (names.empty()) return;
  cairo_set_font_size(cr, 11);
  double widest = 0;
  for (const std::string& name : names) widest = std::max(widest, text_width(cr, name));
  const double line_height = 16, box_w = widest + 40, box_h = line_height * double(names.size()) + 8;
  const double x0 = f.right - box_w - 8, y0 = f.top + 8;
  cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
  cairo_rectangle(cr, x0, y0, box_w, box_h);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  for (size_t k = 0; k < names.size(); ++k) {
    const double cy = y0 + 4 + line_height * (double(k) + 0.5);
    set_colour(cr, series_colour(k));
    if (k < chart.lines.size()) {
      cairo_set_line_width(cr, 2);
      cairo_move_to(cr, x0 + 6, cy);
      cairo_line_to(cr, x0 + 26, cy);
      cairo_stroke(cr);
    } else {
      cairo_rectangle(cr, x0 + 10, cy - 5, 12, 10);
      cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    draw_text(cr, names[k], x0 + 32, cy, 0, 0.5);
  }
}

cairo_status_t append_to_string(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

}  // namespace

void render_png(const Chart& chart, const std::filesystem::path& file, int width, int height) {
  if (width < 64 || height < 48 || width > 16384 || height > 16384)
    throw InputError("a PNG chart must be between 64x48 and 16384x16384 pixels (got " + std::to_string(width) + "x" +
                     std::to_string(height) + ")");
  detail::check_chart(chart);
  std::unique_ptr<cairo_surface_t, Destroy> surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height));
  std::unique_ptr<cairo_t, Destroy> context(cairo_create(surface.get()));
  cairo_t* cr = context.get();
  if (cairo_status(cr) != CAIRO_STATUS_SUCCESS)
    throw Error("cannot draw a " + std::to_string(width) + "x" + std::to_string(height) + " chart: " +
                cairo_status_to_string(cairo_status(cr)));
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);

  const Axis y = detail::y_axis(chart, std::max(2, height / 50));
  cairo_set_font_size(cr, 11);
  double label_width = 0;
  for (double t : y.ticks) label_width = std::max(label_width, text_width(cr, format_tick(t, y.step)));
  Frame frame;
  frame.left = label_width + 14 + (chart.y_label.empty() ? 0 : 22);
  frame.top = chart.title.empty() ? 14 : 36;
  frame.right = width - 16.0;
  frame.bottom = height - (chart.x_label.empty() ? 26.0 : 44.0);
  if (frame.right - frame.left < 16 || frame.bottom - frame.top < 16)
    throw InputError("a " + std::to_string(width) + "x" + std::to_string(height) +
                     " PNG chart has no room left for its plot area");
  const Axis x = detail::x_axis(chart, std::max(2, int((frame.right - frame.left) / 70)));

  draw_axes(cr, x, y, frame);
  draw_lines(cr, chart, x, y, frame);
  draw_labels(cr, chart, frame, width, height);
  draw_legend(cr, chart, frame);

  cairo_surface_flush(surface.get());
  std::string png;
  const cairo_status_t status = cairo_surface_write_to_png_stream(surface.get(), append_to_string, &png);
  if (status != CAIRO_STATUS_SUCCESS)
    throw Error("cannot encode the chart for " + file.string() + " as PNG: " + cairo_status_to_string(status));
  write_file_atomic(file.string(), png);
}

}  // namespace lossforge::charts
