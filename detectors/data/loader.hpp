// Batches of images and box targets for training and evaluating detectors,
// from any COCO-format dataset (real COCO, VOC converted to COCO, the bundled
// synthetic data), decoded and augmented on background threads.
//
// Dataset layout (as COCO's):
//   DIR/annotations/instances_train.json   one COCO file per split
//   DIR/annotations/instances_val.json
//   DIR/images/<file_name>                 file_name as in the JSON, e.g. train/000001.png
// split_options(DIR, "train") fills in those two paths.
//
// Each image is decoded (JPEG or PNG, via stb_image; grey and alpha become
// RGB), resized bilinearly so that its longer side is `target_size` (aspect
// kept, up or down), flipped horizontally with probability `flip_probability`,
// normalised per channel as (pixel/255 - mean) / std, and placed at the top
// left of a target_size × target_size canvas whose padding is 0 (the mean
// colour after normalisation). Boxes follow the same transform, clipped to the
// image; boxes of zero width or height are dropped, crowd boxes kept with
// crowd = true (a trainer ignores the points inside them). An image whose
// decoded size differs from its JSON width and height is an error.
//
// Determinism: the image order of an epoch depends only on (seed, epoch), the
// flip of an image only on (seed, epoch, position in the epoch); the batches
// are the same bytes for any number of worker threads.
//
// Errors: a missing or malformed JSON file throws lossforge::InputError from the
// constructor; a missing or corrupt image throws InputError naming the file
// from next(), on the consumer's thread (workers never terminate the process).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "detectors/data/coco.hpp"

namespace lossforge::data {

struct LoaderOptions {
  std::filesystem::path annotations;  // the split's COCO JSON
  std::filesystem::path image_root;   // file_name is relative to it
  int batch_size = 8;
  int target_size = 128;  // longer side after resizing = canvas side
  double flip_probability = 0.0;
  std::array<float, 3> mean = {0.485f, 0.456f, 0.406f};  // ImageNet's, on pixel/255
  std::array<float, 3> std = {0.229f, 0.224f, 0.225f};
  bool shuffle = false;
  uint64_t seed = 0;
  int workers = 2;      // decoding threads
  int prefetch = 4;     // batches decoded ahead of the consumer
  bool drop_last = false;
  bool skip_empty = false;  // leave out images with no non-crowd annotation (training)
};

// DIR/annotations/instances_<split>.json and DIR/images.
LoaderOptions split_options(const std::filesystem::path& dir, std::string_view split);

// Contiguous labels 0..K-1 for the dataset's categories, in increasing
// category id (the order torchvision and mmdetection use for COCO).
class LabelMap {
 public:
  explicit LabelMap(const std::vector<CocoCategory>& categories);
  int size() const { return static_cast<int>(category_ids_.size()); }
  int64_t category_id(int label) const { return category_ids_.at(static_cast<size_t>(label)); }
  const std::string& name(int label) const { return names_.at(static_cast<size_t>(label)); }
  std::optional<int> label(int64_t category_id) const;  // nullopt for an unknown id

 private:
  std::vector<int64_t> category_ids_;
  std::vector<std::string> names_;
};

struct ImageTargets {
  int64_t image_id = 0;
  int original_width = 0, original_height = 0;
  int resized_width = 0, resized_height = 0;  // the image's part of the canvas
  float scale = 1;                            // resized = original * scale
  bool flipped = false;
  std::vector<std::array<float, 4>> boxes;  // x1, y1, x2, y2 in resized (and flipped) pixels
  std::vector<int> labels;                  // contiguous, 0..K-1 (LabelMap)
  std::vector<bool> crowd;                  // iscrowd: to be ignored, not learnt
};

struct Batch {
  int size = 0, height = 0, width = 0;
  std::vector<float> pixels;  // size × 3 × height × width, row-major, normalised
  std::vector<ImageTargets> targets;
};

// A box predicted on the canvas (x1, y1, x2, y2, resized and possibly flipped
// pixels) in the original image's pixels as COCO's [x, y, w, h], clipped to
// the image: what goes into a results file for coco_eval.
std::array<double, 4> to_original_xywh(const ImageTargets& image, const std::array<float, 4>& canvas_box);

class DataLoader {
 public:
  explicit DataLoader(LoaderOptions options);  // reads the JSON; starts no thread yet
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  const CocoDataset& dataset() const;
  const LabelMap& labels() const;
  const LoaderOptions& options() const;
  size_t images() const;             // images per epoch (after skip_empty)
  size_t batches_per_epoch() const;  // with drop_last applied

  // Starts (or restarts) decoding epoch `epoch` in the background.
  void start_epoch(uint64_t epoch);
  // The next batch of the current epoch, nullopt after its last one. Throws
  // InputError for an image that cannot be read. Calls start_epoch(0) if no
  // epoch was started.
  std::optional<Batch> next();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace lossforge::data
