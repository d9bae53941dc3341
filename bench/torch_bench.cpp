// LibTorch CPU eager + autograd: the six llvm_bench workloads written as a
// PyTorch user writes them (eager tensor ops, float32, loss.sum().backward()
// for the gradient of the pred input), with exactly the semantics of SPEC §3:
// protected log ln(a + 1e-20) and division a / (b + 1e-20), and the reg
// preset's U = area(P) + area(G) - I + 1e-7, E = enclosing area + 1e-7.
// Scalar constants are folded as a user would (sqrt(pi)/4, pi/8, a division by
// the constant 3 is a division by 3 + 1e-20 = 3 in double), which can only
// help torch. Rows torch/1t/* run with torch::set_num_threads(1),
// torch/2t/* with 2; wall time, each call allocating its outputs as the JIT
// rows do.
//
// The only translation unit of lossforge that includes <torch/torch.h>.
#include "torch_bench.hpp"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <numbers>
#include <span>
#include <stdexcept>

#include "bench/bench_data.hpp"
#include "runtime/interpreter.hpp"

namespace lossforge::bench {
namespace {

namespace F = torch::nn::functional;
using torch::Tensor;
using C = benchmark::Counter;

// ---- SPEC §3 operators --------------------------------------------------------

Tensor pdiv(const Tensor& a, const Tensor& b) { return a / (b + 1e-20); }
Tensor pdiv(const Tensor& a, double b) { return a / (b + 1e-20); }
Tensor plog(const Tensor& a) { return torch::log(a + 1e-20); }

Tensor serf(const Tensor& a) { return (torch::erf(a * (std::sqrt(std::numbers::pi) / 4)) + 1) / 2; }
Tensor sgdf(const Tensor& a) {
  return (torch::atan(torch::tanh(a * (std::numbers::pi / 8))) * (4 / std::numbers::pi) + 1) / 2;
}

// Boxes are [N, 4] (x1, y1, x2, y2).
Tensor col(const Tensor& b, int64_t c) { return b.select(1, c); }
Tensor area(const Tensor& b) { return (col(b, 2) - col(b, 0)) * (col(b, 3) - col(b, 1)); }

struct Iue {
  Tensor i, u, e;
};
Iue reg_terms(const Tensor& p, const Tensor& g) {
  Tensor iw = (torch::minimum(col(p, 2), col(g, 2)) - torch::maximum(col(p, 0), col(g, 0))).clamp_min(0);
  Tensor ih = (torch::minimum(col(p, 3), col(g, 3)) - torch::maximum(col(p, 1), col(g, 1))).clamp_min(0);
  Tensor ew = (torch::maximum(col(p, 2), col(g, 2)) - torch::minimum(col(p, 0), col(g, 0))).clamp_min(0);
  Tensor eh = (torch::maximum(col(p, 3), col(g, 3)) - torch::minimum(col(p, 1), col(g, 1))).clamp_min(0);
  Tensor i = iw * ih;
  return {i, area(p) + area(g) - i + 1e-7, ew * eh + 1e-7};
}

// ---- the workloads: pred first, then the other inputs; one loss per row ---------

using Formula = std::function<Tensor(const Tensor& pred, const std::vector<Tensor>& rest)>;

// torchvision.ops.sigmoid_focal_loss per element (α 0.25, γ 2).
Tensor focal(const Tensor& x, const std::vector<Tensor>& rest) {
  const Tensor& y = rest[0];
  const double alpha = 0.25, gamma = 2;
  Tensor p = torch::sigmoid(x);
  Tensor ce = F::binary_cross_entropy_with_logits(x, y, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  Tensor p_t = p * y + (1 - p) * (1 - y);
  Tensor alpha_t = alpha * y + (1 - alpha) * (1 - y);
  return alpha_t * ce * (1 - p_t).pow(gamma);
}

// examples/losses/cse_autoloss_b.loss, cse_autoloss_b_cls.
Tensor cse_autoloss_b_cls(const Tensor& X, const std::vector<Tensor>& rest) {
  const Tensor &Q = rest[0], &NY = rest[2];
  Tensor p = torch::sigmoid(X);
  Tensor pos = Q * (1 + serf(torch::sigmoid(NY))) * plog(p);
  Tensor neg = (sgdf(X) - Q) * ((1 - Q) - (1 - p)) * plog(1 - p);
  return -(pos + neg);
}

// Fused: integer labels (the argmax of the one-hot rows) through cross_entropy.
Tensor ce_fused(const Tensor& x, const std::vector<Tensor>& rest) {
  return F::cross_entropy(x, rest[0], F::CrossEntropyFuncOptions().reduction(torch::kNone));
}

// Dense: -Σ y · log_softmax(x), examples/losses/cross_entropy.loss.
Tensor ce_onehot(const Tensor& x, const std::vector<Tensor>& rest) {
  return -(rest[0] * torch::log_softmax(x, -1)).sum(-1);
}

// examples/losses/cse_autoloss_a.loss, cse_autoloss_a_cls.
Tensor cse_autoloss_a_cls(const Tensor& X, const std::vector<Tensor>& rest) {
  const Tensor &Y = rest[0], &Z = rest[1];
  return -(Y * (1 + torch::sin(Z)) * plog(torch::softmax(X, -1))).sum(-1);
}

Tensor giou(const Tensor& p, const std::vector<Tensor>& rest) {
  auto [i, u, e] = reg_terms(p, rest[0]);
  return 1 - pdiv(i, u) + pdiv(e - u, e);
}

// examples/losses/cse_autoloss_b.loss, cse_autoloss_b_reg.
Tensor cse_autoloss_b_reg(const Tensor& p, const std::vector<Tensor>& rest) {
  auto [i, u, e] = reg_terms(p, rest[0]);
  Tensor num = pdiv(1 + i - e, u + 5) + 1 + e;
  Tensor den = e - pdiv(u + i, 3);
  return -pdiv(num, den);
}

// ---- inputs ---------------------------------------------------------------------

// A float32 [rows] (width 1) or [rows, width] tensor owning a copy of the first `rows` rows.
Tensor to_tensor(const Array<float>& a, size_t rows) {
  std::vector<int64_t> shape{int64_t(rows)};
  if (a.width != 1) shape.push_back(int64_t(a.width));
  return torch::from_blob(const_cast<float*>(a.data.data()), shape, torch::kFloat32).clone();
}

struct Case {
  std::string name;
  Formula formula;
  Tensor pred;
  std::vector<Tensor> rest;
};

// The torch cases of one workload on its first `rows` rows (all of them: units).
std::vector<Case> cases(const TorchWorkload& w, size_t rows) {
  Tensor pred = to_tensor(w.inputs[0], rows);
  std::vector<Tensor> rest;
  for (size_t k = 1; k < w.inputs.size(); ++k) rest.push_back(to_tensor(w.inputs[k], rows));
  if (w.name == "focal") return {{w.name, focal, pred, rest}};
  if (w.name == "cse_autoloss_b_cls") return {{w.name, cse_autoloss_b_cls, pred, rest}};
  if (w.name == "ce_c81")
    return {{w.name, ce_fused, pred, {rest[0].argmax(-1)}}, {w.name + "_onehot", ce_onehot, pred, rest}};
  if (w.name == "cse_autoloss_a_cls_c81") return {{w.name, cse_autoloss_a_cls, pred, rest}};
  if (w.name == "giou") return {{w.name, giou, pred, rest}};
  if (w.name == "cse_autoloss_b_reg") return {{w.name, cse_autoloss_b_reg, pred, rest}};
  throw std::runtime_error("torch_bench: no torch formula for workload " + w.name);
}

// Loss per row and gradient of their sum by the pred input, as a training step does.
std::pair<Tensor, Tensor> loss_and_grad(const Case& c) {
  Tensor pred = c.pred.detach().requires_grad_(true);
  Tensor loss = c.formula(pred, c.rest);
  loss.sum().backward();
  return {loss.detach(), pred.grad()};
}

// ---- agreement with the interpreter -------------------------------------------------

double deviation(const Tensor& torch_values, std::span<const float> ref) {
  Tensor t = torch_values.contiguous();
  return bench::deviation(std::span<const float>(t.data_ptr<float>(), size_t(t.numel())), ref);
}

void check(const TorchWorkload& w) {
  const size_t rows = std::min(kCheckRows, w.units);
  std::vector<Array<float>> small;
  for (const auto& a : w.inputs) small.push_back(head(a, rows));
  EvalOptions eval;
  eval.gradients = true;
  const Evaluation<float> ref = interpret<float>(w.loss, std::span<const Array<float>>(small), eval);
  torch::set_num_threads(1);
  for (const Case& c : cases(w, rows)) {
    auto [loss, grad] = loss_and_grad(c);
    const double dv = deviation(loss, ref.loss), dg = deviation(grad, ref.grads.front().data);
    std::fprintf(stderr, "torch_bench: %-24s %zu rows, deviation from the interpreter: loss %.2e, grad %.2e\n",
                 c.name.c_str(), rows, dv, dg);
    if (!(dv <= kAgreement && dg <= kAgreement))
      throw std::runtime_error("torch_bench: torch and the interpreter disagree on " + c.name);
  }
}

void set_rate(benchmark::State& state, size_t units, const char* unit, size_t per_unit) {
  state.counters[std::string("sec/") + unit] = C(double(units), C::kIsIterationInvariantRate | C::kInvert);
  if (per_unit) state.counters["sec/element"] = C(double(units * per_unit), C::kIsIterationInvariantRate | C::kInvert);
}

}  // namespace

void register_torch(const std::vector<TorchWorkload>& workloads) {
  std::fprintf(stderr, "torch_bench: LibTorch %s, %d intra-op threads by default\n", TORCH_VERSION,
               torch::get_num_threads());
  for (const TorchWorkload& w : workloads) check(w);
  for (const TorchWorkload& w : workloads) {
    for (const Case& full : cases(w, w.units)) {
      auto c = std::make_shared<const Case>(full);
      for (int threads : {1, 2}) {
        benchmark::RegisterBenchmark(("torch/" + std::to_string(threads) + "t/" + c->name).c_str(),
                                     [c, threads, unit = w.unit, units = w.units,
                                      per_unit = w.per_unit](benchmark::State& state) {
                                       torch::set_num_threads(threads);
                                       for (auto _ : state) {
                                         auto [loss, grad] = loss_and_grad(*c);
                                         benchmark::DoNotOptimize(loss.data_ptr());
                                         benchmark::DoNotOptimize(grad.data_ptr());
                                       }
                                       set_rate(state, units, unit, per_unit);
                                     })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
    }
  }
}

}  // namespace lossforge::bench
