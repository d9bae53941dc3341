// FCOS (Tian et al., ICCV 2019) in LibTorch, sized down for CPU training:
// a ResNet backbone (18 or 50, channels scaled by a width multiplier), an FPN
// over C3..C5 with P6 and P7 from P5's output, and the FCOS head: classification
// and regression towers of 3×3 convs + GroupNorm + ReLU shared by every level,
// a learnt scale per level on the regression output, centerness on the
// regression tower (mmdetection's `centerness_on_reg`), and box distances
// normalised by the level's stride (`norm_on_bbox`).
//
// Faster R-CNN (faster_rcnn.hpp) shares the backbone, from C2, and builds its
// pyramid with FpnImpl below.
//
// The backbone's parameter names are torchvision's (conv1.weight,
// layer1.0.bn1.running_mean, layer2.0.downsample.0.weight, ...) so that
// ImageNet weights exported from torchvision load with load_weights()
// (safetensors.hpp) when the width multiplier is 1.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace lossforge::detectors {

// The sizes of a detector's model; every detector uses the backbone and FPN
// fields, the one-stage heads (FCOS, ATSS) the tower and prior fields too.
struct ModelConfig {
  int depth = 18;         // ResNet depth: 18 or 50
  double width = 0.25;    // channel multiplier of the backbone (1: torchvision's ResNet)
  int fpn_channels = 64;  // channels of the FPN levels and the head
  int tower_convs = 2;    // 3×3 convs per head tower (4 in the paper)
  int num_classes = 5;
  std::vector<int> strides = {8, 16, 32, 64, 128};  // P3..P7
  double prior = 0.01;    // initial foreground probability of the classifier
  // ATSS: the side of each point's square anchor, in strides. The paper's 8
  // is for 800-px COCO images; on the 96-px synthetic data it puts every
  // positive on P3 and loses 0.06 AP, where 4 is best (issue 7).
  double atss_anchor_scale = 4;

  // Throws InputError naming the bad field.
  void validate() const;
  std::string backbone_text() const;  // "ResNet-18 x0.25, FPN 64"
};

// What the head predicts for a batch, each level flattened to points
// (row-major over the level's H×W) and the levels concatenated:
struct FcosOutput {
  at::Tensor cls;         // [B, P, K] logits
  at::Tensor reg;         // [B, P, 4] distances (l, t, r, b) / stride, >= 0
  at::Tensor centerness;  // [B, P] logits
  std::vector<std::array<int64_t, 2>> level_sizes;  // (H, W) per level
};

class ResNetImpl : public torch::nn::Module {
 public:
  ResNetImpl(int depth, double width);
  // C3, C4, C5 (strides 8, 16, 32).
  std::vector<at::Tensor> forward(const at::Tensor& images);
  std::vector<int> out_channels() const { return out_channels_; }
  // C2, C3, C4, C5 (strides 4, 8, 16, 32), for FPNs that start at P2.
  std::vector<at::Tensor> stages(const at::Tensor& images);
  std::vector<int> stage_channels() const;

 private:
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  std::vector<int> out_channels_;
  int c2_channels_ = 0;
};
TORCH_MODULE(ResNet);

// A feature pyramid (Lin et al., CVPR 2017) over backbone stages: a 1×1
// lateral conv per input, the top-down sum with nearest upsampling, a 3×3
// output conv per level, and `extra_levels` more levels above the top one by
// max-pooling with stride 2 (Faster R-CNN's P6). Parameters: lateral.N.*,
// output.N.*. FcosImpl keeps its own copy of this wiring (P6/P7 by strided
// convs) so that its parameter names stay as they are.
class FpnImpl : public torch::nn::Module {
 public:
  FpnImpl(const std::vector<int>& in_channels, int channels, int extra_levels = 0);
  // One tensor per input stage, finest first; returns the levels finest first.
  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& stages);

 private:
  torch::nn::ModuleList lateral_, output_;
  int extra_levels_;
};
TORCH_MODULE(Fpn);

class FcosImpl : public torch::nn::Module {
 public:
  explicit FcosImpl(const ModelConfig& config);
  FcosOutput forward(const at::Tensor& images);  // images [B, 3, H, W], H and W multiples of the top stride
  const ModelConfig& config() const { return config_; }
  ResNet backbone() const { return backbone_; }

 private:
  ModelConfig config_;
  ResNet backbone_{nullptr};
  torch::nn::ModuleList lateral_, output_;
  torch::nn::Conv2d p6_{nullptr}, p7_{nullptr};
  torch::nn::Sequential cls_tower_{nullptr}, reg_tower_{nullptr};
  torch::nn::Conv2d cls_out_{nullptr}, reg_out_{nullptr}, ctr_out_{nullptr};
  at::Tensor scales_;  // one per level
};
TORCH_MODULE(Fcos);

}  // namespace lossforge::detectors
