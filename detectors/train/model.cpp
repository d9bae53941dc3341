#include "detectors/train/model.hpp"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/modules/pooling.h>

#include <cmath>
#include <cstdint>
#include <cstdio>

#include "compiler/error.hpp"

namespace lossforge::detectors {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

nn::Conv2d conv(int in, int out, int kernel, int stride = 1, bool bias = false) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(bias));
}

// torchvision's BasicBlock (ResNet-18/34) and Bottleneck (ResNet-50+, stride on
// the 3×3 conv), with its parameter names.
class BlockImpl : public nn::Module {
 public:
  BlockImpl(int in, int planes, int stride, bool bottleneck) : bottleneck_(bottleneck) {
    const int out = planes * (bottleneck ? 4 : 1);
    if (bottleneck) {
      conv1_ = register_module("conv1", conv(in, planes, 1));
      bn1_ = register_module("bn1", nn::BatchNorm2d(planes));
      conv2_ = register_module("conv2", conv(planes, planes, 3, stride));
      bn2_ = register_module("bn2", nn::BatchNorm2d(planes));
      conv3_ = register_module("conv3", conv(planes, out, 1));
      bn3_ = register_module("bn3", nn::BatchNorm2d(out));
    } else {
      conv1_ = register_module("conv1", conv(in, planes, 3, stride));
      bn1_ = register_module("bn1", nn::BatchNorm2d(planes));
      conv2_ = register_module("conv2", conv(planes, planes, 3));
      bn2_ = register_module("bn2", nn::BatchNorm2d(planes));
    }
    if (stride != 1 || in != out) downsample_ = register_module("downsample", nn::Sequential(conv(in, out, 1, stride), nn::BatchNorm2d(out)));
  }

  at::Tensor forward(const at::Tensor& x) {
    at::Tensor y = torch::relu(bn1_(conv1_(x)));
    y = bn2_(conv2_(y));
    if (bottleneck_) y = bn3_(conv3_(torch::relu(y)));
    return torch::relu(y + (downsample_ ? downsample_->forward(x) : x));
  }

 private:
  bool bottleneck_;
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(Block);

void init_conv(nn::Conv2d& c, double std) {
  nn::init::normal_(c->weight, 0, std);
  if (c->bias.defined()) nn::init::constant_(c->bias, 0);
}

}  // namespace

void ModelConfig::validate() const {
  if (depth != 18 && depth != 50) throw InputError("backbone depth " + std::to_string(depth) + ": use 18 or 50");
  if (!(width >= 0.0625 && width <= 4)) throw InputError("backbone width " + std::to_string(width) + ": use 0.0625..4");
  if (fpn_channels < 8 || fpn_channels % 8) throw InputError("FPN channels must be a multiple of 8, >= 8");
  if (tower_convs < 0 || tower_convs > 8) throw InputError("tower convs must be 0..8");
  if (num_classes < 1) throw InputError("the dataset has no categories");
  if (strides.empty() || strides.size() > 5) throw InputError("FCOS uses 1..5 levels (P3..P7)");
  if (!(atss_anchor_scale > 0 && atss_anchor_scale <= 64)) throw InputError("ATSS anchor scale must be in (0, 64]");
}

std::string ModelConfig::backbone_text() const {
  char width_text[32];
  std::snprintf(width_text, sizeof width_text, "%g", width);
  return "ResNet-" + std::to_string(depth) + " x" + width_text + ", FPN " + std::to_string(fpn_channels);
}

ResNetImpl::ResNetImpl(int depth, double width) {
  const bool bottleneck = depth == 50;
  const std::vector<int> blocks = bottleneck ? std::vector<int>{3, 4, 6, 3} : std::vector<int>{2, 2, 2, 2};
  const int base = std::max(4, static_cast<int>(std::lround(64 * width)));
  conv1 = register_module("conv1", conv(3, base, 7, 2));
  bn1 = register_module("bn1", nn::BatchNorm2d(base));
  int in = base;
  nn::Sequential* layers[] = {&layer1, &layer2, &layer3, &layer4};
  for (int stage = 0; stage < 4; ++stage) {
    const int planes = base << stage;
    nn::Sequential layer;
    for (int b = 0; b < blocks[stage]; ++b) {
      layer->push_back(Block(in, planes, b == 0 && stage > 0 ? 2 : 1, bottleneck));
      in = planes * (bottleneck ? 4 : 1);
    }
    *layers[stage] = register_module("layer" + std::to_string(stage + 1), layer);
    if (stage >= 1) out_channels_.push_back(in);
    if (stage == 0) c2_channels_ = in;
  }
  for (auto& m : modules(false)) {
    if (auto* c = m->as<nn::Conv2d>()) nn::init::kaiming_normal_(c->weight, 0, torch::kFanOut, torch::kReLU);
  }
}

std::vector<at::Tensor> ResNetImpl::forward(const at::Tensor& images) {
  std::vector<at::Tensor> c = stages(images);
  return {c[1], c[2], c[3]};
}

std::vector<at::Tensor> ResNetImpl::stages(const at::Tensor& images) {
  at::Tensor x = torch::relu(bn1(conv1(images)));
  x = F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
  at::Tensor c2 = layer1->forward(x);
  at::Tensor c3 = layer2->forward(c2);
  at::Tensor c4 = layer3->forward(c3);
  at::Tensor c5 = layer4->forward(c4);
  return {c2, c3, c4, c5};
}

std::vector<int> ResNetImpl::stage_channels() const {
  std::vector<int> out = {c2_channels_};
  out.insert(out.end(), out_channels_.begin(), out_channels_.end());
  return out;
}

FpnImpl::FpnImpl(const std::vector<int>& in_channels, int channels, int extra_levels) : extra_levels_(extra_levels) {
  for (int c : in_channels) {
    lateral_->push_back(conv(c, channels, 1, 1, true));
    output_->push_back(conv(channels, channels, 3, 1, true));
  }
  register_module("lateral", lateral_);
  register_module("output", output_);
  for (auto& m : modules(false)) {
    if (auto* c = m->as<nn::Conv2d>()) {
      nn::init::kaiming_uniform_(c->weight, 1);  // torchvision's FPN initialisation
      nn::init::constant_(c->bias, 0);
    }
  }
}

std::vector<at::Tensor> FpnImpl::forward(const std::vector<at::Tensor>& stages) {
  const size_t n = stages.size();
  std::vector<at::Tensor> lat(n);
  for (size_t i = 0; i < n; ++i) lat[i] = lateral_[i]->as<nn::Conv2d>()->forward(stages[i]);
  for (size_t i = n - 1; i-- > 0;)
    lat[i] = lat[i] + F::interpolate(lat[i + 1], F::InterpolateFuncOptions()
                                                     .size(std::vector<int64_t>{lat[i].size(2), lat[i].size(3)})
                                                     .mode(torch::kNearest));
  std::vector<at::Tensor> levels;
  for (size_t i = 0; i < n; ++i) levels.push_back(output_[i]->as<nn::Conv2d>()->forward(lat[i]));
  for (int e = 0; e < extra_levels_; ++e)
    levels.push_back(F::max_pool2d(levels.back(), F::MaxPool2dFuncOptions(1).stride(2)));
  return levels;
}

FcosImpl::FcosImpl(const ModelConfig& config) : config_(config) {
  config_.validate();
  const int ch = config.fpn_channels;
  backbone_ = register_module("backbone", ResNet(config.depth, config.width));
  for (int c : backbone_->out_channels()) {
    lateral_->push_back(conv(c, ch, 1, 1, true));
    output_->push_back(conv(ch, ch, 3, 1, true));
  }
  register_module("lateral", lateral_);
  register_module("output", output_);
  if (config.strides.size() > 3) p6_ = register_module("p6", conv(ch, ch, 3, 2, true));
  if (config.strides.size() > 4) p7_ = register_module("p7", conv(ch, ch, 3, 2, true));
  const int groups = ch >= 64 ? 32 : std::max(1, ch / 4);
  auto tower = [&] {
    nn::Sequential t;
    for (int i = 0; i < config.tower_convs; ++i) {
      nn::Conv2d c = conv(ch, ch, 3, 1, true);
      init_conv(c, 0.01);
      t->push_back(c);
      t->push_back(nn::GroupNorm(nn::GroupNormOptions(groups, ch)));
      t->push_back(nn::ReLU());
    }
    if (config.tower_convs == 0) t->push_back(nn::Identity());
    return t;
  };
  cls_tower_ = register_module("cls_tower", tower());
  reg_tower_ = register_module("reg_tower", tower());
  cls_out_ = register_module("cls_out", conv(ch, config.num_classes, 3, 1, true));
  reg_out_ = register_module("reg_out", conv(ch, 4, 3, 1, true));
  ctr_out_ = register_module("ctr_out", conv(ch, 1, 3, 1, true));
  init_conv(cls_out_, 0.01);
  init_conv(reg_out_, 0.01);
  init_conv(ctr_out_, 0.01);
  {
    at::NoGradGuard no_grad;
    cls_out_->bias.fill_(-std::log((1 - config.prior) / config.prior));
  }
  scales_ = register_parameter("scales", torch::ones({static_cast<int64_t>(config.strides.size())}));
}

FcosOutput FcosImpl::forward(const at::Tensor& images) {
  const std::vector<at::Tensor> c = backbone_->forward(images);
  // Top-down: each level adds the upsampled level above it.
  std::vector<at::Tensor> lat(3);
  for (int i = 0; i < 3; ++i) lat[i] = lateral_[i]->as<nn::Conv2d>()->forward(c[i]);
  for (int i = 1; i >= 0; --i)
    lat[i] = lat[i] + F::interpolate(lat[i + 1], F::InterpolateFuncOptions()
                                                     .size(std::vector<int64_t>{lat[i].size(2), lat[i].size(3)})
                                                     .mode(torch::kNearest));
  std::vector<at::Tensor> levels;
  for (int i = 0; i < 3; ++i) levels.push_back(output_[i]->as<nn::Conv2d>()->forward(lat[i]));
  if (p6_) levels.push_back(p6_->forward(levels[2]));
  if (p7_) levels.push_back(p7_->forward(torch::relu(levels[3])));
  levels.resize(config_.strides.size());

  FcosOutput out;
  std::vector<at::Tensor> cls, reg, ctr;
  const int64_t batch = images.size(0);
  for (size_t l = 0; l < levels.size(); ++l) {
    const at::Tensor& f = levels[l];
    out.level_sizes.push_back({f.size(2), f.size(3)});
    const at::Tensor reg_feat = reg_tower_->forward(f);
    auto flat = [&](const at::Tensor& t) { return t.permute({0, 2, 3, 1}).reshape({batch, -1, t.size(1)}); };
    cls.push_back(flat(cls_out_(cls_tower_->forward(f))));
    reg.push_back(flat(torch::relu(reg_out_(reg_feat) * scales_[static_cast<int64_t>(l)])));
    ctr.push_back(flat(ctr_out_(reg_feat)).squeeze(2));
  }
  out.cls = torch::cat(cls, 1);
  out.reg = torch::cat(reg, 1);
  out.centerness = torch::cat(ctr, 1);
  return out;
}

}  // namespace lossforge::detectors
