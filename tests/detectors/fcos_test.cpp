// The parts of the FCOS trainer that can be checked by hand: box coding, point
// assignment (hand-made boxes, and random ones against a plain loop), NMS
// against brute force, the model's shapes and torchvision parameter names,
// the safetensors loader, and how loss specifications fill the slots.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "compiler/diagnostics.hpp"
#include "compiler/error.hpp"
#include "detectors/data/loader.hpp"
#include "detectors/train/boxes.hpp"
#include "detectors/train/fcos_loss.hpp"
#include "detectors/train/model.hpp"
#include "detectors/train/safetensors.hpp"
#include "detectors/train/targets.hpp"

namespace lossforge::detectors {
namespace {

namespace fs = std::filesystem;
const std::string kExamples = std::string(LOSSFORGE_SOURCE_DIR) + "/examples/losses/";

fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("lossforge_fcos_test_" + std::to_string(::getpid()) + "_" + name);
  fs::create_directories(dir);
  return dir;
}

torch::Tensor random_boxes(int64_t n, double extent, torch::Generator* = nullptr) {
  auto xy = torch::rand({n, 2}) * extent;
  auto wh = torch::rand({n, 2}) * extent / 2 + 1;
  return torch::cat({xy, xy + wh}, 1);
}

TEST(BoxCoding, DistancesRoundTrip) {
  torch::manual_seed(1);
  auto boxes = random_boxes(50, 100);
  auto points = torch::rand({50, 2}) * 100;
  auto d = encode_distances(points, boxes);
  EXPECT_TRUE(torch::allclose(decode_distances(points, d), boxes, 1e-5, 1e-4));
  // A point inside its box has four positive distances.
  auto centre = (boxes.slice(1, 0, 2) + boxes.slice(1, 2, 4)) / 2;
  EXPECT_TRUE((encode_distances(centre, boxes) > 0).all().item<bool>());
}

TEST(BoxCoding, IouOfKnownPairs) {
  auto a = torch::tensor({0.f, 0.f, 10.f, 10.f, 0.f, 0.f, 10.f, 10.f, 0.f, 0.f, 10.f, 10.f}).view({3, 4});
  auto b = torch::tensor({0.f, 0.f, 10.f, 10.f, 5.f, 0.f, 15.f, 10.f, 20.f, 20.f, 30.f, 30.f}).view({3, 4});
  auto iou = aligned_iou(a, b);
  EXPECT_NEAR(iou[0].item<float>(), 1.0, 1e-6);
  EXPECT_NEAR(iou[1].item<float>(), 50.0 / 150.0, 1e-6);
  EXPECT_NEAR(iou[2].item<float>(), 0.0, 1e-6);
  EXPECT_TRUE(torch::allclose(pairwise_iou(a, b).diagonal(), iou));
}

// One level of stride 8 over a 64×64 image: points at 4, 12, ..., 60.
Points one_level(std::array<double, 2> range = {-1, 1e8}) {
  return make_points({{8, 8}}, {8}, TargetOptions{.regress_ranges = {range}});
}

TEST(Assignment, CenterSamplingKeepsPointsNearTheCentre) {
  const Points points = one_level();
  EXPECT_EQ(points.xy.size(0), 64);
  EXPECT_FLOAT_EQ(points.xy[9][0].item<float>(), 12);  // row 1, column 1
  EXPECT_FLOAT_EQ(points.xy[9][1].item<float>(), 12);
  // Box centre (16, 16); the centre region, 1.5 strides = 12 px, is [4, 28]²,
  // open at its edges, so only x, y in {12, 20} learn it.
  auto boxes = torch::tensor({0.f, 0.f, 32.f, 32.f}).view({1, 4});
  const Assignment a = assign_points(points, boxes, torch::tensor({3}, torch::kLong), TargetOptions{});
  std::set<int64_t> positives;
  for (int64_t i = 0; i < 64; ++i)
    if (a.labels[i].item<int64_t>() >= 0) positives.insert(i);
  EXPECT_EQ(positives, (std::set<int64_t>{9, 10, 17, 18}));
  EXPECT_EQ(a.labels[9].item<int64_t>(), 3);
  EXPECT_TRUE(torch::allclose(a.distances[9], torch::tensor({12.f, 12.f, 20.f, 20.f})));
  EXPECT_TRUE(torch::allclose(a.distances[0], torch::zeros({4})));
  EXPECT_EQ(a.gt_index[18].item<int64_t>(), 0);
  EXPECT_EQ(a.gt_index[0].item<int64_t>(), -1);
}

TEST(Assignment, SmallestContainingBoxWins) {
  const Points points = one_level();
  auto boxes = torch::tensor({0.f, 0.f, 64.f, 64.f, 8.f, 8.f, 24.f, 24.f}).view({2, 4});
  const TargetOptions whole_box{.center_radius = 0};
  const Assignment a = assign_points(points, boxes, torch::tensor({1, 2}, torch::kLong), whole_box);
  EXPECT_EQ(a.labels[9].item<int64_t>(), 2);   // (12, 12): inside both; the small one
  EXPECT_EQ(a.labels[36].item<int64_t>(), 1);  // (36, 36): the big one only
  EXPECT_EQ(a.labels[0].item<int64_t>(), 1);   // (4, 4): the big one only
  EXPECT_EQ(a.gt_index[9].item<int64_t>(), 1);
}

TEST(Assignment, RegressionRangesPickTheLevel) {
  // Level 0 (stride 8) learns reaches up to 16 px, level 1 (stride 16) beyond.
  const TargetOptions options{.center_radius = 0, .regress_ranges = {{-1, 16}, {16, 1e8}}};
  const Points points = make_points({{8, 8}, {4, 4}}, {8, 16}, options);
  ASSERT_EQ(points.xy.size(0), 64 + 16);
  auto boxes = torch::tensor({0.f, 0.f, 64.f, 64.f, 0.f, 0.f, 16.f, 16.f}).view({2, 4});
  const Assignment a = assign_points(points, boxes, torch::tensor({0, 1}, torch::kLong), options);
  // Level 0: only the small box's points (4|12, 4|12) -- reach <= 12.
  for (int64_t i = 0; i < 64; ++i) {
    const bool small = (i == 0 || i == 1 || i == 8 || i == 9);
    EXPECT_EQ(a.labels[i].item<int64_t>(), small ? 1 : -1) << "point " << i;
  }
  // Level 1 (points at 8, 24, 40, 56): the big box everywhere; (8, 8) has
  // reach 56 for it and 8 for the small box, which level 1 does not take.
  for (int64_t i = 64; i < 80; ++i) EXPECT_EQ(a.labels[i].item<int64_t>(), 0) << "point " << i;
}

TEST(Assignment, NoBoxesMeansBackground) {
  const Points points = one_level();
  const Assignment a = assign_points(points, torch::zeros({0, 4}), torch::zeros({0}, torch::kLong), TargetOptions{});
  EXPECT_TRUE((a.labels == -1).all().item<bool>());
  EXPECT_EQ(a.distances.sizes(), (std::vector<int64_t>{64, 4}));
}

TEST(Assignment, MatchesAPlainLoopOnRandomBoxes) {
  torch::manual_seed(3);
  const TargetOptions options;  // FCOS's ranges, center sampling 1.5
  const std::vector<int> strides = {8, 16, 32};
  const Points points = make_points({{16, 16}, {8, 8}, {4, 4}}, strides, options);
  auto boxes = random_boxes(12, 110);
  auto labels = torch::randint(5, {12}, torch::kLong);
  const Assignment a = assign_points(points, boxes, labels, options);
  for (int64_t p = 0; p < points.xy.size(0); ++p) {
    const double x = points.xy[p][0].item<double>(), y = points.xy[p][1].item<double>();
    const double s = points.stride[p].item<double>();
    const double lo = points.range[p][0].item<double>(), hi = points.range[p][1].item<double>();
    int64_t best = -1;
    double best_area = std::numeric_limits<double>::infinity();
    for (int64_t g = 0; g < 12; ++g) {
      const double x1 = boxes[g][0].item<double>(), y1 = boxes[g][1].item<double>();
      const double x2 = boxes[g][2].item<double>(), y2 = boxes[g][3].item<double>();
      const double cx = (x1 + x2) / 2, cy = (y1 + y2) / 2, r = 1.5 * s;
      const bool centre = x > std::max(cx - r, x1) && x < std::min(cx + r, x2) && y > std::max(cy - r, y1) &&
                          y < std::min(cy + r, y2);
      const double reach = std::max({x - x1, y - y1, x2 - x, y2 - y});
      const double area = (x2 - x1) * (y2 - y1);
      if (centre && reach >= lo && reach <= hi && area < best_area) {
        best = g;
        best_area = area;
      }
    }
    ASSERT_EQ(a.gt_index[p].item<int64_t>(), best) << "point " << p;
    if (best >= 0) {
      EXPECT_EQ(a.labels[p].item<int64_t>(), labels[best].item<int64_t>());
    }
  }
  EXPECT_GT((a.labels >= 0).sum().item<int64_t>(), 0);
}

// Brute force: walk the boxes by descending score, keep one unless a kept box
// of the same label overlaps it by more than the threshold.
std::vector<int64_t> brute_force_nms(const torch::Tensor& boxes, const torch::Tensor& scores,
                                     const torch::Tensor& labels, double threshold) {
  std::vector<int64_t> order(boxes.size(0));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t i, int64_t j) { return scores[i].item<double>() > scores[j].item<double>(); });
  const torch::Tensor iou = pairwise_iou(boxes.to(torch::kDouble), boxes.to(torch::kDouble));
  std::vector<int64_t> kept;
  for (int64_t i : order) {
    bool keep = true;
    for (int64_t k : kept)
      if (labels[k].item<int64_t>() == labels[i].item<int64_t>() && iou[i][k].item<double>() > threshold) keep = false;
    if (keep) kept.push_back(i);
  }
  return kept;
}

TEST(Nms, MatchesBruteForce) {
  torch::manual_seed(5);
  for (int trial = 0; trial < 20; ++trial) {
    const int64_t n = 5 + trial * 7;
    // Clustered boxes so that suppression happens.
    auto centres = torch::rand({4, 2}) * 50;
    auto pick = torch::randint(4, {n}, torch::kLong);
    auto c = centres.index_select(0, pick) + torch::randn({n, 2}) * 3;
    auto wh = torch::rand({n, 2}) * 10 + 8;
    auto boxes = torch::cat({c - wh / 2, c + wh / 2}, 1);
    auto scores = torch::rand({n});
    const double threshold = 0.3 + 0.02 * trial;
    auto same = torch::zeros({n}, torch::kLong);
    auto single = nms(boxes, scores, threshold);
    EXPECT_EQ(std::vector<int64_t>(single.data_ptr<int64_t>(), single.data_ptr<int64_t>() + single.numel()),
              brute_force_nms(boxes, scores, same, threshold));
    auto labels = torch::randint(3, {n}, torch::kLong);
    auto batched = batched_nms(boxes, scores, labels, threshold);
    EXPECT_EQ(std::vector<int64_t>(batched.data_ptr<int64_t>(), batched.data_ptr<int64_t>() + batched.numel()),
              brute_force_nms(boxes, scores, labels, threshold));
  }
  EXPECT_EQ(nms(torch::zeros({0, 4}), torch::zeros({0}), 0.5).numel(), 0);
}

int64_t count_parameters(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

TEST(Model, TorchvisionNamesAndSizes) {
  ResNet r18(18, 1.0);
  // torchvision's resnet18 has 11,689,512 parameters, 513,000 of them in fc.
  EXPECT_EQ(count_parameters(*r18), 11689512 - 513000);
  std::set<std::string> names;
  for (const auto& item : r18->named_parameters()) names.insert(item.key());
  for (const auto& item : r18->named_buffers()) names.insert(item.key());
  for (const char* key : {"conv1.weight", "bn1.weight", "bn1.running_mean", "bn1.num_batches_tracked",
                          "layer1.0.conv1.weight", "layer1.1.bn2.bias", "layer2.0.downsample.0.weight",
                          "layer2.0.downsample.1.running_var", "layer4.1.conv2.weight"})
    EXPECT_TRUE(names.count(key)) << key;
  EXPECT_FALSE(names.count("layer1.0.downsample.0.weight"));  // BasicBlock: same width, stride 1
  // 20 BatchNorms: 3 entries each besides weight and bias.
  EXPECT_EQ(names.size(), r18->named_parameters().size() + 20 * 3);
  ResNet r50(50, 0.25);
  std::set<std::string> names50;
  for (const auto& item : r50->named_parameters()) names50.insert(item.key());
  EXPECT_TRUE(names50.count("layer1.0.conv3.weight"));
  EXPECT_TRUE(names50.count("layer1.0.downsample.0.weight"));  // Bottleneck widens ×4
  EXPECT_EQ(r50->out_channels(), (std::vector<int>{128, 256, 512}));
}

TEST(Model, HeadShapesPerLevel) {
  torch::manual_seed(0);
  ModelConfig config{.depth = 18, .width = 0.125, .fpn_channels = 16, .tower_convs = 1, .num_classes = 3};
  Fcos model(config);
  const FcosOutput out = model->forward(torch::randn({2, 3, 64, 64}));
  // Levels of 8×8, 4×4, 2×2, 1×1, 1×1 points.
  ASSERT_EQ(out.level_sizes.size(), 5u);
  EXPECT_EQ(out.level_sizes[0], (std::array<int64_t, 2>{8, 8}));
  EXPECT_EQ(out.cls.sizes(), (std::vector<int64_t>{2, 86, 3}));
  EXPECT_EQ(out.reg.sizes(), (std::vector<int64_t>{2, 86, 4}));
  EXPECT_EQ(out.centerness.sizes(), (std::vector<int64_t>{2, 86}));
  EXPECT_TRUE((out.reg >= 0).all().item<bool>());
  // The classifier starts at the prior probability.
  EXPECT_NEAR(torch::sigmoid(out.cls).mean().item<float>(), 0.01, 0.005);
}

TEST(Safetensors, RoundTripAndLoadIntoTheBackbone) {
  const fs::path dir = temp_dir("safetensors");
  torch::manual_seed(1);
  ResNet source(18, 0.25), target(18, 0.25);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& item : source->named_parameters()) tensors.emplace_back(item.key(), item.value());
  for (const auto& item : source->named_buffers())
    if (!item.key().ends_with("num_batches_tracked")) tensors.emplace_back(item.key(), item.value() + 0.5);
  tensors.back().second = tensors.back().second.to(torch::kDouble);  // converted on load
  tensors.emplace_back("fc.weight", torch::randn({10, 128}));       // torchvision's classifier: ignored
  const fs::path file = dir / "resnet18.safetensors";
  write_safetensors(file, tensors);

  const auto read = read_safetensors(file);
  ASSERT_EQ(read.size(), tensors.size());
  EXPECT_EQ(read.at("fc.weight").sizes(), (std::vector<int64_t>{10, 128}));
  EXPECT_EQ(read.at(tensors[tensors.size() - 2].first).scalar_type(), torch::kDouble);

  const WeightLoadReport report = load_weights(*target, file);
  EXPECT_EQ(report.loaded, tensors.size() - 1);
  EXPECT_EQ(report.ignored, std::vector<std::string>{"fc.weight"});
  auto src = source->named_parameters();
  for (const auto& item : target->named_parameters())
    EXPECT_TRUE(torch::equal(item.value(), src[item.key()])) << item.key();
  EXPECT_TRUE(torch::allclose(target->named_buffers()["bn1.running_mean"], source->named_buffers()["bn1.running_mean"] + 0.5));
  fs::remove_all(dir);
}

std::string input_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

TEST(Safetensors, BadFilesAreNamed) {
  const fs::path dir = temp_dir("safetensors_bad");
  ResNet model(18, 0.25);
  const fs::path wrong = dir / "wrong.safetensors";
  write_safetensors(wrong, {{"conv1.weight", torch::zeros({64, 3, 7, 7})}});
  EXPECT_NE(input_error([&] { load_weights(*model, wrong); }).find("'conv1.weight' has shape [64, 3, 7, 7]"),
            std::string::npos);
  const fs::path partial = dir / "partial.safetensors";
  write_safetensors(partial, {{"conv1.weight", torch::zeros({16, 3, 7, 7})}});
  EXPECT_NE(input_error([&] { load_weights(*model, partial); }).find("has no tensor 'bn1.weight'"), std::string::npos);
  const fs::path truncated = dir / "truncated.safetensors";
  {
    std::ifstream in(wrong, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() - 10);
  }
  EXPECT_NE(input_error([&] { read_safetensors(truncated); }).find("data_offsets outside"), std::string::npos);
  std::ofstream(dir / "junk.safetensors", std::ios::binary) << std::string("\x05\0\0\0\0\0\0\0{oops", 13);
  EXPECT_NE(input_error([&] { read_safetensors(dir / "junk.safetensors"); }).find("bad safetensors header"),
            std::string::npos);
  EXPECT_NE(input_error([&] { read_safetensors(dir / "missing.safetensors"); }).find("cannot open"), std::string::npos);
  std::ofstream(dir / "short.safetensors", std::ios::binary) << "abc";
  EXPECT_NE(input_error([&] { read_safetensors(dir / "short.safetensors"); }).find("not a safetensors file"),
            std::string::npos);
  fs::remove_all(dir);
}

TEST(LossSlots, SpecificationsFillTheSlots) {
  EXPECT_EQ(load_slot_loss(kExamples + "fcos_focal.loss", "binary_cls").loss().name, "fcos_focal");
  EXPECT_EQ(load_slot_loss(kExamples + "cse_autoloss_b.loss:cse_autoloss_b_reg", "reg").loss().name,
            "cse_autoloss_b_reg");
  EXPECT_EQ(load_slot_loss("Neg(Log(Sig(X)))", "binary_cls").loss().inputs.size(), 4u);
  EXPECT_EQ(load_slot_loss("1 - I/U", "reg").loss().inputs.size(), 2u);
  EXPECT_NE(input_error([&] { load_slot_loss(kExamples + "focal.loss", "reg"); }).find("does not fit the reg slot"),
            std::string::npos);
  EXPECT_NE(input_error([&] { load_slot_loss(kExamples + "cse_autoloss_b.loss", "reg"); }).find("defines several"),
            std::string::npos);
  EXPECT_NE(input_error([&] { load_slot_loss(kExamples + "giou.loss:nope", "reg"); }).find("no loss named 'nope'"),
            std::string::npos);
  EXPECT_THROW(load_slot_loss("Neg(Log(Sig(W)))", "binary_cls"), CompileError);
}

TEST(Criterion, LossTermsOfAHandMadeBatch) {
  torch::manual_seed(2);
  ModelConfig config{.depth = 18, .width = 0.125, .fpn_channels = 16, .tower_convs = 1, .num_classes = 2};
  Fcos model(config);
  const FcosOutput out = model->forward(torch::randn({2, 3, 64, 64}));
  const FcosCriterion criterion(load_slot_loss(kExamples + "fcos_focal.loss", "binary_cls"),
                                load_slot_loss(kExamples + "giou.loss", "reg"));
  const Points points = make_points(out.level_sizes, config.strides, criterion.target_options());
  std::vector<data::ImageTargets> images(2);
  images[0].boxes = {{8, 8, 40, 40}, {30, 2, 62, 20}};
  images[0].labels = {0, 1};
  images[0].crowd = {false, false};
  // The second image has only a crowd box: nothing to learn there.
  images[1].boxes = {{0, 0, 64, 64}};
  images[1].labels = {1};
  images[1].crowd = {true};
  LossTerms terms = criterion(out, points, images);
  EXPECT_GT(terms.positives, 0);
  for (const torch::Tensor& t : {terms.cls, terms.reg, terms.centerness}) {
    EXPECT_EQ(t.dim(), 0);
    EXPECT_TRUE(std::isfinite(t.item<double>()));
    EXPECT_GT(t.item<double>(), 0);
  }
  // At the prior (p = 0.01) nearly all of the focal loss comes from the
  // positives: each contributes about 0.25·0.99²·ln(100) ≈ 1.13 per positive.
  EXPECT_NEAR(terms.cls.item<double>(), 1.13, 0.3);
  terms.total().backward();
  for (const auto& p : model->parameters()) ASSERT_TRUE(p.grad().defined());
}

}  // namespace
}  // namespace lossforge::detectors
