// COCO evaluation on hand-computed fixtures, one per rule of pycocotools'
// COCOeval (coco_reference_test.cpp compares with pycocotools itself).
// Stats order: AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl.
#include "detectors/data/coco_eval.hpp"

#include <cstdint>

#include <gtest/gtest.h>

#include "compiler/error.hpp"
#include "data_test_support.hpp"

namespace lossforge::data {
namespace {

using Box = std::array<double, 4>;
enum Stat { kAP, kAP50, kAP75, kAPs, kAPm, kAPl, kAR1, kAR10, kAR100, kARs, kARm, kARl };

// Ground truth built by hand: images 640x480, categories named by id.
class Gt {
 public:
  Gt& image(int64_t id) {
    d_.images.push_back({id, std::to_string(id) + ".png", 640, 480});
    return *this;
  }
  Gt& category(int64_t id) {
    d_.categories.push_back({id, "c" + std::to_string(id)});
    return *this;
  }
  // area < 0: w * h.
  Gt& box(int64_t image, int64_t category, Box bbox, double area = -1, bool crowd = false, int64_t id = -1) {
    d_.annotations.push_back(
        {id >= 0 ? id : next_id_++, image, category, bbox, area >= 0 ? area : bbox[2] * bbox[3], crowd});
    return *this;
  }
  CocoDataset build() {
    d_.reindex();
    return d_;
  }

 private:
  CocoDataset d_;
  int64_t next_id_ = 1;
};

Detection det(int64_t image, int64_t category, Box bbox, double score) { return {image, category, bbox, score}; }

CocoStats eval(Gt& gt, const std::vector<Detection>& dt) { return evaluate_bbox(gt.build(), dt); }

void expect_stats(const CocoStats& s, const std::array<double, 12>& expected) {
  for (size_t i = 0; i < 12; ++i) EXPECT_NEAR(s.stats[i], expected[i], 1e-12) << CocoStats::kNames[i];
}

TEST(CocoEval, PerfectDetectionScoresOneInItsAreaRange) {
  Gt gt;
  gt.image(1).category(1).box(1, 1, {10, 10, 40, 40});  // area 1600: medium
  expect_stats(eval(gt, {det(1, 1, {10, 10, 40, 40}, 0.9)}), {1, 1, 1, -1, 1, -1, 1, 1, 1, -1, 1, -1});
}

TEST(CocoEval, IouExactlyAtAThresholdMatches) {
  // IoU = 600 / 1000 = 0.6: a match at 0.50, 0.55 and 0.60, none above.
  Gt gt;
  gt.image(1).category(1).box(1, 1, {0, 0, 100, 10});  // area 1000: small
  expect_stats(eval(gt, {det(1, 1, {0, 0, 60, 10}, 0.9)}),
               {0.3, 1, 0, 0.3, -1, -1, 0.3, 0.3, 0.3, 0.3, -1, -1});
}

TEST(CocoEval, ScoreTiesKeepFileOrderWithinAnImage) {
  Gt gt;
  gt.image(1).category(1).box(1, 1, {0, 0, 40, 40}).box(1, 1, {100, 100, 40, 40});
  const Detection hit = det(1, 1, {0, 0, 40, 40}, 0.5), miss = det(1, 1, {300, 300, 40, 40}, 0.5);
  // Miss first: precision 0.5 up to recall 0.5 (51 of 101 recall points).
  EXPECT_NEAR(eval(gt, {miss, hit}).AP(), 0.5 * 51 / 101, 1e-12);
  // Hit first: precision 1 up to recall 0.5.
  EXPECT_NEAR(eval(gt, {hit, miss}).AP(), 51.0 / 101, 1e-12);
  EXPECT_NEAR(eval(gt, {miss, hit}).stats[kAR100], 0.5, 1e-12);
}

TEST(CocoEval, ScoreTiesAcrossImagesFollowImageIdsNotFileOrder) {
  // Image 7 comes first in the file; image 3 is evaluated first.
  Gt gt;
  gt.image(7).image(3).category(1).box(3, 1, {0, 0, 40, 40});
  EXPECT_NEAR(eval(gt, {det(7, 1, {0, 0, 40, 40}, 0.5), det(3, 1, {0, 0, 40, 40}, 0.5)}).AP(), 1.0, 1e-12);
  Gt swapped;
  swapped.image(7).image(3).category(1).box(7, 1, {0, 0, 40, 40});
  EXPECT_NEAR(eval(swapped, {det(7, 1, {0, 0, 40, 40}, 0.5), det(3, 1, {0, 0, 40, 40}, 0.5)}).AP(), 0.5, 1e-12);
}

TEST(CocoEval, CrowdRegionsAbsorbAnyNumberOfDetections) {
  Gt gt;
  gt.image(1).category(1).box(1, 1, {200, 200, 40, 40}).box(1, 1, {0, 0, 100, 100}, 10000, /*crowd=*/true);
  const CocoStats s = eval(gt, {det(1, 1, {10, 10, 20, 20}, 0.9), det(1, 1, {50, 50, 20, 20}, 0.8),
                                det(1, 1, {200, 200, 40, 40}, 0.7)});
  // Both detections inside the crowd box are ignored; the crowd (large) counts nowhere.
  // An ignored detection still takes its place among an image's best: AR1 is 0.
  expect_stats(s, {1, 1, 1, -1, 1, -1, 0, 1, 1, -1, 1, -1});
}

TEST(CocoEval, CrowdIouIsOverTheDetectionArea) {
  // Half of the 20x20 detection lies in the crowd box: IoU 200/400 = 0.5, so it is
  // ignored at threshold 0.50 and a false positive (before the hit) above it...
  Gt gt;
  gt.image(1).category(1).box(1, 1, {200, 200, 40, 40}).box(1, 1, {0, 0, 100, 100}, 10000, true);
  const CocoStats s = eval(gt, {det(1, 1, {90, 0, 20, 20}, 0.9), det(1, 1, {200, 200, 40, 40}, 0.8)});
  EXPECT_NEAR(s.AP(), (1 + 9 * 0.5) / 10, 1e-12);
  EXPECT_NEAR(s.AP50(), 1, 1e-12);
  EXPECT_NEAR(s.AP75(), 0.5, 1e-12);
  // ...except in the medium range, where an unmatched small detection is ignored.
  EXPECT_NEAR(s.stats[kAPm], 1, 1e-12);
  EXPECT_NEAR(s.stats[kAPs], -1, 1e-12);
}

TEST(CocoEval, ImagesWithoutDetectionsLowerRecallEmptyImagesChangeNothing) {
  Gt gt;
  gt.image(1).image(2).image(3).category(1).box(1, 1, {0, 0, 40, 40}).box(2, 1, {0, 0, 40, 40});
  const CocoStats s = eval(gt, {det(1, 1, {0, 0, 40, 40}, 0.9)});
  expect_stats(s, {51.0 / 101, 51.0 / 101, 51.0 / 101, -1, 51.0 / 101, -1, 0.5, 0.5, 0.5, -1, 0.5, -1});
  Gt without_empty;
  without_empty.image(1).image(2).category(1).box(1, 1, {0, 0, 40, 40}).box(2, 1, {0, 0, 40, 40});
  EXPECT_EQ(evaluate_bbox(without_empty.build(), std::vector{det(1, 1, {0, 0, 40, 40}, 0.9)}).stats, s.stats);
}

TEST(CocoEval, NoDetectionsAtAllGiveZeroNotMinusOne) {
  Gt gt;
  gt.image(1).category(1).box(1, 1, {0, 0, 40, 40});
  expect_stats(eval(gt, {}), {0, 0, 0, -1, 0, -1, 0, 0, 0, -1, 0, -1});
}

TEST(CocoEval, CategoriesWithoutGroundTruthAreLeftOutOfTheMeans) {
  Gt gt;
  gt.image(1).category(1).category(2).box(1, 1, {0, 0, 40, 40});
  const CocoStats s = eval(gt, {det(1, 2, {0, 0, 40, 40}, 0.99), det(1, 1, {0, 0, 40, 40}, 0.9),
                                det(1, 99, {0, 0, 40, 40}, 0.95)});  // 99: not a category of the ground truth
  EXPECT_NEAR(s.AP(), 1, 1e-12);
  ASSERT_EQ(s.category_ids, (std::vector<int64_t>{1, 2}));
  EXPECT_NEAR(s.category_ap[0], 1, 1e-12);
  EXPECT_EQ(s.category_ap[1], -1);
}

TEST(CocoEval, AreaRangesUseTheAreaFieldAndIgnoreUnmatchedDetectionsOutsideThem) {
  Gt gt;
  gt.image(1).category(1).box(1, 1, {0, 0, 40, 40}, /*area=*/500);  // small by its area field
  // A 50x50 false positive (medium) scores above the hit.
  const CocoStats s = eval(gt, {det(1, 1, {100, 100, 50, 50}, 0.9), det(1, 1, {0, 0, 40, 40}, 0.8)});
  EXPECT_NEAR(s.AP(), 0.5, 1e-12);
  EXPECT_NEAR(s.stats[kAPs], 1, 1e-12);  // the false positive is outside the small range
  EXPECT_EQ(s.stats[kAPm], -1);          // the ground truth is not medium
  EXPECT_EQ(s.stats[kAPl], -1);
  EXPECT_NEAR(s.stats[kARs], 1, 1e-12);
}

TEST(CocoEval, AreaRangeBoundsBelongToBothRanges) {
  Gt gt;
  gt.image(1).category(1).box(1, 1, {0, 0, 32, 32}).box(1, 1, {100, 100, 96, 96});  // 32² and 96²
  const CocoStats s = eval(gt, {det(1, 1, {0, 0, 32, 32}, 0.9), det(1, 1, {100, 100, 96, 96}, 0.8)});
  EXPECT_NEAR(s.stats[kAPs], 1, 1e-12);
  EXPECT_NEAR(s.stats[kAPm], 1, 1e-12);
  EXPECT_NEAR(s.stats[kAPl], 1, 1e-12);
  EXPECT_NEAR(s.stats[kARm], 1, 1e-12);
}

TEST(CocoEval, MaxDetsTakeEachImagesBestDetections) {
  Gt gt;
  gt.image(1).category(1).box(1, 1, {0, 0, 40, 40}).box(1, 1, {100, 0, 40, 40}).box(1, 1, {200, 0, 40, 40});
  const CocoStats s = eval(gt, {det(1, 1, {0, 0, 40, 40}, 0.9), det(1, 1, {100, 0, 40, 40}, 0.8),
                                det(1, 1, {200, 0, 40, 40}, 0.7)});
  EXPECT_NEAR(s.stats[kAR1], 1.0 / 3, 1e-12);
  EXPECT_NEAR(s.stats[kAR10], 1, 1e-12);
  EXPECT_NEAR(s.stats[kAR100], 1, 1e-12);
  EXPECT_NEAR(s.AP(), 1, 1e-12);
}

TEST(CocoEval, OnlyTheFirstHundredDetectionsOfAnImageCount) {
  Gt gt;
  gt.image(1).category(1).box(1, 1, {0, 0, 40, 40});
  std::vector<Detection> dt;
  for (int i = 0; i < 100; ++i) dt.push_back(det(1, 1, {300.0 + i, 300, 5, 5}, 0.9));
  dt.push_back(det(1, 1, {0, 0, 40, 40}, 0.9));  // tied, last in the file: the 101st
  EXPECT_EQ(eval(gt, dt).stats[kAR100], 0);
  EXPECT_EQ(eval(gt, dt).AP(), 0);
  dt.back().score = 0.95;  // now the best
  const CocoStats s = eval(gt, dt);
  EXPECT_NEAR(s.stats[kAR1], 1, 1e-12);
  EXPECT_NEAR(s.AP(), 1, 1e-12);
}

TEST(CocoEval, GreedyMatchingTakesTheHighestIouUnmatchedGroundTruth) {
  // The first detection overlaps B (IoU 0.54, first in the file) and A (0.67): it
  // takes A, leaving B for the second detection, which overlaps A too little.
  Gt gt;
  gt.image(1).category(1).box(1, 1, {20, 0, 40, 40}).box(1, 1, {0, 0, 40, 40});
  const CocoStats s = eval(gt, {det(1, 1, {8, 0, 40, 40}, 0.9), det(1, 1, {20, 0, 40, 40}, 0.8)});
  EXPECT_NEAR(s.AP50(), 1, 1e-12);
}

TEST(CocoEval, GroundTruthIdZeroCountsAsUnmatchedLikePycocotools) {
  Gt gt;
  gt.image(1).category(1).box(1, 1, {0, 0, 40, 40}, -1, false, /*id=*/0);
  EXPECT_EQ(eval(gt, {det(1, 1, {0, 0, 40, 40}, 0.9)}).AP(), 0);
}

TEST(CocoEval, DetectionsOnUnknownImagesAreRefused) {
  Gt gt;
  gt.image(1).category(1).box(1, 1, {0, 0, 40, 40});
  EXPECT_THROW(eval(gt, {det(5, 1, {0, 0, 40, 40}, 0.9)}), InputError);
}

TEST(CocoEval, SummaryTextIsPycocotoolsFormat) {
  CocoStats s;
  s.stats = {0.25247524752475248, 0.5, 0.0, -1, 1, -1, 0.3333333333333333, 0.5, 0.5125, -1, 1, -1};
  const std::string text = summary_text(s);
  EXPECT_EQ(text.substr(0, text.find('\n') + 1),
            " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.252\n");
  EXPECT_NE(text.find(" Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 0.500\n"),
            std::string::npos);
  EXPECT_NE(text.find(" Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = -1.000\n"),
            std::string::npos);
  EXPECT_NE(text.find(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.333\n"),
            std::string::npos);
  EXPECT_NE(text.find(" Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = 1.000\n"),
            std::string::npos);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 12);
  const nlohmann::json json = to_json(s);
  EXPECT_EQ(json.size(), 12u);
  EXPECT_EQ(json.at("AR100").get<double>(), 0.5125);
}

// ---- reading results and annotation files ------------------------------------

TEST(CocoResults, BadEntriesNameTheFileAndTheIndex) {
  test_support::TempDir dir;
  const auto path = dir / "results.json";
  auto message_for = [&](const std::string& text) {
    test_support::write_text(path, text);
    try {
      load_results(path);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string good = R"({"image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4], "score": 0.5})";
  std::string m = message_for("[" + good + ", {\"image_id\": 1, \"category_id\": 1, \"bbox\": [0, 0, 4, 4]}]");
  EXPECT_NE(m.find(path.string() + ": [1]"), std::string::npos) << m;
  EXPECT_NE(m.find("score"), std::string::npos) << m;
  m = message_for("[" + good + "," + good + R"(, {"image_id": 1, "category_id": 1, "bbox": [0, 0, 4], "score": 1}])");
  EXPECT_NE(m.find("[2].bbox"), std::string::npos) << m;
  m = message_for(R"([{"image_id": "a", "category_id": 1, "bbox": [0, 0, 4, 4], "score": 1}])");
  EXPECT_NE(m.find("[0].image_id"), std::string::npos) << m;
  m = message_for(R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, -4, 4], "score": 1}])");
  EXPECT_NE(m.find("negative"), std::string::npos) << m;
  m = message_for(R"({"image_id": 1})");
  EXPECT_NE(m.find("expected a list"), std::string::npos) << m;
  m = message_for("[" + good);
  EXPECT_NE(m.find(path.string() + ": malformed JSON"), std::string::npos) << m;
  m = message_for("");
  EXPECT_NE(m.find(path.string() + ": malformed JSON"), std::string::npos) << m;
  std::filesystem::remove(path);
  try {
    load_results(path);
    ADD_FAILURE() << "a missing file was read";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(path.string() + ": no such file"), std::string::npos) << e.what();
  }
  test_support::write_text(path, "[" + good + "]");
  ASSERT_EQ(load_results(path).size(), 1u);
  EXPECT_EQ(load_results(path)[0].score, 0.5);
}

TEST(CocoAnnotations, BadFieldsNameTheFileAndTheJsonPath) {
  test_support::TempDir dir;
  const auto path = dir / "gt.json";
  auto message_for = [&](const std::string& text) {
    test_support::write_text(path, text);
    try {
      load_coco(path);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string image = R"({"id": 1, "file_name": "a.png", "width": 10, "height": 10})";
  const std::string category = R"({"id": 1, "name": "a"})";
  auto doc = [&](const std::string& annotation) {
    return R"({"images": [)" + image + R"(], "categories": [)" + category + R"(], "annotations": [)" + annotation + "]}";
  };
  std::string m = message_for(doc(R"({"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]})"));
  EXPECT_NE(m.find(path.string() + ": annotations[0].bbox"), std::string::npos) << m;
  m = message_for(doc(R"({"id": 1, "image_id": 2, "category_id": 1, "bbox": [1, 2, 3, 4]})"));
  EXPECT_NE(m.find("annotations[0].image_id"), std::string::npos) << m;
  m = message_for(doc(R"({"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}, )"
                      R"({"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]})"));
  EXPECT_NE(m.find("duplicate annotation id"), std::string::npos) << m;
  m = message_for(R"({"images": [{"id": 1}], "categories": []})");
  EXPECT_NE(m.find("images[0]"), std::string::npos) << m;
  EXPECT_NE(m.find("file_name"), std::string::npos) << m;
  m = message_for("{\"images\": [");
  EXPECT_NE(m.find(path.string() + ": malformed JSON"), std::string::npos) << m;

  // Area and iscrowd are optional; segmentations are skipped.
  test_support::write_text(path, doc(R"({"id": 4, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], )"
                                R"("segmentation": [[1, 2, 3, 4, 5, 6]]})"));
  const CocoDataset d = load_coco(path);
  ASSERT_EQ(d.annotations.size(), 1u);
  EXPECT_EQ(d.annotations[0].area, 12);
  EXPECT_FALSE(d.annotations[0].iscrowd);
  EXPECT_EQ(d.annotations_of(1).size(), 1u);
  EXPECT_EQ(d.find_image(1)->file_name, "a.png");
  EXPECT_EQ(d.find_category(1)->name, "a");
  // And what save_coco writes reads back the same.
  save_coco(d, dir / "copy.json");
  const CocoDataset copy = load_coco(dir / "copy.json");
  EXPECT_EQ(coco_json_text(copy), coco_json_text(d));
}

}  // namespace
}  // namespace lossforge::data
