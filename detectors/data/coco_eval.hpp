// COCO bounding-box evaluation with exactly pycocotools' COCOeval semantics
// (iouType "bbox", useCats 1), so numbers from lossforge and from Python agree
// to rounding:
//   - per image and category, detections sorted by descending score with a
//     stable sort, at most 100 kept; greedy matching at IoU thresholds
//     0.50:0.05:0.95 (computed as numpy.linspace does), each detection taking
//     the not yet matched ground truth of highest IoU >= the threshold (later
//     ones win ties), non-ignored ground truth before ignored;
//   - crowd ground truth: IoU = intersection / detection area, always
//     ignored, and may match any number of detections;
//   - area ranges all / small (< 32²) / medium / large (>= 96²) by the ground
//     truth's `area` field (bounds inclusive on both sides, as pycocotools);
//     ground truth outside the range is ignored, and so are unmatched
//     detections whose w*h is outside it;
//   - precision at 101 recall points from the monotone envelope, detections
//     of all images of a category merged with a stable sort by score (images
//     in increasing id); maxDets 1, 10, 100 take each image's first k;
//   - -1 for a category without non-ignored ground truth, and summary means
//     over the entries > -1.
// pycocotools' quirk is kept as well: a detection matched to a ground truth
// whose annotation id is 0 counts as unmatched.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "detectors/data/coco.hpp"

namespace lossforge::data {

// One entry of a COCO results file.
struct Detection {
  int64_t image_id = 0;
  int64_t category_id = 0;
  std::array<double, 4> bbox{};  // x, y, w, h in original image pixels
  double score = 0;
};

// Reads a results file: a JSON list of {image_id, category_id, bbox, score}
// (other keys ignored). Throws lossforge::InputError naming the file and the
// index of a bad entry (missing key, wrong type, non-finite number, negative
// width or height).
std::vector<Detection> load_results(const std::filesystem::path& path);
std::vector<Detection> parse_results(const nlohmann::json& results, const std::string& where);
// The same list as JSON (for writing a results file).
nlohmann::json results_json(std::span<const Detection> detections);

struct CocoStats {
  // AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl.
  std::array<double, 12> stats{};
  static constexpr std::array<std::string_view, 12> kNames = {
      "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"};
  double AP() const { return stats[0]; }
  double AP50() const { return stats[1]; }
  double AP75() const { return stats[2]; }
  // Per category (increasing id): AP@[0.50:0.95], all areas, 100 detections;
  // -1 for a category without non-ignored ground truth.
  std::vector<int64_t> category_ids;
  std::vector<double> category_ap;
};

// Evaluates detections against ground truth. Throws InputError for a
// detection whose image_id is not in `gt` (pycocotools refuses those too);
// detections of categories absent from `gt` are ignored.
CocoStats evaluate_bbox(const CocoDataset& gt, std::span<const Detection> dt);

// pycocotools' 12-line summary, byte for byte, each line ending in '\n':
//  Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.xxx
std::string summary_text(const CocoStats& stats);
// {"AP": ..., "AP50": ..., ..., "ARl": ...}
nlohmann::json to_json(const CocoStats& stats);

}  // namespace lossforge::data
