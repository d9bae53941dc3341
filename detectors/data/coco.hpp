// COCO-format detection annotations in memory: the one description of a
// detection dataset that the loader, the synthetic generator, the trainer and
// the evaluator share. Real COCO, VOC converted to COCO and the bundled
// synthetic data are all read by load_coco.
//
// What is kept of a COCO file: images (id, file_name, width, height),
// categories (id, name), and per annotation its id, image_id, category_id,
// bbox [x, y, w, h] in pixels of the original image, area (COCO's segmentation
// area; the evaluator's area ranges use it) and iscrowd. Segmentations,
// licenses and info are ignored. A missing `area` becomes w*h, a missing
// `iscrowd` false.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace lossforge::data {

struct CocoCategory {
  int64_t id = 0;
  std::string name;
};

struct CocoImage {
  int64_t id = 0;
  std::string file_name;  // relative to the dataset's image root
  int width = 0;
  int height = 0;
};

struct CocoAnnotation {
  int64_t id = 0;
  int64_t image_id = 0;
  int64_t category_id = 0;
  std::array<double, 4> bbox{};  // x, y, w, h
  double area = 0;
  bool iscrowd = false;
};

struct CocoDataset {
  std::vector<CocoImage> images;
  std::vector<CocoAnnotation> annotations;
  std::vector<CocoCategory> categories;

  // Lookups by id. load_coco builds them; code that edits the vectors calls
  // reindex() afterwards (it throws InputError on duplicate ids and on
  // annotations whose image or category does not exist).
  void reindex();
  const CocoImage* find_image(int64_t id) const;        // nullptr if absent
  const CocoCategory* find_category(int64_t id) const;  // nullptr if absent
  // Indices into `annotations` of one image's annotations, in file order.
  std::span<const size_t> annotations_of(int64_t image_id) const;

 private:
  std::unordered_map<int64_t, size_t> image_index_;
  std::unordered_map<int64_t, size_t> category_index_;
  std::unordered_map<int64_t, std::vector<size_t>> annotations_by_image_;
};

// Reads a COCO annotation file. Throws lossforge::InputError naming the file
// and, for a bad field, its JSON path (e.g. "annotations[12].bbox: expected 4
// numbers") when the file is missing, not JSON, or inconsistent.
CocoDataset load_coco(const std::filesystem::path& json);

// The COCO JSON text of a dataset (images, annotations, categories), and the
// same written atomically (runtime/files.hpp); throws lossforge::Error.
std::string coco_json_text(const CocoDataset& dataset);
void save_coco(const CocoDataset& dataset, const std::filesystem::path& json);

}  // namespace lossforge::data
