#include "runtime/torch/loss_op.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <span>

#include "compiler/error.hpp"
#include "compiler/frontend.hpp"
#include "compiler/presets.hpp"
#include "runtime/input_check.hpp"
#include "runtime/interpreter.hpp"
#include "runtime/llvm_engine.hpp"
#if LOSSFORGE_TORCH_CUDA
#include <c10/cuda/CUDAStream.h>

#include "runtime/cuda/cuda_engine.hpp"
#endif

namespace lossforge::torch_ops {

struct TorchLoss::State {
  Loss loss;
  std::mutex mutex;

  // Compiled on first use, with gradients, through the default kernel cache.
  template <class Kernel>
  const Kernel& compiled(std::unique_ptr<Kernel>& slot, const auto& compile) {
    std::lock_guard lock(mutex);
    if (!slot) slot = std::make_unique<Kernel>(compile());
    return *slot;
  }

#if LOSSFORGE_HAVE_LLVM
  std::unique_ptr<CompiledLoss> f32, f64;
  const CompiledLoss& kernel(DType dtype) {
    return compiled(dtype == DType::F32 ? f32 : f64, [&] {
      LlvmOptions options;
      options.dtype = dtype;
      options.gradients = true;
      options.threads = 0;  // large batches use every core; small ones stay on the caller's thread
      return CompiledLoss::compile_cached(loss, options, default_kernel_cache());
    });
  }
#endif
#if LOSSFORGE_TORCH_CUDA
  std::unique_ptr<cuda::CudaLoss> cuda_kernels[4];  // one per CudaDType
  const cuda::CudaLoss& cuda_kernel(CudaDType dtype) {
    return compiled(cuda_kernels[static_cast<int>(dtype)], [&] {
      cuda::CudaOptions options;
      options.dtype = dtype;
      options.gradients = true;
      return cuda::CudaLoss::compile_cached(loss, options, default_kernel_cache());
    });
  }
#endif
};

namespace {

std::string dtype_text(at::ScalarType type) {
  if (type == at::kFloat) return "float32";
  if (type == at::kDouble) return "float64";
  if (type == at::kHalf) return "float16";
  if (type == at::kBFloat16) return "bfloat16";
  return c10::toString(type);
}

// float16 and bfloat16 are storage around float arithmetic (codegen_cuda.hpp).
bool is_16_bit(at::ScalarType type) { return type == at::kHalf || type == at::kBFloat16; }

std::string input_text(const LossInput& in) { return (in.pred ? "pred " : "") + in.name + ": " + in.type.str(); }

std::string expected_shape(const LossInput& in) {
  if (in.type.is_box()) return "[N, 4]";
  if (in.type.is_vec()) return "[N, " + std::string(in.type.width().str()) + "]";
  return "[N]";
}

// CPU tensors run the LLVM kernel (or the interpreter); CUDA tensors the
// NVRTC kernel, on device 0 (runtime/cuda/driver.hpp), when this build has
// both the CUDA back end and a LibTorch with CUDA.
void check_device(const std::string& what, const at::Device& device) {
  if (device.is_cpu()) return;
  if (!device.is_cuda()) throw InputError(what + " is on device " + device.str() + "; expected cpu or cuda");
#if LOSSFORGE_TORCH_CUDA
  if (device.index() > 0)
    throw InputError(what + " is on " + device.str() + "; lossforge's CUDA kernels run on cuda:0");
#elif LOSSFORGE_HAVE_CUDA
  throw UnavailableError(what + " is a CUDA tensor, and this lossforge was built against a LibTorch without CUDA");
#else
  throw UnavailableError(what + " is a CUDA tensor, and this lossforge was built without its CUDA back end");
#endif
}

// Everything about the tensors the kernel can rely on afterwards.
void check_tensors(const Loss& loss, const std::string& signature, const std::vector<at::Tensor>& inputs,
                   const LossOptions& options) {
  const std::string who = "loss '" + loss.name + "': ";
  if (inputs.size() != loss.inputs.size())
    throw InputError(who + "expects " + std::to_string(loss.inputs.size()) + " inputs " + signature + ", got " +
                     std::to_string(inputs.size()));
  std::optional<at::ScalarType> dtype;
  std::string dtype_owner;
  std::optional<at::Device> device;
  std::string device_owner;
  auto check_common = [&](const at::Tensor& t, const std::string& name) {
    if (!t.defined()) throw InputError(who + name + " is an undefined tensor");
    check_device(who + name, t.device());
    if (!device) {
      device = t.device();
      device_owner = name;
    } else if (*device != t.device()) {
      throw InputError(who + name + " is on " + t.device().str() + " but " + device_owner + " is on " +
                       device->str() + "; give every input one device");
    }
    if (t.scalar_type() != at::kFloat && t.scalar_type() != at::kDouble && !is_16_bit(t.scalar_type()))
      throw InputError(who + name + " is " + dtype_text(t.scalar_type()) +
                       "; expected float32, float64, float16 or bfloat16");
    if (!dtype) {
      dtype = t.scalar_type();
      dtype_owner = name;
    } else if (*dtype != t.scalar_type()) {
      throw InputError(who + name + " is " + dtype_text(t.scalar_type()) + " but " + dtype_owner + " is " +
                       dtype_text(*dtype) + "; give every input one dtype");
    }
    if (!t.is_contiguous()) throw InputError(who + name + " is not contiguous (call .contiguous() first)");
  };
  int64_t rows = -1;
  std::string rows_owner;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const LossInput& in = loss.inputs[i];
    const at::Tensor& t = inputs[i];
    const std::string name = "input '" + in.name + "'";
    check_common(t, name);
    const int64_t want_dims = in.type.is_real() ? 1 : 2;
    const bool shape_ok = t.dim() == want_dims && (!in.type.is_box() || t.size(1) == 4);
    if (!shape_ok)
      throw InputError(who + name + " (" + in.type.str() + ") has shape " + c10::str(t.sizes()) + "; expected " +
                       expected_shape(in));
    if (rows < 0) {
      rows = t.size(0);
      rows_owner = name;
    } else if (t.size(0) != rows) {
      throw InputError(who + name + " has " + std::to_string(t.size(0)) + " rows but " + rows_owner + " has " +
                       std::to_string(rows));
    }
  }
  if (options.weight.defined()) {
    check_common(options.weight, "weight");
    if (options.weight.dim() != 1 || options.weight.size(0) != rows)
      throw InputError(who + "weight has shape " + c10::str(options.weight.sizes()) + "; expected [" +
                       std::to_string(rows) + "], one per row");
  }
  if (options.avg_factor) {
    if (options.reduction != Reduction::Mean)
      throw InputError(who + "avg_factor is given but the reduction is not Mean");
    if (!(*options.avg_factor > 0) || !std::isfinite(*options.avg_factor))
      throw InputError(who + "avg_factor must be a finite number > 0, got " + std::to_string(*options.avg_factor));
  }
  if (!options.params.empty() && options.params.size() != loss.params.size())
    throw InputError(who + std::to_string(options.params.size()) + " param values for " +
                     std::to_string(loss.params.size()) + " params");
}

struct KernelOutput {
  at::Tensor loss;                 // [N]
  std::vector<at::Tensor> grads;   // one per loss input; defined for the pred inputs when gradients were asked
};

// Values per row of a checked [N] or [N, C] tensor.
size_t row_width(const at::Tensor& t) { return t.dim() == 2 ? static_cast<size_t>(t.size(1)) : 1; }

// A checked, contiguous [N] or [N, C] tensor as rows.
template <class T>
ArrayView<T> rows_of(const at::Tensor& t) {
  return {t.data_ptr<T>(), static_cast<size_t>(t.size(0)), row_width(t), static_cast<size_t>(t.numel())};
}

template <class T>
KernelOutput run_cpu(TorchLoss::State& state, const std::vector<at::Tensor>& inputs, bool gradients,
                     const std::vector<double>& params) {
  const Loss& loss = state.loss;
  EvalOptions options;
  options.gradients = gradients;
  options.params = params;
  const auto tensor_options = inputs.front().options().requires_grad(false);
  KernelOutput out;
  out.loss = at::empty({inputs.front().size(0)}, tensor_options);
  out.grads.resize(inputs.size());
  std::vector<T*> grads;
  if (gradients)
    for (size_t index : loss.pred_inputs()) {
      out.grads[index] = at::empty(inputs[index].sizes(), tensor_options);
      grads.push_back(out.grads[index].data_ptr<T>());
    }
#if LOSSFORGE_HAVE_LLVM
  // The kernel reads the (contiguous, checked) tensors and writes the outputs in place.
  std::vector<ArrayView<T>> views;
  for (const at::Tensor& t : inputs) views.push_back(rows_of<T>(t));
  state.kernel(std::is_same_v<T, float> ? DType::F32 : DType::F64)
      .template evaluate_into<T>(views, options, out.loss.data_ptr<T>(), grads);
#else
  std::vector<Array<T>> arrays;
  for (const at::Tensor& t : inputs) {
    const ArrayView<T> v = rows_of<T>(t);
    arrays.emplace_back(v.rows, v.width, std::vector<T>(v.data, v.data + v.size));
  }
  const Evaluation<T> ev = interpret<T>(loss, std::span<const Array<T>>(arrays), options);
  std::memcpy(out.loss.data_ptr<T>(), ev.loss.data(), ev.loss.size() * sizeof(T));
  for (size_t k = 0; k < grads.size(); ++k)
    std::memcpy(grads[k], ev.grads[k].data.data(), ev.grads[k].data.size() * sizeof(T));
#endif
  return out;
}

#if LOSSFORGE_TORCH_CUDA
// The NVRTC kernel on the tensors' memory, asynchronously on the current
// stream of cuda:0, where PyTorch orders the ops that made the inputs and
// will read the outputs. 16-bit tensors run the kernels of their dtype: the
// loss comes out float32, the gradients in the inputs' dtype.
KernelOutput run_cuda(TorchLoss::State& state, const std::vector<at::Tensor>& inputs, bool gradients,
                      const std::vector<double>& params) {
  const Loss& loss = state.loss;
  const at::ScalarType type = inputs.front().scalar_type();
  const CudaDType dtype = type == at::kFloat    ? CudaDType::F32
                          : type == at::kDouble ? CudaDType::F64
                          : type == at::kHalf   ? CudaDType::F16
                                                : CudaDType::BF16;
  const cuda::CudaLoss& kernel = state.cuda_kernel(dtype);
  EvalOptions eval;
  eval.params = params;
  const std::vector<double> values = param_values(loss, eval);
  const auto tensor_options = inputs.front().options().requires_grad(false);
  KernelOutput out;
  out.loss = at::empty({inputs.front().size(0)}, tensor_options.dtype(is_16_bit(type) ? at::kFloat : type));
  out.grads.resize(inputs.size());
  cuda::LaunchArgs args;
  args.rows = inputs.front().size(0);
  long long max_width = 1;
  for (size_t i = 0; i < inputs.size(); ++i) {
    args.inputs[i] = inputs[i].data_ptr();
    args.widths[i] = static_cast<long long>(row_width(inputs[i]));
    if (loss.inputs[i].type.is_vec()) max_width = std::max(max_width, args.widths[i]);
  }
  for (size_t p = 0; p < values.size(); ++p) args.params[p] = values[p];
  args.loss = out.loss.data_ptr();
  // The kernel always writes the gradients: into tensors dropped when none was
  // asked for, held until the launch so that no two share the allocator's block.
  std::vector<at::Tensor> grads;
  for (size_t index : loss.pred_inputs()) {
    grads.push_back(at::empty(inputs[index].sizes(), tensor_options));
    args.grads[grads.size() - 1] = grads.back().data_ptr();
    if (gradients) out.grads[index] = grads.back();
  }
  kernel.launch(args, max_width, c10::cuda::getCurrentCUDAStream(0).stream());
  return out;
}
#endif

// The one place that picks a back end by device (check_device says which there are).
KernelOutput run_loss_kernel(TorchLoss::State& state, const std::vector<at::Tensor>& inputs, bool gradients,
                             const std::vector<double>& params) {
  const at::ScalarType type = inputs.front().scalar_type();
#if LOSSFORGE_TORCH_CUDA
  if (inputs.front().is_cuda()) return run_cuda(state, inputs, gradients, params);
#endif
  if (is_16_bit(type)) {
    // On the CPU, 16-bit tensors go through the float kernel, as the CUDA
    // kernels of their dtype compute: float arithmetic, gradients rounded back.
    std::vector<at::Tensor> widened;
    for (const at::Tensor& t : inputs) widened.push_back(t.to(at::kFloat));
    KernelOutput out = run_cpu<float>(state, widened, gradients, params);
    for (at::Tensor& g : out.grads)
      if (g.defined()) g = g.to(type);
    return out;
  }
  return type == at::kFloat ? run_cpu<float>(state, inputs, gradients, params)
                            : run_cpu<double>(state, inputs, gradients, params);
}

// What forward hands to backward besides tensors.
struct Call {
  TorchLoss::State* state;
  const LossOptions* options;
};

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct LossFunction : torch::autograd::Function<LossFunction> {
  // Variables: the inputs, then the weight (optional).
  static at::Tensor forward(AutogradContext* ctx, at::TensorList inputs, c10::optional<at::Tensor> weight,
                            Call call) {
    const Loss& loss = call.state->loss;
    bool any_grad = false;
    for (size_t i : loss.pred_inputs()) any_grad = any_grad || inputs[i].requires_grad();
    const std::vector<at::Tensor> tensors(inputs.begin(), inputs.end());
    KernelOutput out = run_loss_kernel(*call.state, tensors, any_grad, call.options->params);

    at::Tensor l = out.loss;
    at::Tensor weighted = weight ? l * *weight : l;
    const int64_t rows = l.size(0);
    double factor = 1;
    at::Tensor result;
    switch (call.options->reduction) {
      case Reduction::None:
        result = weighted;
        break;
      case Reduction::Sum:
        result = weighted.sum();
        break;
      case Reduction::Mean:
        factor = 1.0 / (call.options->avg_factor ? *call.options->avg_factor : double(std::max<int64_t>(rows, 1)));
        result = weighted.sum() * factor;
        break;
    }
    ctx->saved_data["reduction"] = static_cast<int64_t>(call.options->reduction);
    ctx->saved_data["factor"] = factor;
    ctx->saved_data["count"] = static_cast<int64_t>(inputs.size());
    for (size_t i = 0; i < out.grads.size(); ++i)
      if (out.grads[i].defined()) ctx->saved_data["g" + std::to_string(i)] = out.grads[i];
    if (weight) {
      ctx->saved_data["weight"] = *weight;
      if (weight->requires_grad()) ctx->saved_data["loss"] = l;
    }
    return result;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto reduction = static_cast<Reduction>(ctx->saved_data["reduction"].toInt());
    const double factor = ctx->saved_data["factor"].toDouble();
    const int64_t count = ctx->saved_data["count"].toInt();
    at::Tensor go = grad_outputs[0];
    // Per row (None) or overall (Sum, Mean): how much one unit of w·l moves the output.
    at::Tensor scale = reduction == Reduction::None ? go : go * factor;
    at::Tensor weight;
    if (ctx->saved_data.count("weight")) weight = ctx->saved_data["weight"].toTensor();
    at::Tensor row_scale = weight.defined() ? scale * weight : scale;  // [N] or a scalar
    variable_list grads(count + 2);  // one per forward argument: the inputs, the weight, the call
    for (int64_t i = 0; i < count; ++i) {
      auto it = ctx->saved_data.find("g" + std::to_string(i));
      if (it == ctx->saved_data.end()) continue;
      at::Tensor g = it->second.toTensor();
      // In the input's dtype: 16-bit gradients are scaled in float (the scale is) and rounded back.
      grads[i] = (row_scale.dim() == 1 && g.dim() == 2 ? g * row_scale.unsqueeze(1) : g * row_scale).to(g.scalar_type());
    }
    if (ctx->saved_data.count("loss"))
      grads[count] = (ctx->saved_data["loss"].toTensor() * scale).to(weight.scalar_type());
    return grads;
  }
};

}  // namespace

TorchLoss::TorchLoss(Loss loss) : state_(std::make_shared<State>()) { state_->loss = std::move(loss); }

const Loss& TorchLoss::loss() const { return state_->loss; }

std::string TorchLoss::signature() const {
  std::string out = "(";
  for (const LossInput& in : state_->loss.inputs) out += (out.size() > 1 ? ", " : "") + input_text(in);
  return out + ")";
}

at::Tensor TorchLoss::operator()(const std::vector<at::Tensor>& inputs, const LossOptions& options) const {
  check_tensors(state_->loss, signature(), inputs, options);
  c10::optional<at::Tensor> weight;
  if (options.weight.defined()) weight = options.weight;
  return LossFunction::apply(at::TensorList(inputs), weight, Call{state_.get(), &options});
}

TorchLoss load_loss(const std::string& path, const std::string& name) {
  const Module module = load_module(SourceFile::read(path));
  if (name.empty()) {
    if (module.losses.size() == 1) return TorchLoss(module.losses.front());
    std::string names;
    for (const Loss& loss : module.losses) names += (names.empty() ? "" : ", ") + loss.name;
    throw InputError(path + (module.losses.empty() ? ": defines no loss" : ": defines several losses; name one (" + names + ")"));
  }
  if (const Loss* loss = module.find(name)) return TorchLoss(*loss);
  throw InputError(path + ": no loss named '" + name + "'");
}

TorchLoss load_formula(const std::string& text, const std::string& preset_name) {
  const Preset* preset = find_preset(preset_name);
  if (!preset) throw InputError("unknown preset '" + preset_name + "' (presets: " + preset_names() + ")");
  return TorchLoss(lossforge::load_formula(SourceFile::from_text("<formula>", text), *preset));
}

}  // namespace lossforge::torch_ops
