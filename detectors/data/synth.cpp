#include "detectors/data/synth.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include "compiler/error.hpp"
#include "detectors/data/image_io.hpp"
#include "detectors/data/random.hpp"

namespace lossforge::data {

const std::vector<std::string>& synthetic_class_names() {
  static const std::vector<std::string> names = {"disc", "square", "triangle", "ring", "cross"};
  return names;
}

void validate(const SynthOptions& o) {
  auto bad = [](const std::string& what) { throw InputError("synthetic dataset: " + what); };
  if (o.image_size < 32 || o.image_size > 4096) bad("image size must be between 32 and 4096 pixels");
  if (o.min_objects < 0 || o.max_objects < o.min_objects || o.max_objects > 100)
    bad("object counts must satisfy 0 <= min <= max <= 100");
  if (!(o.min_object_size >= 4) || !(o.max_object_size >= o.min_object_size))
    bad("object sizes must satisfy 4 <= min <= max");
  if (o.max_object_size > o.image_size) bad("the largest object size must not exceed the image size");
  if (o.clutter < 0 || o.clutter > 100) bad("clutter must be between 0 and 100");
  if (!(o.noise >= 0 && o.noise <= 1)) bad("noise must be between 0 and 1");
  if (!(o.min_visible >= 0 && o.min_visible <= 1)) bad("min visible share must be between 0 and 1");
  if (o.threads < 0) bad("threads must be >= 0");
}

namespace {

using Color = std::array<double, 3>;

enum Shape { kDisc, kSquare, kTriangle, kRing, kCross };
enum Texture { kSolid, kHorizontalStripes, kChecks, kDiagonalStripes };
constexpr std::array<Shape, 5> kClassShape = {kDisc, kSquare, kTriangle, kRing, kCross};
constexpr std::array<Texture, 5> kClassTexture = {kSolid, kHorizontalStripes, kChecks, kSolid, kDiagonalStripes};

// Whether the point (u, v) of the unit box (0..1 each, v down) is inside the shape.
bool inside(Shape shape, double u, double v) {
  const double du = u - 0.5, dv = v - 0.5;
  switch (shape) {
    case kDisc: return du * du + dv * dv <= 0.25;
    case kSquare: return true;
    case kTriangle: return std::fabs(du) <= v / 2;  // apex at the top centre, base at the bottom
    case kRing: {
      const double r2 = du * du + dv * dv;
      return r2 <= 0.25 && r2 >= 0.0625;
    }
    case kCross: return std::fabs(du) <= 1.0 / 6 || std::fabs(dv) <= 1.0 / 6;
  }
  return false;
}

// Whether a pixel of a texture shows the second tone (dx, dy from the box corner).
bool second_tone(Texture texture, int dx, int dy, int half_period) {
  switch (texture) {
    case kSolid: return false;
    case kHorizontalStripes: return (dy / half_period) % 2 == 1;
    case kChecks: return (dx / half_period + dy / half_period) % 2 == 1;
    case kDiagonalStripes: return ((dx + dy) / half_period) % 2 == 1;
  }
  return false;
}

class Canvas {
 public:
  explicit Canvas(int size) : size_(size), rgb_(static_cast<size_t>(size) * size * 3), owner_(size * size, -1) {}
  int size() const { return size_; }
  void set(int x, int y, const Color& c) {
    double* p = &rgb_[(static_cast<size_t>(y) * size_ + x) * 3];
    p[0] = c[0], p[1] = c[1], p[2] = c[2];
  }
  int& owner(int x, int y) { return owner_[static_cast<size_t>(y) * size_ + x]; }
  std::vector<double>& rgb() { return rgb_; }

 private:
  int size_;
  std::vector<double> rgb_;
  std::vector<int> owner_;  // index of the object that shows at a pixel, -1 for background
};

Color random_color(Random& random) { return {random.uniform(0.05, 0.95), random.uniform(0.05, 0.95), random.uniform(0.05, 0.95)}; }

double distance(const Color& a, const Color& b) {
  return std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
}

// A colour at least `min_distance` from `avoid` (tries a few, keeps the best).
Color contrasting_color(Random& random, const Color& avoid, double min_distance) {
  Color best = random_color(random);
  for (int attempt = 0; attempt < 8 && distance(best, avoid) < min_distance; ++attempt) {
    const Color c = random_color(random);
    if (distance(c, avoid) > distance(best, avoid)) best = c;
  }
  return best;
}

Color background(Canvas& canvas, Random& random) {
  const Color a = random_color(random), b = random_color(random);
  const double angle = random.uniform(0, 6.283185307179586);
  const double cx = std::cos(angle), cy = std::sin(angle);
  const int n = canvas.size();
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      // t in 0..1 along the gradient's direction.
      const double t = 0.5 + ((x + 0.5) / n - 0.5) * cx * 0.7 + ((y + 0.5) / n - 0.5) * cy * 0.7;
      canvas.set(x, y, {a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t});
    }
  return {(a[0] + b[0]) / 2, (a[1] + b[1]) / 2, (a[2] + b[2]) / 2};
}

// Distractors that belong to no class: line segments, elongated ellipses, speckles.
void clutter(Canvas& canvas, Random& random, int count, const Color& mean_background) {
  const int n = canvas.size();
  for (int c = 0; c < count; ++c) {
    const Color color = contrasting_color(random, mean_background, 0.25);
    const int kind = static_cast<int>(random.integer(0, 2));
    if (kind == 0) {  // a line segment, 1-2 px thick
      const double x0 = random.uniform(0, n), y0 = random.uniform(0, n);
      const double length = random.uniform(n * 0.1, n * 0.5), angle = random.uniform(0, 3.141592653589793);
      const double dx = std::cos(angle), dy = std::sin(angle), half_width = random.uniform(0.5, 1.2);
      for (int y = 0; y < n; ++y)
        for (int x = 0; x < n; ++x) {
          const double px = x + 0.5 - x0, py = y + 0.5 - y0;
          const double along = px * dx + py * dy, across = std::fabs(-px * dy + py * dx);
          if (along >= 0 && along <= length && across <= half_width) canvas.set(x, y, color);
        }
    } else if (kind == 1) {  // an ellipse with aspect >= 2.5
      const double cx = random.uniform(0, n), cy = random.uniform(0, n);
      const double a = random.uniform(4, n / 6.0), b = a / random.uniform(2.5, 4.0);
      const double angle = random.uniform(0, 3.141592653589793), ca = std::cos(angle), sa = std::sin(angle);
      const int x0 = std::max(0, static_cast<int>(cx - a - 1)), x1 = std::min(n - 1, static_cast<int>(cx + a + 1));
      const int y0 = std::max(0, static_cast<int>(cy - a - 1)), y1 = std::min(n - 1, static_cast<int>(cy + a + 1));
      for (int y = y0; y <= y1; ++y)
        for (int x = x0; x <= x1; ++x) {
          const double px = x + 0.5 - cx, py = y + 0.5 - cy;
          const double u = (px * ca + py * sa) / a, v = (-px * sa + py * ca) / b;
          if (u * u + v * v <= 1) canvas.set(x, y, color);
        }
    } else {  // speckles: a cluster of small dots
      const double cx = random.uniform(0, n), cy = random.uniform(0, n), spread = random.uniform(3, n / 10.0);
      const int dots = static_cast<int>(random.integer(4, 12));
      for (int d = 0; d < dots; ++d) {
        const int x = static_cast<int>(cx + random.uniform(-spread, spread));
        const int y = static_cast<int>(cy + random.uniform(-spread, spread));
        for (int yy = y; yy <= y + 1; ++yy)
          for (int xx = x; xx <= x + 1; ++xx)
            if (xx >= 0 && yy >= 0 && xx < n && yy < n) canvas.set(xx, yy, color);
      }
    }
  }
}

struct Placed {
  int category = 0;  // 0-based class
  int x = 0, y = 0, w = 0, h = 0;
  long full_area = 0;
  long visible = 0;
};

// The pixels (as x, y pairs) whose centres lie inside a shape in box (x, y, w, h).
std::vector<std::pair<int, int>> rasterize(Shape shape, int x, int y, int w, int h) {
  std::vector<std::pair<int, int>> pixels;
  for (int py = y; py < y + h; ++py)
    for (int px = x; px < x + w; ++px)
      if (inside(shape, (px - x + 0.5) / w, (py - y + 0.5) / h)) pixels.emplace_back(px, py);
  return pixels;
}

void objects(Canvas& canvas, Random& random, const SynthOptions& o, const Color& mean_background,
             std::vector<Placed>& placed) {
  const int n = canvas.size();
  const int count = static_cast<int>(random.integer(o.min_objects, o.max_objects));
  // Larger objects first, as in a scene seen from above: small ones in front
  // occlude them, and large ones still find room.
  std::vector<double> sides(static_cast<size_t>(count));
  for (double& side : sides) side = random.uniform(o.min_object_size, o.max_object_size);
  std::sort(sides.begin(), sides.end(), std::greater<>());
  for (const double side : sides) {
    const int category = static_cast<int>(random.integer(0, 4));
    const Shape shape = kClassShape[category];
    const double aspect = std::sqrt(random.uniform(0.8, 1.25));
    const int w = std::clamp(static_cast<int>(std::lround(side * aspect)), 4, n);
    const int h = std::clamp(static_cast<int>(std::lround(side / aspect)), 4, n);
    const Color color = contrasting_color(random, mean_background, 0.35);
    // The second tone: a darker or lighter version of the colour.
    const double luma = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2];
    const double factor = luma > 0.5 ? 0.45 : 1.0;
    const Color tone = luma > 0.5 ? Color{color[0] * factor, color[1] * factor, color[2] * factor}
                                  : Color{color[0] + (1 - color[0]) * 0.6, color[1] + (1 - color[1]) * 0.6,
                                          color[2] + (1 - color[2]) * 0.6};
    const int half_period = std::max(1, static_cast<int>(std::lround(std::max(w, h) / 10.0)));
    // Up to 10 placements; one is refused when it would hide too much of an earlier object.
    for (int attempt = 0; attempt < 10; ++attempt) {
      const int x = static_cast<int>(random.integer(0, n - w));
      const int y = static_cast<int>(random.integer(0, n - h));
      const std::vector<std::pair<int, int>> pixels = rasterize(shape, x, y, w, h);
      if (pixels.empty()) break;
      std::vector<long> hidden(placed.size(), 0);
      for (auto [px, py] : pixels)
        if (const int owner = canvas.owner(px, py); owner >= 0) ++hidden[owner];
      bool acceptable = true;
      for (size_t j = 0; j < placed.size(); ++j)
        if (static_cast<double>(placed[j].visible - hidden[j]) < o.min_visible * static_cast<double>(placed[j].full_area))
          acceptable = false;
      if (!acceptable) continue;
      const int index = static_cast<int>(placed.size());
      for (size_t j = 0; j < placed.size(); ++j) placed[j].visible -= hidden[j];
      for (auto [px, py] : pixels) {
        canvas.owner(px, py) = index;
        canvas.set(px, py, second_tone(kClassTexture[category], px - x, py - y, half_period) ? tone : color);
      }
      placed.push_back({category, x, y, w, h, static_cast<long>(pixels.size()), static_cast<long>(pixels.size())});
      break;
    }
  }
}

std::vector<uint8_t> quantize_with_noise(Canvas& canvas, Random& random, double noise) {
  const std::vector<double>& rgb = canvas.rgb();
  std::vector<uint8_t> bytes(rgb.size());
  for (size_t i = 0; i < rgb.size(); ++i) {
    const double value = std::clamp(rgb[i] + (noise > 0 ? noise * random.normal() : 0.0), 0.0, 1.0);
    bytes[i] = static_cast<uint8_t>(std::lround(value * 255.0));
  }
  return bytes;
}

uint64_t split_stream(std::string_view split) {
  uint64_t hash = 1469598103934665603ULL;  // FNV-1a
  for (char c : split) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  return hash;
}

}  // namespace

SynthImage render_synthetic_image(const SynthOptions& options, std::string_view split, size_t index) {
  validate(options);
  Random random(options.seed, split_stream(split), index);
  Canvas canvas(options.image_size);
  const Color mean_background = background(canvas, random);
  clutter(canvas, random, static_cast<int>(random.integer(0, options.clutter)), mean_background);
  std::vector<Placed> placed;
  objects(canvas, random, options, mean_background, placed);
  SynthImage image;
  image.width = image.height = options.image_size;
  image.rgb = quantize_with_noise(canvas, random, options.noise);
  for (const Placed& p : placed) {
    CocoAnnotation a;
    a.category_id = p.category + 1;
    a.bbox = {static_cast<double>(p.x), static_cast<double>(p.y), static_cast<double>(p.w), static_cast<double>(p.h)};
    a.area = static_cast<double>(p.visible);
    image.annotations.push_back(a);
  }
  return image;
}

namespace {

// Renders and writes one split's images on `threads` threads; returns its COCO dataset.
CocoDataset write_split(const std::filesystem::path& out, const SynthOptions& options, std::string_view split,
                        size_t count, int64_t first_image_id, int threads) {
  const std::filesystem::path folder = out / "images" / std::string(split);
  std::error_code error;
  std::filesystem::create_directories(folder, error);
  if (error) throw Error(folder.string() + ": cannot create folder: " + error.message());

  std::vector<std::vector<CocoAnnotation>> annotations(count);
  std::vector<std::exception_ptr> failures(count);
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < count;) {
      try {
        SynthImage image = render_synthetic_image(options, split, i);
        char name[32];
        std::snprintf(name, sizeof name, "%06zu.png", i + 1);
        const std::filesystem::path path = folder / name;
        const std::string png = encode_png(image.rgb.data(), image.width, image.height);
        std::ofstream file(path, std::ios::binary | std::ios::trunc);
        file.write(png.data(), static_cast<std::streamsize>(png.size()));
        file.close();
        if (!file) throw Error(path.string() + ": cannot write image");
        annotations[i] = std::move(image.annotations);
      } catch (...) {
        failures[i] = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& thread : pool) thread.join();
  for (const std::exception_ptr& failure : failures)
    if (failure) std::rethrow_exception(failure);

  CocoDataset dataset;
  const std::vector<std::string>& names = synthetic_class_names();
  for (size_t c = 0; c < names.size(); ++c) dataset.categories.push_back({static_cast<int64_t>(c + 1), names[c]});
  int64_t annotation_id = 1;
  for (size_t i = 0; i < count; ++i) {
    const int64_t image_id = first_image_id + static_cast<int64_t>(i);
    char name[48];
    std::snprintf(name, sizeof name, "/%06zu.png", i + 1);
    dataset.images.push_back({image_id, std::string(split) + name, options.image_size, options.image_size});
    for (CocoAnnotation a : annotations[i]) {
      a.id = annotation_id++;
      a.image_id = image_id;
      dataset.annotations.push_back(a);
    }
  }
  dataset.reindex();
  return dataset;
}

}  // namespace

void write_synthetic_dataset(const std::filesystem::path& out, const SynthOptions& options) {
  validate(options);
  const int threads = options.threads > 0 ? options.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const std::filesystem::path annotations = out / "annotations";
  std::error_code error;
  std::filesystem::create_directories(annotations, error);
  if (error) throw Error(annotations.string() + ": cannot create folder: " + error.message());
  // Images first, JSON last: a dataset whose JSON exists is complete.
  const CocoDataset train = write_split(out, options, "train", options.train, 1, threads);
  const CocoDataset val = write_split(out, options, "val", options.val, static_cast<int64_t>(options.train) + 1, threads);
  save_coco(train, annotations / "instances_train.json");
  save_coco(val, annotations / "instances_val.json");
}

}  // namespace lossforge::data
