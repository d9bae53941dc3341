// The batch loader: boxes follow the resize and flip, pixels are the decoded
// image normalised, batches are the same for any number of threads, and bad
// files fail with their name on the consumer's thread.
#include "detectors/data/loader.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>

#include "compiler/error.hpp"
#include "data_test_support.hpp"
#include "detectors/data/image_io.hpp"
#include "detectors/data/synth.hpp"

namespace lossforge::data {
namespace {

namespace ts = test_support;
namespace fs = std::filesystem;

// One small synthetic dataset for the whole file (96-px images).
class LoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ts::TempDir;
    SynthOptions o;
    o.train = 14;
    o.val = 3;
    o.seed = 5;
    o.image_size = 96;
    o.max_object_size = 80;
    write_synthetic_dataset(dir_->path(), o);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static LoaderOptions train_options() { return split_options(dir_->path(), "train"); }
  static std::vector<Batch> epoch(DataLoader& loader, uint64_t number) {
    loader.start_epoch(number);
    std::vector<Batch> batches;
    while (std::optional<Batch> batch = loader.next()) batches.push_back(std::move(*batch));
    return batches;
  }
  static ts::TempDir* dir_;
};
ts::TempDir* LoaderTest::dir_ = nullptr;

TEST_F(LoaderTest, BoxesFollowTheResizeAndTheFlip) {
  LoaderOptions o = train_options();
  o.batch_size = 4;
  o.target_size = 128;  // 96 -> 128: scale 4/3
  o.flip_probability = 0.5;
  o.shuffle = true;
  o.seed = 3;
  DataLoader loader(o);
  EXPECT_EQ(loader.batches_per_epoch(), 4u);
  const CocoDataset& gt = loader.dataset();
  int flipped = 0, seen = 0;
  std::set<int64_t> images;
  for (const Batch& batch : epoch(loader, 0)) {
    EXPECT_EQ(batch.height, 128);
    EXPECT_EQ(batch.pixels.size(), static_cast<size_t>(batch.size) * 3 * 128 * 128);
    for (const ImageTargets& t : batch.targets) {
      images.insert(t.image_id);
      ++seen;
      flipped += t.flipped;
      EXPECT_FLOAT_EQ(t.scale, 128.0f / 96);
      EXPECT_EQ(t.resized_width, 128);
      const auto annotations = gt.annotations_of(t.image_id);
      ASSERT_EQ(t.boxes.size(), annotations.size());
      for (size_t i = 0; i < annotations.size(); ++i) {
        const CocoAnnotation& a = gt.annotations[annotations[i]];
        double x1 = a.bbox[0] * t.scale, x2 = (a.bbox[0] + a.bbox[2]) * t.scale;
        if (t.flipped) std::tie(x1, x2) = std::pair(128 - x2, 128 - x1);
        EXPECT_NEAR(t.boxes[i][0], x1, 1e-3);
        EXPECT_NEAR(t.boxes[i][1], a.bbox[1] * t.scale, 1e-3);
        EXPECT_NEAR(t.boxes[i][2], x2, 1e-3);
        EXPECT_NEAR(t.boxes[i][3], (a.bbox[1] + a.bbox[3]) * t.scale, 1e-3);
        EXPECT_EQ(t.labels[i], a.category_id - 1);
        // And back to the original image for a results file.
        const std::array<double, 4> back = to_original_xywh(t, t.boxes[i]);
        for (int k = 0; k < 4; ++k) EXPECT_NEAR(back[k], a.bbox[k], 1e-3);
      }
    }
  }
  EXPECT_EQ(seen, 14);
  EXPECT_EQ(images.size(), 14u);
  EXPECT_GT(flipped, 0);
  EXPECT_LT(flipped, 14);
}

TEST_F(LoaderTest, PixelsAreTheImageNormalisedAndMirrored) {
  LoaderOptions o = train_options();
  o.batch_size = 2;
  o.target_size = 96;  // no resampling
  o.flip_probability = 1;
  DataLoader loader(o);
  const Batch batch = *loader.next();
  const RgbImage image = read_image(o.image_root / loader.dataset().images[0].file_name);
  ASSERT_EQ(batch.targets[0].image_id, loader.dataset().images[0].id);
  ASSERT_TRUE(batch.targets[0].flipped);
  for (int y : {0, 40, 95})
    for (int x : {0, 17, 95})
      for (int c = 0; c < 3; ++c) {
        const float expected = (image.pixels[(y * 96 + (95 - x)) * 3 + c] / 255.0f - o.mean[c]) / o.std[c];
        EXPECT_NEAR(batch.pixels[(c * 96 + y) * 96 + x], expected, 1e-5);
      }
}

TEST_F(LoaderTest, NonSquareImagesArePaddedWithZero) {
  ts::TempDir dir;
  fs::create_directories(dir / "images");
  std::vector<uint8_t> rgb(6 * 4 * 3, 200);
  const std::string png = encode_png(rgb.data(), 6, 4);
  ts::write_text(dir / "images/wide.png", png);
  ts::write_text(dir / "gt.json", R"({"images": [{"id": 3, "file_name": "wide.png", "width": 6, "height": 4}],
    "categories": [{"id": 9, "name": "x"}], "annotations": [{"id": 1, "image_id": 3, "category_id": 9,
    "bbox": [1, 1, 2, 2], "area": 4, "iscrowd": 1}]})");
  LoaderOptions o;
  o.annotations = dir / "gt.json";
  o.image_root = dir / "images";
  o.target_size = 12;
  o.mean = {0, 0, 0};
  o.std = {1, 1, 1};
  DataLoader loader(o);
  const Batch batch = *loader.next();
  const ImageTargets& t = batch.targets[0];
  EXPECT_EQ(t.resized_width, 12);
  EXPECT_EQ(t.resized_height, 8);
  EXPECT_FLOAT_EQ(batch.pixels[7 * 12 + 11], 200.0f / 255);  // inside the image
  EXPECT_EQ(batch.pixels[8 * 12 + 0], 0.0f);                 // padding
  EXPECT_EQ(batch.pixels[2 * 144 + 11 * 12 + 11], 0.0f);
  ASSERT_EQ(t.boxes.size(), 1u);
  EXPECT_TRUE(t.crowd[0]);
  EXPECT_EQ(t.labels[0], 0);
  EXPECT_EQ(loader.labels().category_id(0), 9);
  EXPECT_FALSE(loader.next().has_value());
}

TEST_F(LoaderTest, BatchesAreTheSameForAnyNumberOfWorkers) {
  LoaderOptions o = train_options();
  o.batch_size = 3;
  o.target_size = 80;
  o.flip_probability = 0.5;
  o.shuffle = true;
  o.seed = 9;
  o.drop_last = true;
  o.workers = 1;
  DataLoader one(o);
  o.workers = 3;
  o.prefetch = 1;
  DataLoader three(o);
  EXPECT_EQ(one.batches_per_epoch(), 4u);  // 14 images, drop_last
  for (uint64_t e : {0u, 1u}) {
    const std::vector<Batch> a = epoch(one, e), b = epoch(three, e);
    ASSERT_EQ(a.size(), 4u);
    ASSERT_EQ(b.size(), 4u);
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].pixels, b[i].pixels);
      ASSERT_EQ(a[i].targets.size(), 3u);
      for (size_t j = 0; j < 3; ++j) {
        EXPECT_EQ(a[i].targets[j].image_id, b[i].targets[j].image_id);
        EXPECT_EQ(a[i].targets[j].flipped, b[i].targets[j].flipped);
        EXPECT_EQ(a[i].targets[j].boxes, b[i].targets[j].boxes);
      }
    }
  }
  // Epochs shuffle differently.
  auto ids = [](const std::vector<Batch>& batches) {
    std::vector<int64_t> list;
    for (const Batch& b : batches)
      for (const ImageTargets& t : b.targets) list.push_back(t.image_id);
    return list;
  };
  EXPECT_NE(ids(epoch(one, 0)), ids(epoch(one, 1)));
  // Restarting an epoch midway gives the same epoch again.
  one.start_epoch(0);
  (void)one.next();
  EXPECT_EQ(ids(epoch(one, 0)), ids(epoch(three, 0)));
}

// A copy of the train split whose images can be broken.
fs::path copy_split(const fs::path& from, const fs::path& to) {
  fs::create_directories(to / "annotations");
  fs::copy(from / "annotations", to / "annotations", fs::copy_options::recursive);
  fs::copy(from / "images", to / "images", fs::copy_options::recursive);
  return to;
}

std::string error_of(DataLoader& loader) {
  try {
    while (loader.next()) {
    }
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

TEST_F(LoaderTest, MissingAndCorruptImagesFailWithTheirNameOnTheConsumerThread) {
  ts::TempDir dir;
  copy_split(dir_->path(), dir.path());
  LoaderOptions o = split_options(dir.path(), "train");
  o.batch_size = 4;
  o.workers = 2;
  fs::remove(dir / "images/train/000006.png");
  {
    DataLoader loader(o);
    const std::string message = error_of(loader);
    EXPECT_NE(message.find("images/train/000006.png: no such image file"), std::string::npos) << message;
  }
  ts::write_text(dir / "images/train/000006.png", "\x89PNG\r\n\x1a\n garbage, not an image");
  {
    DataLoader loader(o);
    const std::string message = error_of(loader);
    EXPECT_NE(message.find("images/train/000006.png: cannot decode image"), std::string::npos) << message;
  }
  // A truncated PNG.
  const std::string good = ts::read_text(dir / "images/train/000007.png");
  ts::write_text(dir / "images/train/000006.png", good.substr(0, good.size() / 2));
  {
    DataLoader loader(o);
    const std::string message = error_of(loader);
    EXPECT_NE(message.find("000006.png"), std::string::npos) << message;
  }
  // An image whose size is not the JSON's.
  std::vector<uint8_t> rgb(10 * 10 * 3, 7);
  ts::write_text(dir / "images/train/000006.png", encode_png(rgb.data(), 10, 10));
  {
    DataLoader loader(o);
    const std::string message = error_of(loader);
    EXPECT_NE(message.find("000006.png: image is 10x10"), std::string::npos) << message;
  }
}

TEST_F(LoaderTest, MissingOrMalformedJsonFailsInTheConstructorWithItsName) {
  ts::TempDir dir;
  LoaderOptions o = split_options(dir.path(), "train");
  try {
    DataLoader loader(o);
    FAIL() << "no error for a missing annotation file";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("instances_train.json: no such file"), std::string::npos) << e.what();
  }
  fs::create_directories(dir / "annotations");
  ts::write_text(o.annotations, "{\"images\": [1, 2");
  try {
    DataLoader loader(o);
    FAIL() << "no error for malformed JSON";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("instances_train.json: malformed JSON"), std::string::npos) << e.what();
  }
}

TEST_F(LoaderTest, SkipEmptyLeavesOutImagesWithoutAnnotations) {
  ts::TempDir dir;
  SynthOptions s;
  s.train = 8;
  s.val = 0;
  s.image_size = 64;
  s.max_object_size = 40;
  s.min_objects = 0;
  s.max_objects = 1;
  write_synthetic_dataset(dir.path(), s);
  LoaderOptions o = split_options(dir.path(), "train");
  o.skip_empty = true;
  DataLoader loader(o);
  size_t with_objects = 0;
  for (const CocoImage& image : loader.dataset().images) with_objects += !loader.dataset().annotations_of(image.id).empty();
  EXPECT_EQ(loader.images(), with_objects);
  EXPECT_LT(with_objects, 8u);
}

}  // namespace
}  // namespace lossforge::data
