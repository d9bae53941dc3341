#include "detectors/data/loader.hpp"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

#include "compiler/error.hpp"
#include "detectors/data/image_io.hpp"
#include "detectors/data/random.hpp"

namespace lossforge::data {

LoaderOptions split_options(const std::filesystem::path& dir, std::string_view split) {
  LoaderOptions options;
  options.annotations = dir / "annotations" / ("instances_" + std::string(split) + ".json");
  options.image_root = dir / "images";
  return options;
}

LabelMap::LabelMap(const std::vector<CocoCategory>& categories) {
  std::vector<const CocoCategory*> sorted;
  for (const CocoCategory& c : categories) sorted.push_back(&c);
  std::sort(sorted.begin(), sorted.end(), [](const CocoCategory* a, const CocoCategory* b) { return a->id < b->id; });
  for (const CocoCategory* c : sorted) {
    category_ids_.push_back(c->id);
    names_.push_back(c->name);
  }
}

std::optional<int> LabelMap::label(int64_t category_id) const {
  auto it = std::lower_bound(category_ids_.begin(), category_ids_.end(), category_id);
  if (it == category_ids_.end() || *it != category_id) return std::nullopt;
  return static_cast<int>(it - category_ids_.begin());
}

std::array<double, 4> to_original_xywh(const ImageTargets& image, const std::array<float, 4>& box) {
  double x1 = box[0], x2 = box[2];
  if (image.flipped) {
    x1 = image.resized_width - static_cast<double>(box[2]);
    x2 = image.resized_width - static_cast<double>(box[0]);
  }
  const double s = image.scale;
  const double w = image.original_width, h = image.original_height;
  x1 = std::clamp(x1 / s, 0.0, w);
  x2 = std::clamp(x2 / s, 0.0, w);
  const double y1 = std::clamp(box[1] / s, 0.0, h);
  const double y2 = std::clamp(box[3] / s, 0.0, h);
  return {x1, y1, std::max(0.0, x2 - x1), std::max(0.0, y2 - y1)};
}

namespace {

constexpr uint64_t kFlipStream = 0xf11f;
constexpr uint64_t kShuffleStream = 0x5eed;

// Bilinear resampling with pixel centres aligned (OpenCV's INTER_LINEAR,
// PyTorch's align_corners=False), written straight into the normalised CHW
// canvas, mirrored when `flip`.
void resize_into(const RgbImage& image, int out_w, int out_h, bool flip, const LoaderOptions& o, float* canvas,
                 int side) {
  const double sx = static_cast<double>(image.width) / out_w, sy = static_cast<double>(image.height) / out_h;
  std::vector<int> x0(out_w), x1(out_w);
  std::vector<float> fx(out_w);
  for (int x = 0; x < out_w; ++x) {
    const double src = std::clamp((x + 0.5) * sx - 0.5, 0.0, image.width - 1.0);
    x0[x] = static_cast<int>(src);
    x1[x] = std::min(x0[x] + 1, image.width - 1);
    fx[x] = static_cast<float>(src - x0[x]);
  }
  const size_t plane = static_cast<size_t>(side) * side;
  std::array<float, 3> scale{}, shift{};
  for (int c = 0; c < 3; ++c) {
    scale[c] = 1.0f / (255.0f * o.std[c]);
    shift[c] = -o.mean[c] / o.std[c];
  }
  for (int y = 0; y < out_h; ++y) {
    const double src = std::clamp((y + 0.5) * sy - 0.5, 0.0, image.height - 1.0);
    const int y0 = static_cast<int>(src), y1 = std::min(y0 + 1, image.height - 1);
    const float fy = static_cast<float>(src - y0);
    const uint8_t* row0 = &image.pixels[static_cast<size_t>(y0) * image.width * 3];
    const uint8_t* row1 = &image.pixels[static_cast<size_t>(y1) * image.width * 3];
    for (int x = 0; x < out_w; ++x) {
      const int out_x = flip ? out_w - 1 - x : x;
      for (int c = 0; c < 3; ++c) {
        const float top = row0[x0[x] * 3 + c] + (row0[x1[x] * 3 + c] - row0[x0[x] * 3 + c]) * fx[x];
        const float bottom = row1[x0[x] * 3 + c] + (row1[x1[x] * 3 + c] - row1[x0[x] * 3 + c]) * fx[x];
        const float value = top + (bottom - top) * fy;
        canvas[c * plane + static_cast<size_t>(y) * side + out_x] = value * scale[c] + shift[c];
      }
    }
  }
}

}  // namespace

struct DataLoader::State {
  LoaderOptions options;
  CocoDataset dataset;
  LabelMap labels;
  std::vector<size_t> usable;  // indices into dataset.images

  // The epoch being decoded.
  uint64_t epoch = 0;
  bool started = false;
  std::vector<size_t> order;  // indices into dataset.images, in epoch order
  size_t batch_count = 0;
  size_t next_to_decode = 0;   // the next batch a worker takes
  size_t next_to_deliver = 0;  // the next batch next() returns
  bool stopping = false;
  std::map<size_t, Batch> ready;
  std::map<size_t, std::exception_ptr> failed;
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::thread> workers;

  State(LoaderOptions o, CocoDataset d) : options(std::move(o)), dataset(std::move(d)), labels(dataset.categories) {}

  size_t batches_for(size_t images) const {
    const size_t b = static_cast<size_t>(options.batch_size);
    return options.drop_last ? images / b : (images + b - 1) / b;
  }

  ImageTargets load_image(size_t image_index, size_t position, float* canvas) const {
    const CocoImage& info = dataset.images[image_index];
    const std::filesystem::path path = options.image_root / info.file_name;
    const RgbImage image = read_image(path);
    if (image.width != info.width || image.height != info.height)
      throw InputError(path.string() + ": image is " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                       " but " + options.annotations.string() + " says " + std::to_string(info.width) + "x" +
                       std::to_string(info.height));
    const int side = options.target_size;
    const float scale = static_cast<float>(side) / static_cast<float>(std::max(image.width, image.height));
    ImageTargets t;
    t.image_id = info.id;
    t.original_width = image.width;
    t.original_height = image.height;
    t.resized_width = std::clamp(static_cast<int>(std::lround(image.width * static_cast<double>(scale))), 1, side);
    t.resized_height = std::clamp(static_cast<int>(std::lround(image.height * static_cast<double>(scale))), 1, side);
    t.scale = scale;
    if (options.flip_probability > 0) {
      Random random(options.seed, kFlipStream ^ mix64(epoch), position);
      t.flipped = random.uniform() < options.flip_probability;
    }
    resize_into(image, t.resized_width, t.resized_height, t.flipped, options, canvas, side);
    for (size_t a : dataset.annotations_of(info.id)) {
      const CocoAnnotation& ann = dataset.annotations[a];
      const std::optional<int> label = labels.label(ann.category_id);
      if (!label || ann.bbox[2] <= 0 || ann.bbox[3] <= 0) continue;
      float x1 = std::clamp(static_cast<float>(ann.bbox[0] * scale), 0.0f, static_cast<float>(t.resized_width));
      float x2 = std::clamp(static_cast<float>((ann.bbox[0] + ann.bbox[2]) * scale), 0.0f, static_cast<float>(t.resized_width));
      const float y1 = std::clamp(static_cast<float>(ann.bbox[1] * scale), 0.0f, static_cast<float>(t.resized_height));
      const float y2 = std::clamp(static_cast<float>((ann.bbox[1] + ann.bbox[3]) * scale), 0.0f, static_cast<float>(t.resized_height));
      if (!(x2 > x1) || !(y2 > y1)) continue;
      if (t.flipped) {
        const float w = static_cast<float>(t.resized_width);
        std::tie(x1, x2) = std::pair(w - x2, w - x1);
      }
      t.boxes.push_back({x1, y1, x2, y2});
      t.labels.push_back(*label);
      t.crowd.push_back(ann.iscrowd);
    }
    return t;
  }

  Batch build(size_t batch) const {
    const size_t b = static_cast<size_t>(options.batch_size);
    const size_t first = batch * b, last = std::min(order.size(), first + b);
    const int side = options.target_size;
    Batch out;
    out.size = static_cast<int>(last - first);
    out.height = out.width = side;
    const size_t image_floats = 3 * static_cast<size_t>(side) * side;
    out.pixels.assign(image_floats * out.size, 0.0f);
    for (size_t p = first; p < last; ++p)
      out.targets.push_back(load_image(order[p], p, &out.pixels[(p - first) * image_floats]));
    return out;
  }

  void work() {
    std::unique_lock lock(mutex);
    for (;;) {
      changed.wait(lock, [&] {
        return stopping || (next_to_decode < batch_count &&
                            next_to_decode < next_to_deliver + static_cast<size_t>(std::max(1, options.prefetch)));
      });
      if (stopping) return;
      const size_t batch = next_to_decode++;
      lock.unlock();
      Batch result;
      std::exception_ptr failure;
      try {
        result = build(batch);
      } catch (...) {
        failure = std::current_exception();
      }
      lock.lock();
      if (failure)
        failed.emplace(batch, failure);
      else
        ready.emplace(batch, std::move(result));
      changed.notify_all();
    }
  }

  void stop() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    changed.notify_all();
    for (std::thread& t : workers) t.join();
    workers.clear();
  }
};

DataLoader::DataLoader(LoaderOptions options) {
  if (options.batch_size < 1) throw InputError("data loader: batch size must be at least 1");
  if (options.target_size < 8 || options.target_size > 8192) throw InputError("data loader: target size must be 8..8192");
  if (!(options.flip_probability >= 0 && options.flip_probability <= 1))
    throw InputError("data loader: flip probability must be between 0 and 1");
  for (float s : options.std)
    if (!(s > 0)) throw InputError("data loader: normalisation std must be positive");
  CocoDataset dataset = load_coco(options.annotations);
  state_ = std::make_unique<State>(std::move(options), std::move(dataset));
  State& s = *state_;
  for (size_t i = 0; i < s.dataset.images.size(); ++i) {
    bool keep = !s.options.skip_empty;
    if (!keep)
      for (size_t a : s.dataset.annotations_of(s.dataset.images[i].id)) {
        const CocoAnnotation& ann = s.dataset.annotations[a];
        if (!ann.iscrowd && ann.bbox[2] > 0 && ann.bbox[3] > 0) keep = true;
      }
    if (keep) s.usable.push_back(i);
  }
}

DataLoader::~DataLoader() {
  if (state_) state_->stop();
}

const CocoDataset& DataLoader::dataset() const { return state_->dataset; }
const LabelMap& DataLoader::labels() const { return state_->labels; }
const LoaderOptions& DataLoader::options() const { return state_->options; }
size_t DataLoader::images() const { return state_->usable.size(); }
size_t DataLoader::batches_per_epoch() const { return state_->batches_for(state_->usable.size()); }

void DataLoader::start_epoch(uint64_t epoch) {
  State& s = *state_;
  s.stop();
  s.stopping = false;
  s.epoch = epoch;
  s.started = true;
  s.order = s.usable;
  if (s.options.shuffle) {  // Fisher–Yates with our portable stream
    Random random(s.options.seed, kShuffleStream, epoch);
    for (size_t i = s.order.size(); i > 1; --i)
      std::swap(s.order[i - 1], s.order[static_cast<size_t>(random.integer(0, static_cast<int64_t>(i) - 1))]);
  }
  s.batch_count = s.batches_for(s.order.size());
  s.order.resize(std::min(s.order.size(), s.batch_count * static_cast<size_t>(s.options.batch_size)));
  s.next_to_decode = s.next_to_deliver = 0;
  s.ready.clear();
  s.failed.clear();
  const int workers = std::max(1, s.options.workers);
  for (int w = 0; w < workers; ++w) s.workers.emplace_back([&s] { s.work(); });
}

std::optional<Batch> DataLoader::next() {
  State& s = *state_;
  if (!s.started) start_epoch(0);
  std::unique_lock lock(s.mutex);
  if (s.next_to_deliver >= s.batch_count) return std::nullopt;
  const size_t batch = s.next_to_deliver;
  s.changed.wait(lock, [&] { return s.ready.contains(batch) || s.failed.contains(batch); });
  if (auto f = s.failed.find(batch); f != s.failed.end()) {
    std::exception_ptr failure = f->second;
    s.failed.erase(f);
    ++s.next_to_deliver;
    lock.unlock();
    s.changed.notify_all();
    std::rethrow_exception(failure);
  }
  Batch out = std::move(s.ready.at(batch));
  s.ready.erase(batch);
  ++s.next_to_deliver;
  lock.unlock();
  s.changed.notify_all();
  return out;
}

}  // namespace lossforge::data
