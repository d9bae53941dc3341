// `lossforge data eval` against pycocotools itself: tests/reference/coco_reference.py
// writes random ground truth and detections for 20 seeds (crowd, every area
// range, score ties, id 0, > 100 detections per image ...) with pycocotools'
// stats and printed summary; all 12 numbers must agree to 1e-9 and the
// summary byte for byte. Without pycocotools for `python3` the test fails.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "data_test_support.hpp"

namespace lossforge::data {
namespace {

namespace ts = test_support;
constexpr int kSeeds = 20;

TEST(CocoReference, AgreesWithPycocotools) {
  ts::TempDir dir;
  const ts::ProgramRun reference =
      ts::run_program({"python3", LOSSFORGE_SOURCE_DIR "/tests/reference/coco_reference.py", "--out",
                       dir.path().string(), "--seeds", std::to_string(kSeeds)},
                      dir.path());
  ASSERT_EQ(reference.status, 0) << "the pycocotools reference did not run (pycocotools is needed for python3):\n"
                                 << reference.err;
  for (int seed = 0; seed < kSeeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const std::string gt = (dir / ("gt_" + std::to_string(seed) + ".json")).string();
    const std::string dt = (dir / ("dt_" + std::to_string(seed) + ".json")).string();
    const ts::ProgramRun json_run = ts::run_program({LOSSFORGE_CLI, "data", "eval", "--gt", gt, "--dt", dt, "--json"}, dir.path());
    ASSERT_EQ(json_run.status, 0) << json_run.err;
    const nlohmann::json ours = nlohmann::json::parse(json_run.out);
    const nlohmann::json theirs = nlohmann::json::parse(ts::read_text(dir / ("stats_" + std::to_string(seed) + ".json")));
    ASSERT_EQ(theirs.size(), 12u);
    ASSERT_EQ(ours.size(), 12u);
    for (const auto& [name, value] : theirs.items()) {
      ASSERT_TRUE(ours.contains(name)) << name;
      EXPECT_NEAR(ours.at(name).get<double>(), value.get<double>(), 1e-9) << name;
    }
    const ts::ProgramRun text_run = ts::run_program({LOSSFORGE_CLI, "data", "eval", "--gt", gt, "--dt", dt}, dir.path());
    ASSERT_EQ(text_run.status, 0) << text_run.err;
    EXPECT_EQ(text_run.out, ts::read_text(dir / ("summary_" + std::to_string(seed) + ".txt")));
  }
}

TEST(CocoReference, CommandLineNamesTheBadFileAndEntry) {
  ts::TempDir dir;
  ts::write_text(dir / "gt.json", R"({"images": [{"id": 1, "file_name": "a.png", "width": 9, "height": 9}],
    "categories": [{"id": 1, "name": "a"}], "annotations": []})");
  ts::write_text(dir / "dt.json", R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1},
    {"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 1}])");
  ts::ProgramRun run = ts::run_program({LOSSFORGE_CLI, "data", "eval", "--gt", (dir / "gt.json").string(), "--dt",
                                        (dir / "dt.json").string()},
                                       dir.path());
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find((dir / "dt.json").string() + ": [1].bbox"), std::string::npos) << run.err;
  ts::write_text(dir / "dt.json", R"([{"image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}])");
  run = ts::run_program({LOSSFORGE_CLI, "data", "eval", "--gt", (dir / "gt.json").string(), "--dt",
                         (dir / "dt.json").string()},
                        dir.path());
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find("image_id 2"), std::string::npos) << run.err;
  run = ts::run_program({LOSSFORGE_CLI, "data", "eval", "--gt", (dir / "missing.json").string(), "--dt",
                         (dir / "dt.json").string()},
                        dir.path());
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find("missing.json: no such file"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace lossforge::data
