// The synthetic dataset: deterministic bytes, the promised class, scale and
// occlusion statistics, and options that change them.
#include "detectors/data/synth.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>

#include "compiler/error.hpp"
#include "data_test_support.hpp"

namespace lossforge::data {
namespace {

namespace ts = test_support;
namespace fs = std::filesystem;

SynthOptions small_options() {
  SynthOptions o;
  o.train = 6;
  o.val = 3;
  o.seed = 11;
  o.image_size = 96;
  o.max_object_size = 80;
  return o;
}

std::vector<std::pair<std::string, std::string>> all_files(const fs::path& root) {
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& entry : fs::recursive_directory_iterator(root))
    if (entry.is_regular_file()) files.emplace_back(fs::relative(entry.path(), root).string(), ts::read_text(entry.path()));
  std::sort(files.begin(), files.end());
  return files;
}

TEST(Synth, SameOptionsGiveTheSameBytesWhateverTheThreads) {
  ts::TempDir one, two;
  SynthOptions o = small_options();
  o.threads = 1;
  write_synthetic_dataset(one.path(), o);
  o.threads = 3;
  write_synthetic_dataset(two.path(), o);
  const auto a = all_files(one.path()), b = all_files(two.path());
  ASSERT_EQ(a.size(), 2u + 6 + 3);
  EXPECT_TRUE(a == b);
  // Another seed changes the images.
  ts::TempDir three;
  o.seed = 12;
  write_synthetic_dataset(three.path(), o);
  EXPECT_NE(ts::read_text(one / "images/train/000001.png"), ts::read_text(three / "images/train/000001.png"));
}

TEST(Synth, LayoutAndIdsAreCocos) {
  ts::TempDir dir;
  write_synthetic_dataset(dir.path(), small_options());
  const CocoDataset train = load_coco(dir / "annotations/instances_train.json");
  const CocoDataset val = load_coco(dir / "annotations/instances_val.json");
  ASSERT_EQ(train.images.size(), 6u);
  ASSERT_EQ(val.images.size(), 3u);
  EXPECT_EQ(train.images[0].file_name, "train/000001.png");
  EXPECT_EQ(train.images[0].id, 1);
  EXPECT_EQ(val.images[0].file_name, "val/000001.png");
  EXPECT_EQ(val.images[0].id, 7);  // val ids follow train's
  ASSERT_EQ(train.categories.size(), 5u);
  EXPECT_EQ(train.categories[2].name, "triangle");
  EXPECT_EQ(train.categories[2].id, 3);
  for (const CocoAnnotation& a : train.annotations) EXPECT_GE(a.id, 1);
  EXPECT_TRUE(fs::exists(dir / "images/val/000003.png"));
}

TEST(Synth, ValDoesNotDependOnTheSizeOfTrain) {
  SynthOptions o = small_options();
  const SynthImage a = render_synthetic_image(o, "val", 2);
  o.train = 500;
  const SynthImage b = render_synthetic_image(o, "val", 2);
  EXPECT_EQ(a.rgb, b.rgb);
  EXPECT_NE(a.rgb, render_synthetic_image(o, "train", 2).rgb);
}

TEST(Synth, DefaultsCoverEveryClassAndCocoScaleWithBoxesInside) {
  const SynthOptions o;  // 160-px images
  std::set<int64_t> classes;
  int small = 0, medium = 0, large = 0, objects = 0, images_with_overlap = 0;
  for (size_t i = 0; i < 150; ++i) {
    const SynthImage image = render_synthetic_image(o, "train", i);
    ASSERT_EQ(image.rgb.size(), 160u * 160 * 3);
    ASSERT_LE(image.annotations.size(), 6u);
    bool overlap = false;
    for (size_t j = 0; j < image.annotations.size(); ++j) {
      const CocoAnnotation& a = image.annotations[j];
      classes.insert(a.category_id);
      ++objects;
      (a.area < 32 * 32 ? small : a.area < 96 * 96 ? medium : large)++;
      EXPECT_GE(a.bbox[0], 0);
      EXPECT_GE(a.bbox[1], 0);
      EXPECT_LE(a.bbox[0] + a.bbox[2], 160);
      EXPECT_LE(a.bbox[1] + a.bbox[3], 160);
      EXPECT_GT(a.area, 0);
      EXPECT_LE(a.area, a.bbox[2] * a.bbox[3]);  // visible pixels of the full box
      for (size_t k = 0; k < j; ++k) {
        const auto& b = image.annotations[k].bbox;
        if (a.bbox[0] < b[0] + b[2] && b[0] < a.bbox[0] + a.bbox[2] && a.bbox[1] < b[1] + b[3] && b[1] < a.bbox[1] + a.bbox[3])
          overlap = true;
      }
    }
    images_with_overlap += overlap;
  }
  EXPECT_EQ(classes, (std::set<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_GT(small, objects / 10);
  EXPECT_GT(medium, objects / 10);
  EXPECT_GT(large, 0);
  EXPECT_GT(images_with_overlap, 10);  // occlusion happens
}

TEST(Synth, OptionsChangeTheStatistics) {
  SynthOptions o = small_options();
  o.min_objects = 0;
  o.max_objects = 0;
  o.clutter = 0;
  o.noise = 0;
  // No objects, no distractors, no noise: a smooth gradient.
  for (size_t i = 0; i < 5; ++i) {
    const SynthImage image = render_synthetic_image(o, "train", i);
    EXPECT_TRUE(image.annotations.empty());
    int largest_step = 0;
    for (int y = 0; y < image.height; ++y)
      for (int x = 1; x < image.width; ++x)
        for (int c = 0; c < 3; ++c) {
          const size_t at = (static_cast<size_t>(y) * image.width + x) * 3 + c;
          largest_step = std::max(largest_step, std::abs(image.rgb[at] - image.rgb[at - 3]));
        }
    EXPECT_LE(largest_step, 3);
  }
  o.min_objects = o.max_objects = 3;
  o.min_object_size = o.max_object_size = 10;
  for (size_t i = 0; i < 5; ++i) {
    const SynthImage image = render_synthetic_image(o, "train", i);
    EXPECT_EQ(image.annotations.size(), 3u);
    for (const CocoAnnotation& a : image.annotations) EXPECT_LE(std::max(a.bbox[2], a.bbox[3]), 12);
  }
}

TEST(Synth, BadOptionsAreRefusedByName) {
  SynthOptions o;
  o.max_object_size = 400;
  try {
    validate(o);
    FAIL() << "accepted objects larger than the image";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("largest object size"), std::string::npos) << e.what();
  }
  o = SynthOptions{};
  o.min_objects = 5;
  o.max_objects = 2;
  EXPECT_THROW(validate(o), InputError);
  o = SynthOptions{};
  o.noise = -1;
  EXPECT_THROW(validate(o), InputError);
}

}  // namespace
}  // namespace lossforge::data
