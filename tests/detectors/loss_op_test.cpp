// The LibTorch loss op (runtime/torch/loss_op.hpp) against LibTorch's own
// autograd: each loss is also written with torch ops, and the op's values and
// gradients (inputs and weights) must match for every reduction, with and
// without weights and avg_factor, in float32 and float64. Then every error case
// names what is wrong. With a CUDA device, the op on CUDA tensors (the NVRTC
// kernels) must agree with the op on the same CPU tensors.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "compiler/error.hpp"
#include "runtime/torch/loss_op.hpp"

namespace lossforge::torch_ops {
namespace {

const std::string kExamples = std::string(LOSSFORGE_SOURCE_DIR) + "/examples/losses/";

// The formulas of SPEC §3 in torch ops (protected log and division included).
torch::Tensor plog(const torch::Tensor& a) { return torch::log(a + 1e-20); }
torch::Tensor pdiv(const torch::Tensor& a, const torch::Tensor& b) { return a / (b + 1e-20); }
torch::Tensor serf(const torch::Tensor& a) { return (torch::erf(std::sqrt(M_PI) / 2 * a / 2) + 1) / 2; }
torch::Tensor sgdf(const torch::Tensor& a) { return (2 / M_PI * 2 * torch::atan(torch::tanh(M_PI * a / 8)) + 1) / 2; }

struct BoxTerms {
  torch::Tensor I, U, E;
};
BoxTerms box_terms(const torch::Tensor& p, const torch::Tensor& g) {
  auto w = (torch::min(p.select(1, 2), g.select(1, 2)) - torch::max(p.select(1, 0), g.select(1, 0))).clamp_min(0);
  auto h = (torch::min(p.select(1, 3), g.select(1, 3)) - torch::max(p.select(1, 1), g.select(1, 1))).clamp_min(0);
  auto area = [](const torch::Tensor& b) { return (b.select(1, 2) - b.select(1, 0)) * (b.select(1, 3) - b.select(1, 1)); };
  auto I = w * h;
  auto U = area(p) + area(g) - I + 1e-7;
  auto ew = (torch::max(p.select(1, 2), g.select(1, 2)) - torch::min(p.select(1, 0), g.select(1, 0))).clamp_min(0);
  auto eh = (torch::max(p.select(1, 3), g.select(1, 3)) - torch::min(p.select(1, 1), g.select(1, 1))).clamp_min(0);
  return {I, U, ew * eh + 1e-7};
}

struct Case {
  std::string name;
  std::function<TorchLoss()> load;
  // Random inputs (the first one is the pred input) and the reference per-row loss.
  std::function<std::vector<torch::Tensor>(torch::Dtype)> inputs;
  std::function<torch::Tensor(const std::vector<torch::Tensor>&)> reference;
};

constexpr int64_t kRows = 37;
constexpr int64_t kClasses = 5;

torch::Tensor random_boxes(torch::Dtype dtype) {
  auto xy = torch::rand({kRows, 2}, torch::TensorOptions().dtype(dtype)) * 10;
  auto wh = torch::rand({kRows, 2}, torch::TensorOptions().dtype(dtype)) * 8 + 0.5;
  return torch::cat({xy, xy + wh}, 1);
}

std::vector<Case> cases() {
  auto binary = [](torch::Dtype dtype) {
    auto o = torch::TensorOptions().dtype(dtype);
    auto x = torch::randn({kRows}, o) * 3;
    auto py = (torch::rand({kRows}, o) < 0.3).to(dtype);
    auto q = torch::rand({kRows}, o) * py;
    return std::vector<torch::Tensor>{x, q, py, 1 - py};
  };
  return {
      {"focal", [] { return load_loss(kExamples + "focal.loss", "sigmoid_focal"); },
       [](torch::Dtype dtype) {
         auto o = torch::TensorOptions().dtype(dtype);
         return std::vector<torch::Tensor>{torch::randn({kRows}, o) * 3, (torch::rand({kRows}, o) < 0.3).to(dtype)};
       },
       [](const std::vector<torch::Tensor>& in) {
         auto x = in[0], y = in[1];
         auto p = torch::sigmoid(x);
         auto pt = p * y + (1 - p) * (1 - y);
         auto at = 0.25 * y + 0.75 * (1 - y);
         return at * (1 - pt).pow(2) * (torch::nn::functional::softplus(x) - x * y);
       }},
      {"fcos_focal", [] { return load_loss(kExamples + "fcos_focal.loss"); }, binary,
       [](const std::vector<torch::Tensor>& in) {
         auto p = torch::sigmoid(in[0]);
         return -(in[2] * (1 - p).pow(2) * plog(p) + in[3] * p.pow(2) * plog(1 - p));
       }},
      {"giou", [] { return load_loss(kExamples + "giou.loss"); },
       [](torch::Dtype dtype) { return std::vector<torch::Tensor>{random_boxes(dtype), random_boxes(dtype)}; },
       [](const std::vector<torch::Tensor>& in) {
         auto [I, U, E] = box_terms(in[0], in[1]);
         return 1 - pdiv(I, U) + pdiv(E - U, E);
       }},
      {"cross_entropy", [] { return load_loss(kExamples + "cross_entropy.loss"); },
       [](torch::Dtype dtype) {
         auto o = torch::TensorOptions().dtype(dtype);
         auto labels = torch::randint(kClasses, {kRows}, torch::kLong);
         return std::vector<torch::Tensor>{torch::randn({kRows, kClasses}, o) * 2,
                                           torch::one_hot(labels, kClasses).to(dtype)};
       },
       [](const std::vector<torch::Tensor>& in) { return -(in[1] * torch::log_softmax(in[0], 1)).sum(1); }},
      {"cse_b_cls", [] { return load_loss(kExamples + "cse_autoloss_b.loss", "cse_autoloss_b_cls"); }, binary,
       [](const std::vector<torch::Tensor>& in) {
         auto X = in[0], Q = in[1], NY = in[3];
         auto p = torch::sigmoid(X);
         auto pos = Q * (1 + serf(torch::sigmoid(NY))) * plog(p);
         auto neg = (sgdf(X) - Q) * ((1 - Q) - (1 - p)) * plog(1 - p);
         return -(pos + neg);
       }},
      {"cse_b_reg_deap",
       [] {
         return load_formula(
             "Neg(Div(Add(Div(Neg(Add(Neg(E),Add(1,I))),Neg(Add(3,Add(2,U)))),Add(Div(E,E),Div(Neg(E),Neg(1)))),"
             "Neg(Add(Div(Neg(Add(U,Div(I,1))),Neg(3)),Neg(E)))))",
             "reg");
       },
       [](torch::Dtype dtype) { return std::vector<torch::Tensor>{random_boxes(dtype), random_boxes(dtype)}; },
       [](const std::vector<torch::Tensor>& in) {
         auto [I, U, E] = box_terms(in[0], in[1]);
         auto num = pdiv(-(-E + (1 + I)), -(3 + (2 + U))) + (pdiv(E, E) + pdiv(-E, torch::full_like(E, -1)));
         auto den = -(pdiv(-(U + pdiv(I, torch::ones_like(I))), torch::full_like(I, -3)) - E);
         return -pdiv(num, den);
       }},
      {"cse_a_cls_deap",
       [] { return load_formula("Neg(Dot(Mul(Y,Add(1,Sin(Z))),Log(Softmax(X))))", "multi_cls"); },
       [](torch::Dtype dtype) {
         auto o = torch::TensorOptions().dtype(dtype);
         auto labels = torch::randint(kClasses, {kRows}, torch::kLong);
         auto y = torch::one_hot(labels, kClasses).to(dtype);
         auto z = torch::rand({kRows, 1}, o).expand({kRows, kClasses}).contiguous();
         return std::vector<torch::Tensor>{torch::randn({kRows, kClasses}, o) * 2, y, z};
       },
       [](const std::vector<torch::Tensor>& in) {
         return -(in[1] * (1 + torch::sin(in[2])) * plog(torch::softmax(in[0], 1))).sum(1);
       }},
  };
}

#define EXPECT_CONTAINS(text, part)                                 \
  do {                                                              \
    const std::string text_ = (text);                               \
    EXPECT_NE(text_.find(part), std::string::npos) << text_;        \
  } while (0)

struct Variant {
  Reduction reduction;
  bool weighted;
  std::optional<double> avg_factor;
};

class LossOpVsAutograd : public ::testing::TestWithParam<torch::Dtype> {};

TEST_P(LossOpVsAutograd, ValuesAndGradientsMatchForEveryReduction) {
  const torch::Dtype dtype = GetParam();
  const double tol = dtype == torch::kFloat ? 2e-4 : 1e-9;
  torch::manual_seed(7);
  const std::vector<Variant> variants = {{Reduction::None, false, {}}, {Reduction::None, true, {}},
                                         {Reduction::Sum, false, {}},  {Reduction::Sum, true, {}},
                                         {Reduction::Mean, false, {}}, {Reduction::Mean, true, {}},
                                         {Reduction::Mean, true, 6.5}};
  for (const Case& c : cases()) {
    const TorchLoss op = c.load();
    const std::vector<torch::Tensor> data = c.inputs(dtype);
    for (const Variant& v : variants) {
      SCOPED_TRACE(c.name + " reduction " + std::to_string(int(v.reduction)) + (v.weighted ? " weighted" : "") +
                   (v.avg_factor ? " avg_factor" : ""));
      auto ours_in = data;
      auto ref_in = data;
      ours_in[0] = data[0].clone().requires_grad_(true);
      ref_in[0] = data[0].clone().requires_grad_(true);
      auto w = torch::rand({kRows}, torch::TensorOptions().dtype(dtype)) + 0.5;
      auto w_ours = w.clone().requires_grad_(true), w_ref = w.clone().requires_grad_(true);

      LossOptions options{.reduction = v.reduction, .avg_factor = v.avg_factor};
      if (v.weighted) options.weight = w_ours;
      torch::Tensor ours = op(ours_in, options);

      torch::Tensor ref = c.reference(ref_in);
      if (v.weighted) ref = ref * w_ref;
      if (v.reduction == Reduction::Sum) ref = ref.sum();
      if (v.reduction == Reduction::Mean) ref = v.avg_factor ? ref.sum() / *v.avg_factor : ref.mean();

      ASSERT_EQ(ours.sizes(), ref.sizes());
      ASSERT_EQ(ours.scalar_type(), dtype);
      EXPECT_TRUE(torch::allclose(ours, ref.detach(), tol, tol)) << ours << "\n" << ref;
      // A non-uniform upstream gradient checks the per-row scaling of None.
      torch::Tensor upstream = v.reduction == Reduction::None ? torch::rand({kRows}, w.options()) : torch::ones({}, w.options()) * 1.7;
      ours.backward(upstream);
      ref.backward(upstream);
      EXPECT_TRUE(torch::allclose(ours_in[0].grad(), ref_in[0].grad(), tol, tol))
          << (ours_in[0].grad() - ref_in[0].grad()).abs().max();
      if (v.weighted) {
        EXPECT_TRUE(torch::allclose(w_ours.grad(), w_ref.grad(), tol, tol));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, LossOpVsAutograd, ::testing::Values(torch::kFloat, torch::kDouble),
                         [](const auto& info) { return info.param == torch::kFloat ? "f32" : "f64"; });

TEST(LossOp, ParamsOverrideDefaults) {
  const TorchLoss focal = load_loss(kExamples + "focal.loss", "sigmoid_focal");
  auto x = torch::randn({8}, torch::kDouble), y = (torch::rand({8}, torch::kDouble) < 0.5).to(torch::kDouble);
  auto p = torch::sigmoid(x);
  auto pt = p * y + (1 - p) * (1 - y);
  auto ref = (0.5 * y + 0.5 * (1 - y)) * (1 - pt).pow(3) * (torch::nn::functional::softplus(x) - x * y);
  auto ours = focal({x, y}, {.reduction = Reduction::None, .params = {0.5, 3.0}});
  EXPECT_TRUE(torch::allclose(ours, ref, 1e-9, 1e-9));
}

TEST(LossOp, NoGradientNeededStillComputesValues) {
  const TorchLoss giou = load_loss(kExamples + "giou.loss");
  auto b = random_boxes(torch::kFloat);
  auto l = giou({b, b}, {.reduction = Reduction::None});
  EXPECT_FALSE(l.requires_grad());
  EXPECT_LT(l.abs().max().item<float>(), 1e-5);  // identical boxes: GIoU loss 0
}

// The message of the InputError (or UnavailableError) `f` throws.
template <class E = InputError>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(LossOp, ErrorsNameTheInput) {
  const TorchLoss focal = load_loss(kExamples + "focal.loss", "sigmoid_focal");
  const TorchLoss giou = load_loss(kExamples + "giou.loss");
  auto x = torch::randn({6}), y = torch::zeros({6});
  EXPECT_CONTAINS(error_of([&] { focal({x}); }), "expects 2 inputs (pred x: real, y: real), got 1");
  EXPECT_CONTAINS(error_of([&] { focal({x, torch::zeros({6}, torch::kDouble)}); }),
              "input 'y' is float64 but input 'x' is float32");
  EXPECT_CONTAINS(error_of([&] { focal({x.to(torch::kHalf), y.to(torch::kBFloat16)}); }),
              "input 'y' is bfloat16 but input 'x' is float16");
  EXPECT_CONTAINS(error_of([&] { focal({x.to(torch::kInt), y}); }),
                  "input 'x' is Int; expected float32, float64, float16 or bfloat16");
  EXPECT_CONTAINS(error_of([&] { focal({x.view({2, 3}), y}); }),
              "input 'x' (real) has shape [2, 3]; expected [N]");
  EXPECT_CONTAINS(error_of([&] { focal({x, torch::zeros({5})}); }), "input 'y' has 5 rows but input 'x' has 6");
  EXPECT_CONTAINS(error_of([&] { focal({torch::randn({12}).slice(0, 0, 12, 2), y}); }),
              "input 'x' is not contiguous");
  EXPECT_CONTAINS(error_of([&] { giou({torch::rand({6, 3}), torch::rand({6, 4})}); }),
              "input 'p' (box) has shape [6, 3]; expected [N, 4]");
  EXPECT_CONTAINS(error_of([&] { focal({x, y}, {.weight = torch::ones({5})}); }),
              "weight has shape [5]; expected [6]");
  EXPECT_CONTAINS(error_of([&] { focal({x, y}, {.reduction = Reduction::Sum, .avg_factor = 2.0}); }),
              "avg_factor is given but the reduction is not Mean");
  EXPECT_CONTAINS(error_of([&] { focal({x, y}, {.params = {1.0}}); }), "1 param values for 2 params");
  EXPECT_CONTAINS(error_of([&] { focal({torch::Tensor(), y}); }), "input 'x' is an undefined tensor");
  EXPECT_CONTAINS(error_of([&] { load_loss(kExamples + "cse_autoloss_b.loss"); }), "defines several losses");
  EXPECT_CONTAINS(error_of([&] { load_formula("Neg(X)", "nope"); }), "unknown preset 'nope'");
  EXPECT_CONTAINS(error_of([&] { focal({torch::empty({4}, torch::kMeta), torch::empty({4}, torch::kMeta)}); }),
                  "input 'x' is on device meta; expected cpu or cuda");
}

// A case's random inputs in any float dtype: made in float32 (LibTorch 1.13
// cannot draw 16-bit random numbers on the CPU), then converted.
std::vector<torch::Tensor> inputs_in(const Case& c, torch::Dtype dtype) {
  std::vector<torch::Tensor> out;
  for (const torch::Tensor& t : c.inputs(torch::kFloat)) out.push_back(t.to(dtype));
  return out;
}

// Tolerances for gradients that went through a 16-bit dtype: the kernel's
// gradient and then its scaled value are each rounded to it (two roundings).
double gradient_tolerance(torch::Dtype dtype) { return dtype == torch::kBFloat16 ? 1.6e-2 : 2e-3; }

// float16 and bfloat16 tensors are storage around float arithmetic: the loss is
// the float32 op's on the same (widened) values, the gradients that op's
// rounded to the dtype, for inputs and weights.
TEST(LossOp, SixteenBitTensorsComputeInFloat) {
  torch::manual_seed(12);
  for (const torch::Dtype dtype : {torch::kHalf, torch::kBFloat16}) {
    const double tol = gradient_tolerance(dtype);
    for (const Case& c : cases()) {
      const TorchLoss op = c.load();
      const std::vector<torch::Tensor> data = inputs_in(c, dtype);
      for (const Variant& v : {Variant{Reduction::None, false, {}}, Variant{Reduction::Mean, true, 6.5}}) {
        SCOPED_TRACE(c.name + (dtype == torch::kHalf ? " f16" : " bf16") + " reduction " + std::to_string(int(v.reduction)));
        auto run = [&](torch::Dtype as) {
          std::vector<torch::Tensor> in;
          for (const torch::Tensor& t : data) in.push_back(t.to(as).clone());
          in[0].requires_grad_(true);
          auto w = (torch::arange(kRows, torch::kFloat) / kRows + 0.5).to(dtype).to(as).requires_grad_(true);
          LossOptions options{.reduction = v.reduction, .avg_factor = v.avg_factor};
          if (v.weighted) options.weight = w;
          torch::Tensor l = op(in, options);
          l.backward(torch::ones_like(l));
          return std::tuple{l.detach(), in[0].grad(), v.weighted ? w.grad() : torch::Tensor()};
        };
        const auto [l16, g16, w16] = run(dtype);
        const auto [l32, g32, w32] = run(torch::kFloat);
        EXPECT_EQ(l16.scalar_type(), torch::kFloat);
        EXPECT_TRUE(torch::allclose(l16, l32, 1e-6, 1e-7)) << l16 << "\n" << l32;
        ASSERT_EQ(g16.scalar_type(), dtype);
        EXPECT_TRUE(torch::allclose(g16.to(torch::kFloat), g32, tol, 1e-6)) << (g16.to(torch::kFloat) - g32).abs().max();
        if (v.weighted) {
          ASSERT_EQ(w16.scalar_type(), dtype);
          EXPECT_TRUE(torch::allclose(w16.to(torch::kFloat), w32, tol, 1e-6)) << (w16.to(torch::kFloat) - w32).abs().max();
        }
      }
    }
  }
}

// CUDA tensors run the NVRTC kernel on the current stream: values and
// gradients (inputs and weights) match the op on the same CPU tensors, for
// every example case, reduction and dtype (float16 and bfloat16 included).
// Skips without a device (or with
// Debian's CPU-only LibTorch, which cannot make a CUDA tensor).
TEST(LossOpCuda, ValuesAndGradientsMatchTheCpuOp) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device for LibTorch";
  torch::manual_seed(11);
  const std::vector<Variant> variants = {{Reduction::None, true, {}}, {Reduction::Sum, false, {}},
                                         {Reduction::Mean, true, 6.5}};
  // 16-bit: the f16 and bf16 kernels against the CPU's float kernel on widened copies.
  for (const torch::Dtype dtype : {torch::kFloat, torch::kDouble, torch::kHalf, torch::kBFloat16}) {
    const bool sixteen_bit = dtype == torch::kHalf || dtype == torch::kBFloat16;
    const double tol = dtype == torch::kDouble ? 1e-9 : 1e-4;  // the loss (float for 16-bit inputs)
    const double grad_tol = sixteen_bit ? gradient_tolerance(dtype) : tol;
    for (const Case& c : cases()) {
      const TorchLoss op = c.load();
      const std::vector<torch::Tensor> data = inputs_in(c, dtype);
      for (const Variant& v : variants) {
        SCOPED_TRACE(c.name + " " + std::string(c10::toString(dtype)) + " reduction " + std::to_string(int(v.reduction)));
        auto run = [&](const torch::Device& device) {
          std::vector<torch::Tensor> in;
          for (const torch::Tensor& t : data) in.push_back(t.to(device).clone());  // fresh leaves
          in[0].requires_grad_(true);
          auto w = (torch::arange(kRows, torch::kFloat) / kRows + 0.5).to(dtype).to(device).requires_grad_(true);
          LossOptions options{.reduction = v.reduction, .avg_factor = v.avg_factor};
          if (v.weighted) options.weight = w;
          torch::Tensor l = op(in, options);
          l.backward(v.reduction == Reduction::None ? torch::linspace(0.5, 1.5, kRows, l.options()) : torch::ones_like(l));
          EXPECT_EQ(in[0].grad().scalar_type(), dtype);
          return std::tuple{l.detach().cpu(), in[0].grad().cpu().to(torch::kDouble),
                            v.weighted ? w.grad().cpu().to(torch::kDouble) : torch::Tensor()};
        };
        const auto [l_cpu, g_cpu, w_cpu] = run(torch::kCPU);
        const auto [l_cuda, g_cuda, w_cuda] = run(torch::Device(torch::kCUDA, 0));
        EXPECT_TRUE(torch::allclose(l_cuda, l_cpu, tol, tol)) << l_cuda << "\n" << l_cpu;
        EXPECT_TRUE(torch::allclose(g_cuda, g_cpu, grad_tol, tol)) << (g_cuda - g_cpu).abs().max();
        if (v.weighted) EXPECT_TRUE(torch::allclose(w_cuda, w_cpu, grad_tol, tol));
      }
    }
  }
  // Inputs on two devices are refused before any kernel runs.
  const TorchLoss focal = load_loss(kExamples + "focal.loss", "sigmoid_focal");
  EXPECT_CONTAINS(error_of([&] { focal({torch::randn({4}).cuda(), torch::zeros({4})}); }), "give every input one device");
}

}  // namespace
}  // namespace lossforge::torch_ops
