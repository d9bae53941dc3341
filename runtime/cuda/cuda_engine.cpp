#include "runtime/cuda/cuda_engine.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "compiler/canonical.hpp"
#include "compiler/codegen_c.hpp"
#include "compiler/error.hpp"
#include "compiler/simplify.hpp"
#include "runtime/cuda/driver.hpp"
#include "runtime/cuda/nvrtc_compiler.hpp"
#include "runtime/input_check.hpp"

namespace lossforge::cuda {
namespace {

// Every kernel compiled by the engine has this symbol, whatever the loss is
// called: the cache key names the formula, not its name.
constexpr const char* kSymbol = "lossforge_kernel";

// Device memory for one evaluation, freed on every path.
class DeviceBuffer {
 public:
  DeviceBuffer(const Driver& driver, size_t bytes) : driver_(driver) {
    if (bytes) driver.check(driver.cuMemAlloc(&ptr_, bytes), "cannot allocate " + std::to_string(bytes) + " bytes");
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept : driver_(other.driver_), ptr_(std::exchange(other.ptr_, 0)) {}
  ~DeviceBuffer() {
    if (ptr_) driver_.cuMemFree(ptr_);
  }
  CUdeviceptr get() const { return ptr_; }
  void* pointer() const { return reinterpret_cast<void*>(ptr_); }

 private:
  const Driver& driver_;
  CUdeviceptr ptr_ = 0;
};

// Cache payload: "cubin 90\n" or "ptx 90\n", then the image.
std::string encode(const CudaImage& image) {
  return std::string(image.cubin ? "cubin " : "ptx ") + std::to_string(image.arch) + "\n" + image.bytes;
}
std::optional<CudaImage> decode(const std::string& payload) {
  const size_t newline = payload.find('\n');
  if (newline == std::string::npos) return std::nullopt;
  const std::string head = payload.substr(0, newline);
  CudaImage image;
  if (head.rfind("cubin ", 0) == 0) image.cubin = true;
  else if (head.rfind("ptx ", 0) != 0) return std::nullopt;
  image.arch = std::atoi(head.c_str() + head.find(' ') + 1);
  image.bytes = payload.substr(newline + 1);
  return image;
}

KernelKey cache_key(const Loss& canonical, const CudaOptions& options, const Driver& driver, const std::string& source) {
  KernelKey key;
  key.loss_hash = canonical_hash(canonical.body);
  key.backend = "cuda";
  key.target = "sm_" + std::to_string(driver.arch);
  key.dtype = cuda_dtype_name(options.dtype);
  key.compiler_version = nvrtc_version();
  for (const LossInput& input : canonical.inputs) key.variant += input.type.str() + (input.pred ? " pred;" : ";");
  key.variant += "params=" + std::to_string(canonical.params.size());
  key.variant += options.gradients ? ";gradients" : ";forward";
  // The generated source itself: a change of the code generator or of the
  // embedded semantics must not load kernels compiled from the old one.
  char source_hash[17];
  std::snprintf(source_hash, sizeof source_hash, "%016llx", static_cast<unsigned long long>(stable_hash(source)));
  key.variant += ";source=" + std::string(source_hash);
  return key;
}

// Host arrays of a 16-bit dtype, rounded as the kernels round.
template <class T>
std::vector<unsigned short> to_storage(CudaDType dtype, const T* data, size_t count) {
  std::vector<unsigned short> out(count);
  for (size_t k = 0; k < count; ++k)
    out[k] = to_storage_bits(dtype, float(data[k]));
  return out;
}
template <class T>
void from_storage(CudaDType dtype, const std::vector<unsigned short>& stored, T* out) {
  for (size_t k = 0; k < stored.size(); ++k)
    out[k] = T(from_storage_bits(dtype, stored[k]));
}

unsigned grid_for(long long units, int multiprocessors) {
  const long long cap = std::max(1, multiprocessors) * 32LL;
  return unsigned(std::clamp<long long>(units, 1, cap));
}

}  // namespace

struct CudaLoss::Impl {
  Loss loss;
  CudaOptions options;
  bool gradients = false;
  std::string source;
  CudaImage image;
  bool from_cache = false;
  CUmodule module = nullptr;
  CUfunction rows = nullptr, warp = nullptr, block = nullptr;

  ~Impl() {
    if (module && cuda_device_available()) cuda_driver().cuModuleUnload(module);
  }

  void load() {
    const Driver& driver = cuda_driver();
    driver.make_current();
    driver.check(driver.cuModuleLoadData(&module, image.bytes.c_str()), "cannot load the kernel of '" + loss.name + "'");
    auto get = [&](CudaLayout layout, CUfunction& out) {
      const std::string name = cuda_kernel_name(kSymbol, options.dtype, layout);
      driver.check(driver.cuModuleGetFunction(&out, module, name.c_str()), "the module has no " + name);
    };
    if (c_codegen::has_columns(loss)) {
      get(CudaLayout::Warp, warp);
      get(CudaLayout::Block, block);
    } else {
      get(CudaLayout::Rows, rows);
    }
  }

  void launch(const LaunchArgs& args, long long max_width, void* stream) const {
    if (args.rows <= 0) return;
    const Driver& driver = cuda_driver();
    driver.make_current();
    const CudaLayout layout = cuda_layout(loss, max_width);
    const long long threads = kCudaBlockSize;
    CUfunction f = nullptr;
    unsigned blocks = 1;
    switch (layout) {
      case CudaLayout::Rows:
        f = rows;
        blocks = grid_for((args.rows + threads * 4 - 1) / (threads * 4), driver.multiprocessors);
        break;
      case CudaLayout::Warp:
        f = warp;
        blocks = grid_for((args.rows + threads / 32 - 1) / (threads / 32), driver.multiprocessors);
        break;
      case CudaLayout::Block:
        f = block;
        blocks = grid_for(args.rows, driver.multiprocessors);
        break;
    }
    LaunchArgs copy = args;
    void* params[] = {&copy};
    driver.check(driver.cuLaunchKernel(f, blocks, 1, 1, unsigned(threads), 1, 1, 0, static_cast<CUstream>(stream), params,
                                       nullptr),
                 "cannot launch the kernel of '" + loss.name + "'");
  }

  static std::unique_ptr<Impl> generate(const Kernel& kernel, const CudaOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->loss = kernel.loss;
  impl->options = options;
  impl->gradients = kernel.has_gradients();
  impl->options.gradients = impl->gradients;
  CudaEmitOptions emit;
  emit.dtypes = {options.dtype};
  emit.symbol = kSymbol;
  emit.min_blocks_per_sm = options.min_blocks_per_sm;
  impl->source = emit_cuda(kernel, emit);
  return impl;
}

  // A batch on the device: the inputs (and weights) in the kernel's dtype,
  // the per-row loss, gradient and total arrays, and the launch block naming
  // them; freed with it.
  struct DeviceBatch {
    std::vector<DeviceBuffer> buffers;
    LaunchArgs args;
    long long max_width = 1;
    std::vector<size_t> grad_sizes;  // values per gradient array
    CUdeviceptr loss = 0, total = 0;
  };

  template <class T>
  DeviceBatch upload(std::span<const Array<T>> inputs, const ReduceOptions& reduce, const EvalOptions& eval) const {
    if ((compute_dtype(options.dtype) == DType::F32) != std::is_same_v<T, float>)
      throw std::invalid_argument("CudaLoss: '" + loss.name + "' was compiled for " + cuda_dtype_name(options.dtype));
    if (eval.gradients && !gradients && !loss.pred_inputs().empty())
      throw std::invalid_argument("CudaLoss: '" + loss.name + "' was compiled without gradients");
    const BatchShape shape = check_inputs(loss, inputs);
    const std::vector<double> params = param_values(loss, eval);
    if (!reduce.weights.empty() && reduce.weights.size() != shape.rows)
      throw InputError("weights: " + std::to_string(reduce.weights.size()) + " values for " +
                       std::to_string(shape.rows) + " rows");
    const Driver& driver = cuda_driver();
    driver.make_current();
    DeviceBatch batch;
    LaunchArgs& args = batch.args;
    args.rows = (long long)shape.rows;
    for (size_t p = 0; p < params.size(); ++p) args.params[p] = params[p];
    auto allocate = [&](size_t bytes) {
      batch.buffers.emplace_back(driver, bytes);
      return batch.buffers.back().get();
    };
    // Arrays of the kernel's element type (16-bit ones converted here).
    auto upload_as_dtype = [&](const T* data, size_t count) {
      const bool same = cuda_dtype_bytes(options.dtype) == int(sizeof(T));
      const std::vector<unsigned short> stored = same ? std::vector<unsigned short>() : to_storage(options.dtype, data, count);
      const void* host = same ? static_cast<const void*>(data) : stored.data();
      const size_t bytes = count * size_t(cuda_dtype_bytes(options.dtype));
      const CUdeviceptr device = allocate(bytes);
      if (bytes) driver.check(driver.cuMemcpyHtoD(device, host, bytes), "cannot copy to the device");
      return reinterpret_cast<const void*>(device);
    };
    for (size_t i = 0; i < inputs.size(); ++i) {
      args.inputs[i] = upload_as_dtype(inputs[i].data.data(), inputs[i].data.size());
      args.widths[i] = (long long)inputs[i].width;
      if (loss.inputs[i].type.is_vec()) batch.max_width = std::max(batch.max_width, args.widths[i]);
    }
    if (!reduce.weights.empty()) {
      const std::vector<T> weights(reduce.weights.begin(), reduce.weights.end());
      args.weight = upload_as_dtype(weights.data(), weights.size());
    }
    batch.loss = allocate(shape.rows * sizeof(T));
    args.loss = reinterpret_cast<void*>(batch.loss);
    if (eval.gradients && gradients)
      for (size_t index : loss.pred_inputs()) {
        batch.grad_sizes.push_back(inputs[index].data.size());
        args.grads[batch.grad_sizes.size() - 1] =
            reinterpret_cast<void*>(allocate(inputs[index].data.size() * size_t(cuda_dtype_bytes(options.dtype))));
      }
    batch.total = allocate(sizeof(double));
    driver.check(driver.cuMemsetD8(batch.total, 0, sizeof(double)), "cannot clear the total");
    double scale = 1;
    if (reduce.reduction == Reduction::Mean) scale = 1.0 / double(std::max<size_t>(shape.rows, 1));
    if (reduce.reduction != Reduction::None && reduce.avg_factor > 0) scale = 1.0 / reduce.avg_factor;
    if (reduce.reduction != Reduction::None) args.total = reinterpret_cast<double*>(batch.total);
    args.loss_scale = scale;
    args.grad_scale = scale;
    return batch;
  }

  template <class T>
  Reduced<T> run(std::span<const Array<T>> inputs, const ReduceOptions& reduce, const EvalOptions& eval) const {
    const DeviceBatch batch = upload<T>(inputs, reduce, eval);
    const size_t rows = size_t(batch.args.rows);
    Reduced<T> result;
    result.rows.loss.resize(rows);
    for (size_t g = 0; g < batch.grad_sizes.size(); ++g)
      result.rows.grads.emplace_back(rows, inputs[loss.pred_inputs()[g]].width);
    if (rows == 0) return result;
    const Driver& driver = cuda_driver();
    launch(batch.args, batch.max_width, nullptr);
    driver.check(driver.cuCtxSynchronize(), "the kernel of '" + loss.name + "' failed");
    driver.check(driver.cuMemcpyDtoH(result.rows.loss.data(), batch.loss, rows * sizeof(T)), "cannot copy the loss back");
    const size_t element_bytes = size_t(cuda_dtype_bytes(options.dtype));
    for (size_t g = 0; g < result.rows.grads.size(); ++g) {
      std::vector<T>& grad = result.rows.grads[g].data;
      const CUdeviceptr device = reinterpret_cast<CUdeviceptr>(batch.args.grads[g]);
      if (element_bytes == sizeof(T)) {
        driver.check(driver.cuMemcpyDtoH(grad.data(), device, grad.size() * sizeof(T)), "cannot copy a gradient back");
        continue;
      }
      std::vector<unsigned short> stored(grad.size());
      driver.check(driver.cuMemcpyDtoH(stored.data(), device, stored.size() * sizeof(unsigned short)),
                   "cannot copy a gradient back");
      from_storage(options.dtype, stored, grad.data());
    }
    if (batch.args.total)
      driver.check(driver.cuMemcpyDtoH(&result.total, batch.total, sizeof(double)), "cannot copy the total back");
    return result;
  }

  template <class T>
  double time_launch(std::span<const Array<T>> inputs, const EvalOptions& eval, double min_seconds) const {
    const DeviceBatch batch = upload<T>(inputs, ReduceOptions{}, eval);
    if (batch.args.rows == 0) return 0;
    const Driver& driver = cuda_driver();
    using Clock = std::chrono::steady_clock;
    // Batches of back-to-back launches amortise the launch and synchronise
    // costs; the batch doubles until it takes a millisecond.
    auto run_batch = [&](int launches) {
      const auto start = Clock::now();
      for (int i = 0; i < launches; ++i) launch(batch.args, batch.max_width, nullptr);
      driver.check(driver.cuCtxSynchronize(), "the kernel of '" + loss.name + "' failed");
      return std::chrono::duration<double>(Clock::now() - start).count();
    };
    int launches = 1;
    while (run_batch(launches) < 1e-3 && launches < (1 << 16)) launches *= 2;
    std::vector<double> per_launch;
    const auto start = Clock::now();
    do {
      per_launch.push_back(run_batch(launches) / launches);
    } while (per_launch.size() < 3 || std::chrono::duration<double>(Clock::now() - start).count() < min_seconds);
    std::sort(per_launch.begin(), per_launch.end());
    return per_launch[per_launch.size() / 2];
  }
};

CudaLoss::CudaLoss(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudaLoss::CudaLoss(CudaLoss&&) noexcept = default;
CudaLoss& CudaLoss::operator=(CudaLoss&&) noexcept = default;
CudaLoss::~CudaLoss() = default;

CudaLoss CudaLoss::compile(const Kernel& kernel, const CudaOptions& options) {
  const Driver& driver = cuda_driver();  // no device: fail before compiling anything
  auto impl = Impl::generate(kernel, options);
  impl->image = nvrtc_compile_for_device(impl->source, kernel.loss.name + ".cu", driver.arch);
  impl->load();
  return CudaLoss(std::move(impl));
}

CudaLoss CudaLoss::compile(const Loss& loss, const CudaOptions& options) {
  cuda_driver();
  return compile(options.gradients ? gradient_kernel(loss, differentiate(loss)) : forward_kernel(loss), options);
}

CudaLoss CudaLoss::compile_cached(const Loss& loss, const CudaOptions& options, KernelCache& cache) {
  const Driver& driver = cuda_driver();
  const Loss canonical = simplify(loss);
  const Kernel kernel =
      options.gradients ? gradient_kernel(canonical, differentiate(canonical)) : forward_kernel(canonical);
  auto impl = Impl::generate(kernel, options);
  const KernelKey key = cache_key(canonical, options, driver, impl->source);
  if (std::optional<std::string> payload = cache.lookup(key)) {
    if (std::optional<CudaImage> image = decode(*payload)) {
      impl->image = std::move(*image);
      try {
        impl->load();
        impl->from_cache = true;
        return CudaLoss(std::move(impl));
      } catch (const Error&) {
        impl->module = nullptr;  // an image the driver rejects: compile afresh and replace it
      }
    }
  }
  impl->image = nvrtc_compile_for_device(impl->source, canonical.name + ".cu", driver.arch);
  impl->load();
  cache.store(key, encode(impl->image));
  return CudaLoss(std::move(impl));
}

template <class T>
Evaluation<T> CudaLoss::evaluate(std::span<const Array<T>> inputs, const EvalOptions& options) const {
  return impl_->run<T>(inputs, ReduceOptions{}, options).rows;
}

template <class T>
Reduced<T> CudaLoss::reduce(std::span<const Array<T>> inputs, const ReduceOptions& reduce,
                            const EvalOptions& options) const {
  return impl_->run<T>(inputs, reduce, options);
}

template <class T>
double CudaLoss::time_launch(std::span<const Array<T>> inputs, const EvalOptions& options, double min_seconds) const {
  return impl_->time_launch<T>(inputs, options, min_seconds);
}

void CudaLoss::launch(const LaunchArgs& args, long long max_width, void* stream) const {
  impl_->launch(args, max_width, stream);
}

const Loss& CudaLoss::loss() const { return impl_->loss; }
const CudaOptions& CudaLoss::options() const { return impl_->options; }
bool CudaLoss::has_gradients() const { return impl_->gradients; }
const std::string& CudaLoss::source() const { return impl_->source; }
bool CudaLoss::loaded_from_cache() const { return impl_->from_cache; }

template Evaluation<float> CudaLoss::evaluate(std::span<const Array<float>>, const EvalOptions&) const;
template Evaluation<double> CudaLoss::evaluate(std::span<const Array<double>>, const EvalOptions&) const;
template Reduced<float> CudaLoss::reduce(std::span<const Array<float>>, const ReduceOptions&, const EvalOptions&) const;
template Reduced<double> CudaLoss::reduce(std::span<const Array<double>>, const ReduceOptions&, const EvalOptions&) const;
template double CudaLoss::time_launch(std::span<const Array<float>>, const EvalOptions&, double) const;
template double CudaLoss::time_launch(std::span<const Array<double>>, const EvalOptions&, double) const;

}  // namespace lossforge::cuda
