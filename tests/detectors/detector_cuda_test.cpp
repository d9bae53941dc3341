// Every detector computes the same losses and gradients on a CUDA device as on
// the CPU: its targets moved to the images' device, its loss slots run by the
// LibTorch op on the NVRTC kernels (loss_op.hpp), the rest by LibTorch. Skips
// without a CUDA device; bench/gpu/run.sh runs it on the GPU machine.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "detectors/data/loader.hpp"
#include "detectors/train/detector.hpp"

namespace lossforge::detectors {
namespace {

std::vector<data::ImageTargets> two_images() {
  std::vector<data::ImageTargets> targets(2);
  for (data::ImageTargets& t : targets) t.resized_width = t.resized_height = t.original_width = t.original_height = 64;
  targets[0].boxes = {{6, 8, 40, 44}, {30, 2, 62, 22}, {40, 36, 60, 62}};
  targets[0].labels = {0, 1, 1};
  targets[0].crowd = {false, false, false};
  targets[1].boxes = {{10, 12, 30, 60}, {0, 0, 64, 64}};
  targets[1].labels = {1, 0};
  targets[1].crowd = {false, true};
  return targets;
}

struct Step {
  std::map<std::string, double> terms;
  std::map<std::string, at::Tensor> gradients;  // on the CPU
};

// One training step's loss terms and parameter gradients; the RoI sampling's
// randperm draws from the CPU generator, so the seed fixes it on any device.
Step step_on(Detector& detector, const at::Tensor& images, const std::vector<data::ImageTargets>& targets) {
  detector.module().zero_grad();
  torch::manual_seed(11);
  const std::vector<LossTerm> terms = detector.losses(images, targets);
  at::Tensor total = terms.front().value;
  for (size_t t = 1; t < terms.size(); ++t) total = total + terms[t].value;
  total.backward();
  Step step;
  for (const LossTerm& t : terms) {
    EXPECT_EQ(t.value.device(), images.device()) << t.name;
    step.terms[t.name] = t.value.item<double>();
  }
  for (const auto& p : detector.module().named_parameters())
    if (p.value().grad().defined()) step.gradients[p.key()] = p.value().grad().to(at::kCPU);
  return step;
}

class DetectorsOnCuda : public ::testing::TestWithParam<std::string> {};

TEST_P(DetectorsOnCuda, LossesAndGradientsMatchTheCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device for LibTorch";
  // Full float32 convolutions and matmuls on the GPU, as on the CPU.
  at::globalContext().setAllowTF32CuDNN(false);
  at::globalContext().setAllowTF32CuBLAS(false);
  const std::string& name = GetParam();
  torch::manual_seed(7);
  const ModelConfig config{.depth = 18, .width = 0.125, .fpn_channels = 16, .tower_convs = 1, .num_classes = 2};
  const std::unique_ptr<Detector> detector = make_detector(name, config, {});
  detector->module().train();
  const at::Tensor images = torch::randn({2, 3, 64, 64});
  const std::vector<data::ImageTargets> targets = two_images();

  const Step cpu = step_on(*detector, images, targets);
  detector->module().to(at::kCUDA);
  const Step cuda = step_on(*detector, images.to(at::kCUDA), targets);

  // Faster R-CNN's second stage samples RoIs among proposals ranked by the
  // RPN's scores, which a last-bit difference may reorder: its terms and
  // gradients are only required finite; the RPN's terms match.
  const bool two_stage = name == "faster_rcnn";
  ASSERT_EQ(cpu.terms.size(), cuda.terms.size());
  for (const auto& [term, value] : cpu.terms) {
    const double on_gpu = cuda.terms.at(term);
    EXPECT_TRUE(std::isfinite(on_gpu)) << term;
    if (two_stage && !term.starts_with("rpn_")) continue;
    EXPECT_NEAR(on_gpu, value, 1e-4 + 1e-3 * std::abs(value)) << name << " " << term;
  }
  ASSERT_EQ(cpu.gradients.size(), cuda.gradients.size());
  for (const auto& [parameter, gradient] : cpu.gradients) {
    const at::Tensor& on_gpu = cuda.gradients.at(parameter);
    ASSERT_TRUE(on_gpu.isfinite().all().item<bool>()) << parameter;
    if (two_stage) continue;
    const double difference = (on_gpu - gradient).norm().item<double>();
    EXPECT_LE(difference, 1e-6 + 2e-3 * gradient.norm().item<double>()) << name << " " << parameter;
  }
}

INSTANTIATE_TEST_SUITE_P(Every, DetectorsOnCuda, ::testing::ValuesIn(detector_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace lossforge::detectors
