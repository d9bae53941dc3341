// RoIAlign (detectors/train/roi_align.hpp) against torchvision's roi_align
// (aligned=True) as an independent reference: tests/reference/roi_align_reference.py
// runs under Debian's /usr/bin/python3 (python3-torchvision, scripts/setup.sh)
// on inputs written here; values and the gradient with respect to the
// features must agree, in float32 and float64. Also FPN's level mapping and
// the pyramid version against single-level calls.
#include <gtest/gtest.h>

#include <torch/cuda.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "detectors/train/roi_align.hpp"

namespace lossforge::detectors {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string reference_python() {
  const char* env = std::getenv("LOSSFORGE_REFERENCE_PYTHON");
  return env && *env ? env : "/usr/bin/python3";
}

std::vector<double> flat(const torch::Tensor& t) {
  const torch::Tensor d = t.detach().to(torch::kDouble).contiguous().view({-1});
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

struct Reference {
  torch::Tensor output, grad_features;
};

// torchvision's result for the case, in the features' dtype.
Reference torchvision_roi_align(const torch::Tensor& features, const torch::Tensor& rois, double scale,
                                const RoiAlignOptions& o, const torch::Tensor& grad_output) {
  const bool f64 = features.scalar_type() == torch::kDouble;
  json in = {{"dtype", f64 ? "f64" : "f32"},
             {"shape", features.sizes().vec()},
             {"features", flat(features)},
             {"rois", flat(rois)},
             {"spatial_scale", scale},
             {"output_size", o.output_size},
             {"sampling_ratio", o.sampling_ratio},
             {"grad_output", flat(grad_output)}};
  const fs::path dir = fs::temp_directory_path() / ("lossforge_roi_align_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path in_path = dir / "in.json", out_path = dir / "out.json";
  std::ofstream(in_path) << in.dump();  // doubles print exactly (round-trip precision)
  const std::string command = reference_python() + " " + LOSSFORGE_SOURCE_DIR +
                              "/tests/reference/roi_align_reference.py " + in_path.string() + " " + out_path.string();
  const int status = std::system(command.c_str());
  EXPECT_EQ(status, 0) << command << " failed (torchvision missing? scripts/setup.sh installs python3-torchvision)";
  std::ifstream out_file(out_path);
  const json out = json::parse(out_file, nullptr, /*allow_exceptions=*/false);
  fs::remove_all(dir);
  if (status != 0 || out.is_discarded()) return {};
  const auto dtype = features.scalar_type();
  Reference r;
  r.output = torch::tensor(out["output"].get<std::vector<double>>(), torch::kDouble).to(dtype);
  r.grad_features = torch::tensor(out["grad_features"].get<std::vector<double>>(), torch::kDouble).to(dtype);
  return r;
}

// Boxes in input pixels for a map of 12×10 cells at stride 4 (48×40 px):
// inside, partly outside on every side, wholly outside, tiny, a whole-map box,
// and one on the second image.
torch::Tensor test_rois(torch::ScalarType dtype) {
  return torch::tensor({0., 4.3, 5.1, 20.7, 17.9,      // inside
                        0., -6.0, -3.5, 10.2, 12.4,    // over the top-left corner
                        0., 30.5, 20.0, 55.0, 47.5,    // over the bottom-right corner
                        1., -20.0, 10.0, -5.0, 20.0,   // wholly outside on the left
                        1., 11.0, 11.0, 11.6, 12.1,    // smaller than a cell
                        1., 0.0, 0.0, 48.0, 40.0,      // the whole map
                        1., 2.5, 33.0, 47.0, 41.9,     // along the bottom edge
                        0., 40.0, -8.0, 52.0, 6.0},    // over the top-right corner
                       torch::kDouble)
      .view({-1, 5})
      .to(dtype);
}

void expect_close(const torch::Tensor& mine, const torch::Tensor& reference, double rtol, double atol,
                  const std::string& what) {
  ASSERT_EQ(mine.numel(), reference.numel()) << what;
  const torch::Tensor a = mine.detach().to(torch::kDouble).reshape({-1}), b = reference.to(torch::kDouble).reshape({-1});
  const double scale = b.abs().max().item<double>();
  const torch::Tensor error = (a - b).abs() - (rtol * b.abs() + atol * scale);
  EXPECT_LE(error.max().item<double>(), 0) << what << ": largest difference " << (a - b).abs().max().item<double>()
                                           << " (values up to " << scale << ")";
}

struct Case {
  torch::ScalarType dtype;
  int output_size, sampling_ratio;
};

class AgainstTorchvision : public ::testing::TestWithParam<Case> {};

TEST_P(AgainstTorchvision, ValuesAndFeatureGradients) {
  const Case c = GetParam();
  torch::manual_seed(7);
  const torch::Tensor features = torch::randn({2, 3, 10, 12}, torch::TensorOptions(c.dtype)).requires_grad_(true);
  const torch::Tensor rois = test_rois(c.dtype);
  const RoiAlignOptions o{c.output_size, c.sampling_ratio};
  const double scale = 0.25;
  const torch::Tensor out = roi_align(features, rois, scale, o);
  ASSERT_EQ(out.sizes().vec(), (std::vector<int64_t>{rois.size(0), 3, c.output_size, c.output_size}));
  const torch::Tensor grad_output = torch::randn(out.sizes(), torch::TensorOptions(c.dtype));
  out.backward(grad_output);

  const Reference ref = torchvision_roi_align(features.detach(), rois, scale, o, grad_output);
  ASSERT_TRUE(ref.output.defined());
  const bool f64 = c.dtype == torch::kDouble;
  expect_close(out, ref.output, f64 ? 1e-10 : 1e-5, f64 ? 1e-12 : 1e-6, "output");
  expect_close(features.grad(), ref.grad_features, f64 ? 1e-10 : 1e-5, f64 ? 1e-12 : 1e-6, "grad of the features");
  // A box wholly outside the map pools zeros: the comparison is not vacuous there.
  EXPECT_EQ(out[3].abs().max().item<double>(), 0);
  EXPECT_GT(out[1].abs().max().item<double>(), 0);
}

INSTANTIATE_TEST_SUITE_P(RoiAlign, AgainstTorchvision,
                         ::testing::Values(Case{torch::kFloat, 7, 2}, Case{torch::kDouble, 7, 2},
                                           Case{torch::kDouble, 3, 1}, Case{torch::kFloat, 4, 3}),
                         [](const auto& info) {
                           const Case& c = info.param;
                           return std::string(c.dtype == torch::kDouble ? "f64" : "f32") + "_out" +
                                  std::to_string(c.output_size) + "_ratio" + std::to_string(c.sampling_ratio);
                         });

TEST(RoiAlign, RejectsBadOptions) {
  const torch::Tensor f = torch::zeros({1, 1, 4, 4});
  const torch::Tensor rois = torch::tensor({0.f, 0.f, 0.f, 2.f, 2.f}).view({1, 5});
  EXPECT_ANY_THROW(roi_align(f, rois, 1.0, {7, 0}));
  EXPECT_ANY_THROW(roi_align(f, rois.view({5}), 1.0));
  EXPECT_EQ(roi_align(f, torch::zeros({0, 5}), 1.0).size(0), 0);
}

TEST(RoiLevels, FpnRuleWithCanonicalSize) {
  // canonical 56 at level 4: [56, 112) → 4, [28, 56) → 3, below 28 → 2, clamped to 2..5.
  const torch::Tensor boxes = torch::tensor({0.f, 0.f, 56.f, 56.f,   0.f, 0.f, 55.f, 55.f, 0.f, 0.f, 28.f, 28.f,
                                             0.f, 0.f, 8.f,  8.f,    0.f, 0.f, 112.f, 112.f, 0.f, 0.f, 500.f, 500.f,
                                             10.f, 10.f, 10.f, 10.f, 0.f, 0.f, 112.f, 28.f})
                              .view({-1, 4});
  const torch::Tensor levels = map_roi_levels(boxes, 2, 5, 56, 4);
  // The last box: sqrt(112·28) = 56 exactly; a zero-area box goes to the finest level.
  const std::vector<int64_t> want = {4, 3, 3, 2, 5, 5, 2, 4};
  const std::vector<int64_t> got(levels.data_ptr<int64_t>(), levels.data_ptr<int64_t>() + levels.numel());
  EXPECT_EQ(got, want);
}

TEST(RoiLevels, PyramidPoolsEachRoiFromItsLevel) {
  torch::manual_seed(3);
  const std::vector<torch::Tensor> levels = {torch::randn({2, 4, 24, 24}), torch::randn({2, 4, 12, 12}),
                                             torch::randn({2, 4, 6, 6})};
  const std::vector<int> strides = {4, 8, 16}, ids = {2, 3, 4};
  const torch::Tensor rois = torch::tensor({0.f, 10.f, 10.f, 20.f, 20.f,    // 10 px → P2
                                            1.f, 0.f, 0.f, 40.f, 40.f,      // 40 px → P3
                                            0.f, 5.f, 5.f, 90.f, 90.f,      // 85 px → P4
                                            1.f, 30.f, 40.f, 36.f, 44.f})   // → P2
                                 .view({-1, 5});
  const RoiAlignOptions o{5, 2};
  const torch::Tensor out = multilevel_roi_align(levels, strides, ids, rois, 56, 4, o);
  const int level_of[] = {0, 1, 2, 0};
  for (int64_t r = 0; r < rois.size(0); ++r) {
    const int l = level_of[r];
    const torch::Tensor single = roi_align(levels[l], rois.slice(0, r, r + 1), 1.0 / strides[l], o);
    EXPECT_TRUE(torch::allclose(out.slice(0, r, r + 1), single)) << "RoI " << r;
  }
}

TEST(RoiAlign, CudaAgreesWithCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device for LibTorch";
  torch::manual_seed(5);
  const torch::Tensor features = torch::randn({2, 3, 10, 12}, torch::kDouble);
  const torch::Tensor rois = test_rois(torch::kDouble);
  const torch::Tensor cpu_in = features.clone().requires_grad_(true);
  const torch::Tensor gpu_in = features.to(torch::kCUDA).requires_grad_(true);
  const torch::Tensor cpu = roi_align(cpu_in, rois, 0.25);
  const torch::Tensor gpu = roi_align(gpu_in, rois.to(torch::kCUDA), 0.25);
  const torch::Tensor g = torch::randn(cpu.sizes(), torch::kDouble);
  cpu.backward(g);
  gpu.backward(g.to(torch::kCUDA));
  EXPECT_TRUE(torch::allclose(gpu.cpu(), cpu, 1e-10, 1e-12));
  EXPECT_TRUE(torch::allclose(gpu_in.grad().cpu(), cpu_in.grad(), 1e-10, 1e-12));
}

}  // namespace
}  // namespace lossforge::detectors
