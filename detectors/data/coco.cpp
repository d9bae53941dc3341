#include "detectors/data/coco.hpp"

#include <cmath>
#include <cstdint>

#include "compiler/error.hpp"
#include "detectors/data/json_fields.hpp"
#include "runtime/files.hpp"

namespace lossforge::data {

using nlohmann::json;
namespace jf = json_fields;

void CocoDataset::reindex() {
  image_index_.clear();
  category_index_.clear();
  annotations_by_image_.clear();
  for (size_t i = 0; i < images.size(); ++i)
    if (!image_index_.emplace(images[i].id, i).second)
      throw InputError("images[" + std::to_string(i) + "].id: duplicate image id " + std::to_string(images[i].id));
  for (size_t i = 0; i < categories.size(); ++i)
    if (!category_index_.emplace(categories[i].id, i).second)
      throw InputError("categories[" + std::to_string(i) + "].id: duplicate category id " +
                       std::to_string(categories[i].id));
  std::unordered_map<int64_t, size_t> annotation_ids;
  for (size_t i = 0; i < annotations.size(); ++i) {
    const CocoAnnotation& a = annotations[i];
    const std::string where = "annotations[" + std::to_string(i) + "]";
    if (!annotation_ids.emplace(a.id, i).second)
      throw InputError(where + ".id: duplicate annotation id " + std::to_string(a.id));
    if (!image_index_.contains(a.image_id))
      throw InputError(where + ".image_id: no image with id " + std::to_string(a.image_id));
    if (!category_index_.contains(a.category_id))
      throw InputError(where + ".category_id: no category with id " + std::to_string(a.category_id));
    annotations_by_image_[a.image_id].push_back(i);
  }
}

const CocoImage* CocoDataset::find_image(int64_t id) const {
  auto it = image_index_.find(id);
  return it == image_index_.end() ? nullptr : &images[it->second];
}

const CocoCategory* CocoDataset::find_category(int64_t id) const {
  auto it = category_index_.find(id);
  return it == category_index_.end() ? nullptr : &categories[it->second];
}

std::span<const size_t> CocoDataset::annotations_of(int64_t image_id) const {
  auto it = annotations_by_image_.find(image_id);
  if (it == annotations_by_image_.end()) return {};
  return it->second;
}

namespace {

std::array<double, 4> read_bbox(const json& value, const std::string& where) {
  if (!value.is_array() || value.size() != 4) jf::fail(where, "expected 4 numbers [x, y, w, h]");
  std::array<double, 4> box{};
  for (size_t k = 0; k < 4; ++k) box[k] = jf::finite_number(value[k], where + "[" + std::to_string(k) + "]");
  if (box[2] < 0 || box[3] < 0) jf::fail(where, "negative width or height");
  return box;
}

}  // namespace

CocoDataset load_coco(const std::filesystem::path& path) {
  const std::string file = path.string();
  const json document = jf::read_file(path, "segmentation");
  if (!document.is_object()) jf::fail(file, "expected a COCO object with images, annotations and categories");
  CocoDataset dataset;

  const json& images = jf::array(jf::member(document, "images", file), file + ": images");
  dataset.images.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string where = file + ": images[" + std::to_string(i) + "]";
    const json& entry = images[i];
    CocoImage image;
    image.id = jf::integer(jf::member(entry, "id", where), where + ".id");
    image.file_name = jf::string(jf::member(entry, "file_name", where), where + ".file_name");
    const int64_t width = jf::integer(jf::member(entry, "width", where), where + ".width");
    const int64_t height = jf::integer(jf::member(entry, "height", where), where + ".height");
    if (width <= 0 || width > 1 << 20) jf::fail(where + ".width", "expected a positive size");
    if (height <= 0 || height > 1 << 20) jf::fail(where + ".height", "expected a positive size");
    image.width = static_cast<int>(width);
    image.height = static_cast<int>(height);
    dataset.images.push_back(std::move(image));
  }

  const json& categories = jf::array(jf::member(document, "categories", file), file + ": categories");
  for (size_t i = 0; i < categories.size(); ++i) {
    const std::string where = file + ": categories[" + std::to_string(i) + "]";
    CocoCategory category;
    category.id = jf::integer(jf::member(categories[i], "id", where), where + ".id");
    category.name = jf::string(jf::member(categories[i], "name", where), where + ".name");
    dataset.categories.push_back(std::move(category));
  }

  // A test split may come without annotations (COCO's test-dev image info).
  static const json kNone = json::array();
  const json* annotations_value = jf::optional_member(document, "annotations", file);
  const json& annotations = annotations_value ? jf::array(*annotations_value, file + ": annotations") : kNone;
  dataset.annotations.reserve(annotations.size());
  for (size_t i = 0; i < annotations.size(); ++i) {
    const std::string where = file + ": annotations[" + std::to_string(i) + "]";
    const json& entry = annotations[i];
    CocoAnnotation a;
    a.id = jf::integer(jf::member(entry, "id", where), where + ".id");
    a.image_id = jf::integer(jf::member(entry, "image_id", where), where + ".image_id");
    a.category_id = jf::integer(jf::member(entry, "category_id", where), where + ".category_id");
    a.bbox = read_bbox(jf::member(entry, "bbox", where), where + ".bbox");
    if (const json* area = jf::optional_member(entry, "area", where))
      a.area = jf::finite_number(*area, where + ".area");
    else
      a.area = a.bbox[2] * a.bbox[3];
    if (const json* crowd = jf::optional_member(entry, "iscrowd", where)) a.iscrowd = jf::flag(*crowd, where + ".iscrowd");
    dataset.annotations.push_back(a);
  }

  try {
    dataset.reindex();
  } catch (const InputError& e) {
    throw InputError(file + ": " + e.what());
  }
  return dataset;
}

std::string coco_json_text(const CocoDataset& dataset) {
  json images = json::array();
  for (const CocoImage& image : dataset.images)
    images.push_back({{"id", image.id}, {"file_name", image.file_name}, {"width", image.width}, {"height", image.height}});
  json annotations = json::array();
  for (const CocoAnnotation& a : dataset.annotations)
    annotations.push_back({{"id", a.id},
                           {"image_id", a.image_id},
                           {"category_id", a.category_id},
                           {"bbox", a.bbox},
                           {"area", a.area},
                           {"iscrowd", a.iscrowd ? 1 : 0}});
  json categories = json::array();
  for (const CocoCategory& c : dataset.categories)
    categories.push_back({{"id", c.id}, {"name", c.name}});
  const json document = {{"images", std::move(images)},
                         {"annotations", std::move(annotations)},
                         {"categories", std::move(categories)}};
  return document.dump() + "\n";
}

void save_coco(const CocoDataset& dataset, const std::filesystem::path& json_path) {
  write_file_atomic(json_path.string(), coco_json_text(dataset));
}

}  // namespace lossforge::data
