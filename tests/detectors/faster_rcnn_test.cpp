// Faster R-CNN's parts that can be checked by hand (detectors/train/anchors.hpp,
// rpn.hpp, faster_rcnn.hpp, faster_rcnn_detector.hpp): anchors, the delta
// coder, RPN assignment and sampling, RPN recall from perfect predictions,
// RoI sampling, the Z map of the multi_cls slot, and the whole detector's
// losses (forward + backward) and detections on a tiny batch.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>

#include "compiler/error.hpp"
#include "detectors/data/loader.hpp"
#include "detectors/train/anchors.hpp"
#include "detectors/train/boxes.hpp"
#include "detectors/train/detector.hpp"
#include "detectors/train/faster_rcnn.hpp"
#include "detectors/train/faster_rcnn_detector.hpp"
#include "detectors/train/rpn.hpp"

namespace lossforge::detectors {
namespace {

const std::string kExamples = std::string(LOSSFORGE_SOURCE_DIR) + "/examples/losses/";

torch::Tensor boxes_of(std::initializer_list<float> values) {
  return torch::tensor(std::vector<float>(values)).view({-1, 4});
}

std::set<int64_t> as_set(const torch::Tensor& idx) {
  const torch::Tensor i = idx.to(torch::kLong).contiguous();
  return std::set<int64_t>(i.data_ptr<int64_t>(), i.data_ptr<int64_t>() + i.numel());
}

// ---- anchors and deltas -------------------------------------------------------

TEST(Anchors, CountSizesRatiosAndCentres) {
  const AnchorOptions o{{8, 32}, {0.5, 1, 2}};
  const torch::Tensor a = make_anchors({{4, 6}, {2, 3}}, {4, 8}, o);
  ASSERT_EQ(a.size(0), 4 * 6 * 3 + 2 * 3 * 3);
  const torch::Tensor w = a.select(1, 2) - a.select(1, 0), h = a.select(1, 3) - a.select(1, 1);
  // Level 0, cell (row 1, column 2), ratio index 2 (h/w = 2): index (1·6 + 2)·3 + 2.
  const int64_t i = (1 * 6 + 2) * 3 + 2;
  EXPECT_NEAR(((a[i][0] + a[i][2]) / 2).item<float>(), 2.5 * 4, 1e-5);
  EXPECT_NEAR(((a[i][1] + a[i][3]) / 2).item<float>(), 1.5 * 4, 1e-5);
  EXPECT_NEAR((h[i] / w[i]).item<float>(), 2, 1e-5);
  EXPECT_NEAR((w[i] * h[i]).item<float>(), 64, 1e-3);
  // Level 1 starts after level 0; its first anchor is centred on (4, 4), area 32².
  const int64_t j = 4 * 6 * 3 + 1;  // ratio 1
  EXPECT_NEAR(a[j][0].item<float>(), 4 - 16, 1e-5);
  EXPECT_NEAR(a[j][3].item<float>(), 4 + 16, 1e-5);
  EXPECT_TRUE(torch::allclose((w * h).slice(0, 72), torch::full({18}, 1024.f), 1e-4, 1e-2));
  EXPECT_THROW(make_anchors({{4, 6}}, {4}, o), InputError);
}

TEST(Anchors, DeltaCoderRoundTrip) {
  torch::manual_seed(2);
  const torch::Tensor xy = torch::rand({30, 2}) * 80, wh = torch::rand({30, 2}) * 40 + 2;
  const torch::Tensor ref = torch::cat({xy, xy + wh}, 1);
  const torch::Tensor xy2 = torch::rand({30, 2}) * 80, wh2 = torch::rand({30, 2}) * 40 + 2;
  const torch::Tensor box = torch::cat({xy2, xy2 + wh2}, 1);
  for (const DeltaStds& stds : {kRpnDeltaStds, kRcnnDeltaStds})
    EXPECT_TRUE(torch::allclose(decode_deltas(ref, encode_deltas(ref, box, stds), stds), box, 1e-4, 1e-3));
  // Zero deltas decode to the reference itself.
  EXPECT_TRUE(torch::allclose(decode_deltas(ref, torch::zeros({30, 4}), kRcnnDeltaStds), ref, 1e-5, 1e-4));
}

// ---- RPN assignment and sampling ----------------------------------------------

TEST(RpnAssignment, ThresholdsIgnoreBandAndBestAnchorPerBox) {
  const torch::Tensor anchors = boxes_of({0, 0, 10, 10,       // 0: IoU 1 with box 0 → foreground
                                          0, 0, 10, 20,       // 1: IoU 0.5 with box 0 → ignored (0.3..0.7)
                                          0, 0, 10, 40,       // 2: IoU 0.25 → background
                                          100, 100, 110, 110, // 3: no overlap → background
                                          50, 50, 60, 70,     // 4: IoU 0.5 with box 1: its best → foreground
                                          50, 50, 60, 75,     // 5: IoU 0.4 with box 1 → ignored
                                          0, 0, 10, 11});     // 6: IoU 10/11 with box 0 → foreground
  const torch::Tensor boxes = boxes_of({0, 0, 10, 10, 50, 50, 60, 60, 200, 200, 210, 210});
  const AnchorAssignment a = assign_anchors(anchors, boxes, 0.7, 0.3);
  const std::vector<int64_t> labels(a.labels.data_ptr<int64_t>(), a.labels.data_ptr<int64_t>() + 7);
  EXPECT_EQ(labels, (std::vector<int64_t>{1, -1, 0, 0, 1, -1, 1}));
  EXPECT_EQ(a.matched[0].item<int64_t>(), 0);
  EXPECT_EQ(a.matched[4].item<int64_t>(), 1);
  EXPECT_EQ(a.matched[6].item<int64_t>(), 0);
  // Box 2 overlaps no anchor: nothing learns it.
  EXPECT_EQ((a.matched.masked_select(a.labels == 1) == 2).sum().item<int64_t>(), 0);
}

TEST(RpnAssignment, TiesAtTheBestIouAllLearnTheBox) {
  // Two anchors at the same low IoU 0.25 with the only box: both foreground.
  const torch::Tensor anchors = boxes_of({0, 0, 20, 20, 10, 10, 30, 30, 40, 40, 60, 60});
  const torch::Tensor boxes = boxes_of({10, 10, 20, 20});
  const AnchorAssignment a = assign_anchors(anchors, boxes, 0.7, 0.3);
  EXPECT_EQ(a.labels[0].item<int64_t>(), 1);
  EXPECT_EQ(a.labels[1].item<int64_t>(), 1);
  EXPECT_EQ(a.labels[2].item<int64_t>(), 0);
  // No boxes: everything background.
  const AnchorAssignment none = assign_anchors(anchors, torch::zeros({0, 4}), 0.7, 0.3);
  EXPECT_EQ(none.labels.sum().item<int64_t>(), 0);
}

TEST(RpnSampling, PositiveShareIsCappedAndNegativesFillUp) {
  torch::manual_seed(4);
  torch::Tensor positive = torch::zeros({200}, torch::kBool), negative = torch::zeros({200}, torch::kBool);
  positive.slice(0, 0, 30).fill_(true);
  negative.slice(0, 50, 200).fill_(true);
  auto [pos, neg] = sample_balanced(positive, negative, 40, 0.5);
  EXPECT_EQ(pos.size(0), 20);
  EXPECT_EQ(neg.size(0), 20);
  for (int64_t i : as_set(pos)) EXPECT_TRUE(i < 30);
  for (int64_t i : as_set(neg)) EXPECT_TRUE(i >= 50);
  EXPECT_EQ(as_set(pos).size(), 20u);  // no index twice
  // Few positives: all of them, negatives fill the rest.
  positive.fill_(false);
  positive.slice(0, 0, 3).fill_(true);
  std::tie(pos, neg) = sample_balanced(positive, negative, 40, 0.5);
  EXPECT_EQ(pos.size(0), 3);
  EXPECT_EQ(neg.size(0), 37);
}

// ---- RPN recall ---------------------------------------------------------------

data::ImageTargets image_with(std::vector<std::array<float, 4>> boxes, int width, int height) {
  data::ImageTargets t;
  t.resized_width = width;
  t.resized_height = height;
  t.boxes = std::move(boxes);
  for (size_t i = 0; i < t.boxes.size(); ++i) t.labels.push_back(static_cast<int>(i % 3));
  t.crowd.assign(t.boxes.size(), false);
  return t;
}

// Random boxes of 8..60 px inside a width × height image, as the synthetic data has.
std::vector<std::array<float, 4>> random_boxes(int n, int width, int height) {
  std::vector<std::array<float, 4>> out;
  for (int i = 0; i < n; ++i) {
    const float w = 8 + 52 * torch::rand({1}).item<float>(), h = 8 + 52 * torch::rand({1}).item<float>();
    const float x = (width - w) * torch::rand({1}).item<float>(), y = (height - h) * torch::rand({1}).item<float>();
    out.push_back({x, y, x + w, y + h});
  }
  return out;
}

TEST(RpnRecall, PerfectPredictionsProposeEveryBox) {
  torch::manual_seed(11);
  const FasterRcnnOptions options;
  const std::vector<std::array<int64_t, 2>> sizes = {{24, 24}, {12, 12}, {6, 6}, {3, 3}};  // a 96 px canvas
  const torch::Tensor anchors = make_anchors(sizes, options.strides(), options.rpn.anchors);
  // Two images, the second occupying 96 × 64 of the canvas.
  const std::vector<data::ImageTargets> images = {image_with(random_boxes(6, 96, 96), 96, 96),
                                                  image_with(random_boxes(4, 96, 64), 96, 64)};
  RpnOutput out;
  std::vector<torch::Tensor> objectness, deltas;
  for (const data::ImageTargets& image : images) {
    const GroundTruth truth = ground_truth(image, torch::kCPU);
    // Perfect objectness (the anchor's best IoU as a logit) and perfect deltas to that box.
    auto [best, matched] = pairwise_iou(anchors, truth.boxes).max(1);
    objectness.push_back(torch::logit(best.clamp(1e-4, 1 - 1e-4)));
    deltas.push_back(encode_deltas(anchors, truth.boxes.index_select(0, matched), kRpnDeltaStds));
  }
  out.objectness = torch::stack(objectness);
  out.deltas = torch::stack(deltas);
  for (const auto& [h, w] : sizes) out.anchors_per_level.push_back(h * w * 3);
  for (bool training : {true, false}) {
    const std::vector<Proposals> proposals = make_proposals(out, anchors, images, options.rpn, training);
    ASSERT_EQ(proposals.size(), 2u);
    for (size_t b = 0; b < images.size(); ++b) {
      const GroundTruth truth = ground_truth(images[b], torch::kCPU);
      const torch::Tensor& p = proposals[b].boxes;
      EXPECT_LE(p.size(0), training ? options.rpn.post_nms_top_k_train : options.rpn.post_nms_top_k_test);
      const torch::Tensor recall_iou = std::get<0>(pairwise_iou(truth.boxes, p).max(1));
      EXPECT_EQ((recall_iou >= 0.5).sum().item<int64_t>(), truth.boxes.size(0)) << "image " << b;
      // Inside the image's part of the canvas, scores descending.
      EXPECT_LE(p.select(1, 3).max().item<float>(), images[b].resized_height);
      EXPECT_TRUE((proposals[b].scores.slice(0, 1) <= proposals[b].scores.slice(0, 0, -1)).all().item<bool>());
    }
  }
}

// ---- RoI sampling and the Z map -----------------------------------------------

TEST(RoiSampling, LabelsPositivesFirstAndGroundTruthAdded) {
  torch::manual_seed(6);
  GroundTruth truth{boxes_of({0, 0, 20, 20, 40, 40, 60, 60}), torch::tensor({2, 0}, torch::kLong)};
  const torch::Tensor proposals = boxes_of({0, 0, 20, 22,      // IoU 0.91 with box 0 → class 2
                                            40, 40, 60, 70,    // IoU 0.67 with box 1 → class 0
                                            0, 0, 40, 40,      // IoU 0.25 → background
                                            70, 70, 90, 90});  // background
  FasterRcnnOptions o;
  o.rois_per_image = 16;
  const RoiSample s = sample_rois(proposals, truth, 3, o);
  // 4 positives (2 proposals + the 2 ground-truth boxes) and 2 negatives, all there is.
  EXPECT_EQ(s.positives, 4);
  ASSERT_EQ(s.boxes.size(0), 6);
  ASSERT_EQ(s.targets.size(0), 4);
  for (int64_t r = 0; r < 4; ++r) {
    const int64_t label = s.labels[r].item<int64_t>();
    EXPECT_TRUE(label == 0 || label == 2);
    // The target is the box of the label's class, and overlaps the RoI at >= 0.5.
    EXPECT_TRUE(torch::equal(s.targets[r], truth.boxes[label == 2 ? 0 : 1]));
    EXPECT_GE(aligned_iou(s.boxes.slice(0, r, r + 1), s.targets.slice(0, r, r + 1)).item<float>(), 0.5);
  }
  EXPECT_EQ(s.labels.slice(0, 4).eq(3).sum().item<int64_t>(), 2);
  // The cap: at most 25% of rois_per_image positives.
  o.rois_per_image = 8;
  const RoiSample capped = sample_rois(proposals, truth, 3, o);
  EXPECT_EQ(capped.positives, 2);
  EXPECT_EQ(capped.boxes.size(0), 4);  // only 2 negatives exist
  // No ground truth: every RoI is background.
  const RoiSample empty = sample_rois(proposals, {torch::zeros({0, 4}), torch::zeros({0}, torch::kLong)}, 3, o);
  EXPECT_EQ(empty.positives, 0);
  EXPECT_TRUE(empty.labels.eq(3).all().item<bool>());
}

TEST(MultiClsSlot, IouMapRowsArePositiveIousOrOnes) {
  const torch::Tensor iou = torch::tensor({0.8f, 0.3f, 0.0f, 0.55f});
  const torch::Tensor positive = torch::tensor({true, true, false, false});
  const torch::Tensor z = multi_cls_iou_map(iou, positive, 4);
  ASSERT_EQ(z.sizes().vec(), (std::vector<int64_t>{4, 4}));
  EXPECT_TRUE(torch::allclose(z[0], torch::full({4}, 0.8f)));
  EXPECT_TRUE(torch::allclose(z[1], torch::full({4}, 0.3f)));
  EXPECT_TRUE(torch::allclose(z[2], torch::ones({4})));
  EXPECT_TRUE(torch::allclose(z[3], torch::ones({4})));
}

// ---- the detector -------------------------------------------------------------

ModelConfig tiny_config() {
  ModelConfig c;
  c.width = 0.125;
  c.fpn_channels = 16;
  c.num_classes = 3;
  return c;
}

FasterRcnnOptions tiny_options() {
  FasterRcnnOptions o;
  o.head_channels = 32;
  o.rois_per_image = 64;
  return o;
}

std::vector<data::ImageTargets> tiny_targets() {
  return {image_with({{4, 6, 30, 28}, {30, 30, 60, 62}}, 64, 64),
          image_with({{10, 10, 20, 24}, {5, 30, 50, 46}, {40, 2, 62, 20}}, 64, 48)};
}

std::vector<std::string> names_of(const std::vector<LossTerm>& terms) {
  std::vector<std::string> names;
  for (const LossTerm& t : terms) names.push_back(t.name);
  return names;
}

TEST(FasterRcnnDetector, LossesAreFiniteAndTrainEveryPart) {
  torch::manual_seed(1);
  for (const LossSlots& slots :
       {LossSlots{}, LossSlots{kExamples + "cse_autoloss_a.loss:cse_autoloss_a_cls",
                               kExamples + "cse_autoloss_a.loss:cse_autoloss_a_reg"},
        LossSlots{"", kExamples + "box_l1.loss:l1"}}) {
    SCOPED_TRACE(slots.cls + " | " + slots.reg);
    std::unique_ptr<Detector> d = make_faster_rcnn_detector(tiny_config(), slots, tiny_options());
    EXPECT_EQ(d->cls_preset(), "multi_cls");
    // A real[4] loss in the reg slot (CE + L1) regresses deltas; a `reg` loss decoded boxes.
    EXPECT_EQ(d->describe().find("reg on deltas") != std::string::npos, slots.reg.find("box_l1") != std::string::npos);
    d->module().train();
    const torch::Tensor images = torch::randn({2, 3, 64, 64});
    const std::vector<LossTerm> terms = d->losses(images, tiny_targets());
    EXPECT_EQ(names_of(terms), (std::vector<std::string>{"rpn_cls", "rpn_reg", "cls", "reg"}));
    torch::Tensor total = torch::zeros({});
    for (const LossTerm& t : terms) {
      EXPECT_TRUE(std::isfinite(t.value.item<double>())) << t.name;
      EXPECT_NE(t.value.item<double>(), 0) << t.name;  // CSE-A's reg may be < 0 near IoU 1
      total = total + t.value;
    }
    total.backward();
    // Every part of the model receives a finite, non-zero gradient.
    for (const char* prefix : {"backbone.conv1", "fpn.output", "rpn.cls", "rpn.reg", "box_head.fc1",
                                     "box_head.cls", "box_head.reg"}) {
      double norm = 0;
      for (const auto& p : d->module().named_parameters())
        if (p.key().rfind(prefix, 0) == 0 && p.value().grad().defined()) {
          ASSERT_TRUE(p.value().grad().isfinite().all().item<bool>()) << p.key();
          norm += p.value().grad().norm().item<double>();
        }
      EXPECT_GT(norm, 0) << prefix;
    }
  }
}

TEST(FasterRcnnDetector, SlotsRejectLossesOfOtherPresets) {
  EXPECT_THROW(make_faster_rcnn_detector(tiny_config(), {kExamples + "fcos_focal.loss", ""}, tiny_options()),
               InputError);
  EXPECT_THROW(make_faster_rcnn_detector(tiny_config(), {"", kExamples + "cross_entropy.loss"}, tiny_options()),
               InputError);
  // A bare multi_cls formula fits the cls slot.
  EXPECT_NO_THROW(make_faster_rcnn_detector(tiny_config(), {"Neg(Dot(Y,Log(Softmax(X))))", ""}, tiny_options()));
}

TEST(FasterRcnnDetector, DetectionsAreShapedAndInsideTheImage) {
  torch::manual_seed(2);
  std::unique_ptr<Detector> d = make_detector("faster_rcnn", tiny_config(), {});
  EXPECT_NE(d->describe().find("Faster R-CNN"), std::string::npos);
  d->module().eval();
  const std::vector<data::ImageTargets> targets = tiny_targets();
  const std::vector<ImageDetections> found = d->detect(torch::randn({2, 3, 64, 64}), targets);
  ASSERT_EQ(found.size(), 2u);
  for (size_t b = 0; b < found.size(); ++b) {
    const ImageDetections& f = found[b];
    const int64_t n = f.boxes.size(0);
    EXPECT_GT(n, 0);  // an untrained head scores about 1/(K+1) = 0.25 > 0.05
    EXPECT_LE(n, 100);
    ASSERT_EQ(f.boxes.dim(), 2);
    EXPECT_EQ(f.boxes.size(1), 4);
    EXPECT_EQ(f.scores.size(0), n);
    EXPECT_EQ(f.labels.size(0), n);
    EXPECT_EQ(f.labels.scalar_type(), torch::kLong);
    if (n == 0) continue;
    EXPECT_GE(f.labels.min().item<int64_t>(), 0);
    EXPECT_LT(f.labels.max().item<int64_t>(), 3);
    EXPECT_TRUE((f.scores.slice(0, 1) <= f.scores.slice(0, 0, -1)).all().item<bool>());
    EXPECT_GE(f.boxes.min().item<float>(), 0);
    EXPECT_LE(f.boxes.select(1, 2).max().item<float>(), targets[b].resized_width);
    EXPECT_LE(f.boxes.select(1, 3).max().item<float>(), targets[b].resized_height);
  }
}

TEST(FasterRcnnDetector, IsListedForTheTrainer) {
  const std::vector<std::string>& names = detector_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "faster_rcnn"), names.end());
}

}  // namespace
}  // namespace lossforge::detectors
