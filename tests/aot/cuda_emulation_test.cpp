// The whole CUDA kernels (compiler/codegen_cuda.hpp) on the host: the
// generated CUDA source, compiled by the system C++ compiler with the dialect
// of cuda_host_emulation.hpp and launched on its emulated threads, against
// the interpreter. The row code alone is checked by cpp_codegen_test.cpp; this
// reaches what surrounds it in a kernel before any GPU runs it: the
// grid-stride loops of the rows, warp and block layouts, the shuffle and
// shared-memory reductions, four rows per thread with quad accesses and a
// partial last quad, the aligned and unaligned paths, f16/bf16 storage,
// weights, scales and the atomic total. The cases mirror the GPU tests of
// tests/cuda/ (the same candidates and tolerances), so a failure there that
// does not show here points at the device rather than the generated code.
#include <gtest/gtest.h>

#include <cstring>
#include <iostream>
#include <iterator>
#include <memory>

#include "compiler/codegen_c.hpp"
#include "compiler/codegen_cuda.hpp"
#include "generated_support.hpp"
#include "shared_object.hpp"

namespace lossforge::generated_testing {
namespace {

using Runner = int (*)(const Launch*, unsigned grid, unsigned threads, unsigned long long seed);

constexpr CudaDType kDtypes[] = {CudaDType::F32, CudaDType::F64, CudaDType::F16, CudaDType::BF16};

std::vector<CudaLayout> layouts_of(const Loss& loss) {
  if (c_codegen::has_columns(loss)) return {CudaLayout::Warp, CudaLayout::Block};
  return {CudaLayout::Rows};
}

// Every kernel of `losses`, all four dtypes, in one translation unit, each
// with an entry point that launches it on the emulated device.
class EmulatedKernels {
 public:
  EmulatedKernels(const std::vector<Loss>& losses, const std::string& name) {
    std::string source = "#include \"" LOSSFORGE_SOURCE_DIR "/tests/aot/cuda_host_emulation.hpp\"\n";
    for (size_t i = 0; i < losses.size(); ++i) {
      kernels_.push_back(kernel_of(losses[i]));
      CudaEmitOptions options;
      options.dtypes.assign(std::begin(kDtypes), std::end(kDtypes));
      options.symbol = "k" + std::to_string(i);
      options.preamble = i == 0;
      source += emit_cuda(kernels_.back(), options);
      for (CudaDType dtype : kDtypes)
        for (CudaLayout layout : layouts_of(losses[i])) {
          const std::string kernel = cuda_kernel_name(options.symbol, dtype, layout);
          source += "extern \"C\" int run_" + kernel +
                    "(const void* a, unsigned grid, unsigned threads, unsigned long long seed) {\n"
                    "  return lossforge_emulation::launch(" + kernel +
                    ", *static_cast<const LossforgeLaunch*>(a), grid, threads, seed);\n}\n";
        }
    }
    object_ = std::make_unique<SharedObject>(source, name);
    std::cout << "[ compiled ] " << losses.size() << " losses, " << source.size() / 1024 << " KiB of CUDA in "
              << object_->seconds() << " s\n";
  }
  size_t size() const { return kernels_.size(); }
  const Kernel& kernel(size_t i) const { return kernels_[i]; }
  Runner runner(size_t i, CudaDType dtype, CudaLayout layout) const {
    return object_->function<Runner>("run_" + cuda_kernel_name("k" + std::to_string(i), dtype, layout));
  }

 private:
  std::vector<Kernel> kernels_;
  std::unique_ptr<SharedObject> object_;
};

// A device-like array of one dtype, on a 16-byte boundary or one element
// past it (the kernels' unaligned path), between two guard bands that
// intact() checks: a kernel writing outside its arrays fails the test (on a
// GPU it would corrupt memory, or fault).
class Buffer {
 public:
  Buffer(size_t count, CudaDType dtype, bool aligned)
      : dtype_(dtype), bytes_(size_t(cuda_dtype_bytes(dtype))), offset_(kGuard + (aligned ? 0 : bytes_)),
        end_(offset_ + count * bytes_), memory_((end_ + kGuard + 15) / 16) {
    std::memset(memory_.data(), kPattern, memory_.size() * 16);
  }
  void* data() { return base() + offset_; }
  bool intact() {
    for (size_t b = 0; b < memory_.size() * 16; ++b)
      if ((b < offset_ || b >= end_) && base()[b] != kPattern) return false;
    return true;
  }
  // Stores `value` as the dtype holds it (16-bit: rounded to nearest even).
  void set(size_t k, double value) {
    unsigned char* at = base() + offset_ + k * bytes_;
    if (dtype_ == CudaDType::F64) {
      std::memcpy(at, &value, 8);
    } else if (dtype_ == CudaDType::F32) {
      const float f = float(value);
      std::memcpy(at, &f, 4);
    } else {
      const unsigned short bits = to_storage_bits(dtype_, float(value));
      std::memcpy(at, &bits, 2);
    }
  }
  double get(size_t k) {
    const unsigned char* at = base() + offset_ + k * bytes_;
    if (dtype_ == CudaDType::F64) {
      double d;
      std::memcpy(&d, at, 8);
      return d;
    }
    if (dtype_ == CudaDType::F32) {
      float f;
      std::memcpy(&f, at, 4);
      return f;
    }
    unsigned short bits;
    std::memcpy(&bits, at, 2);
    return from_storage_bits(dtype_, bits);
  }

 private:
  static constexpr size_t kGuard = 64;
  static constexpr unsigned char kPattern = 0xa5;
  struct alignas(16) Chunk {
    unsigned char bytes[16];
  };
  unsigned char* base() { return reinterpret_cast<unsigned char*>(memory_.data()); }
  CudaDType dtype_;
  size_t bytes_, offset_, end_;
  std::vector<Chunk> memory_;
};

struct Case {
  CudaDType dtype = CudaDType::F32;
  CudaLayout layout = CudaLayout::Rows;
  size_t rows = 37;
  size_t width = kWidth;  // of every real[C]
  unsigned grid = 2, threads = 64;
  bool aligned = true;
  bool weighted = false;
  double scale = 1;  // loss_scale and grad_scale
  unsigned long long schedule = 0;  // the emulation's scheduling seed (0: thread order)

  std::string str() const {
    return std::string(cuda_dtype_name(dtype)) + " " + cuda_layout_name(layout) + " rows=" + std::to_string(rows) +
           " C=" + std::to_string(width) + " <<<" + std::to_string(grid) + ", " + std::to_string(threads) + ">>>" +
           (aligned ? "" : " unaligned") + (weighted ? " weighted" : "") + " scale=" + std::to_string(scale) +
           " schedule=" + std::to_string(schedule);
  }
};

// CUDA f32 and f64 as in tests/cuda/; f16 and bf16: one 16-bit ulp.
double tolerance(CudaDType dtype) {
  switch (dtype) {
    case CudaDType::F32: return 5e-4;
    case CudaDType::F64: return 1e-9;
    case CudaDType::F16: return 2e-3;
    case CudaDType::BF16: return 1.6e-2;
  }
  return 0;
}

// Launches kernel `i` on a random batch as `c` says and compares the per-row
// losses, the gradients and the total with the interpreter's roots run in the
// kernel's compute type on the inputs as the dtype stores them.
template <class T>
void check_case(const EmulatedKernels& emulated, size_t i, const Case& c, std::mt19937_64& rng) {
  const Kernel& kernel = emulated.kernel(i);
  SCOPED_TRACE(kernel.loss.name + " " + c.str());
  const CudaDType loss_dtype = c.dtype == CudaDType::F64 ? CudaDType::F64 : CudaDType::F32;
  Batch<double> batch = random_batch(kernel.loss, c.rows, rng, c.width);
  Launch launch;
  launch.rows = (long long)c.rows;
  std::vector<Buffer> inputs;
  for (size_t k = 0; k < batch.size(); ++k) {
    Array<double>& input = batch[k];
    Buffer& buffer = inputs.emplace_back(input.data.size(), c.dtype, c.aligned);
    for (size_t e = 0; e < input.data.size(); ++e) {
      buffer.set(e, input.data[e]);
      input.data[e] = buffer.get(e);  // what the kernel reads
    }
    launch.inputs[k] = buffer.data();
    launch.widths[k] = (long long)input.width;
  }
  for (size_t p = 0; p < kernel.loss.params.size(); ++p) launch.params[p] = kernel.loss.params[p].value;
  Buffer weights(c.rows, c.dtype, c.aligned);
  std::vector<double> weight(c.rows, 1.0);
  if (c.weighted) {
    for (size_t r = 0; r < c.rows; ++r) {
      weights.set(r, uniform(rng, 0, 2));
      weight[r] = weights.get(r);
    }
    launch.weight = weights.data();
  }
  constexpr double kUnwritten = -12345;
  Buffer loss(c.rows, loss_dtype, c.aligned);
  for (size_t r = 0; r < c.rows; ++r) loss.set(r, kUnwritten);
  launch.loss = loss.data();
  std::vector<Buffer> grads;
  for (size_t g = 0; g < kernel.gradients.size(); ++g) {
    const size_t count = batch[kernel.gradients[g].input].data.size();
    Buffer& grad = grads.emplace_back(count, c.dtype, c.aligned);
    for (size_t e = 0; e < count; ++e) grad.set(e, kUnwritten);
    launch.grads[g] = grad.data();
  }
  double total = 0;
  launch.total = &total;
  launch.loss_scale = launch.grad_scale = c.scale;

  ASSERT_EQ(emulated.runner(i, c.dtype, c.layout)(&launch, c.grid, c.threads, c.schedule), 0)
      << "threads deadlocked at a rendezvous (a divergent shuffle or __syncthreads), a partial shuffle mask "
         "or a misaligned vector store";

  bool intact = loss.intact() && weights.intact();
  for (Buffer& buffer : inputs) intact = intact && buffer.intact();
  for (Buffer& buffer : grads) intact = intact && buffer.intact();
  EXPECT_TRUE(intact) << "the kernel wrote outside its arrays";

  const Evaluation<T> expected = interpret_roots<T>(kernel, as<T>(batch));
  Evaluation<T> actual, wanted;
  double expected_total = 0, magnitude = 0;
  for (size_t r = 0; r < c.rows; ++r) {
    const T l = expected.loss[r] * T(weight[r]);  // the kernel's loss x weight, in T
    actual.loss.push_back(T(loss.get(r)));
    wanted.loss.push_back(l);
    expected_total += double(l);
    magnitude += std::fabs(double(l));
  }
  for (size_t g = 0; g < grads.size(); ++g) {
    const Array<T>& want = expected.grads[g];
    Array<T>& got = actual.grads.emplace_back(want.rows, want.width);
    Array<T>& scaled = wanted.grads.emplace_back(want.rows, want.width);
    for (size_t r = 0; r < want.rows; ++r)
      for (size_t k = 0; k < want.width; ++k) {
        const size_t e = r * want.width + k;
        got.data[e] = T(grads[g].get(e));
        // The kernel multiplies by gscale = weight x grad_scale, then stores in the dtype.
        const T value = want.data[e] * (T(weight[r]) * T(c.scale));
        scaled.data[e] = c.dtype == CudaDType::F16 || c.dtype == CudaDType::BF16
                             ? T(round_to_storage(c.dtype, float(value)))
                             : value;
      }
  }
  EXPECT_TRUE(same_evaluation(actual, wanted, "", tolerance(c.dtype)));
  if (std::isfinite(expected_total))
    EXPECT_NEAR(total, expected_total * c.scale, tolerance(c.dtype) * (magnitude + 1) * c.scale);
  else
    EXPECT_FALSE(std::isfinite(total)) << "a non-finite row must reach the total";
}

void check(const EmulatedKernels& emulated, size_t i, const Case& c, std::mt19937_64& rng) {
  if (c.dtype == CudaDType::F64) check_case<double>(emulated, i, c, rng);
  else check_case<float>(emulated, i, c, rng);
}

// Every example in every dtype and layout: a grid of two small blocks, so the
// grid-stride loops turn; rows of 81 (more than a warp's 32 lanes), weights
// and a mean's scale, aligned and not, threads in order and shuffled; a
// single row of 5.
TEST(CudaEmulated, ExamplesInEveryDtypeAndLayout) {
  const std::vector<Loss> examples = example_losses();
  ASSERT_GE(examples.size(), 9u);
  const EmulatedKernels emulated(examples, "cuda_examples");
  std::mt19937_64 rng(11);
  for (size_t i = 0; i < emulated.size(); ++i)
    for (CudaDType dtype : kDtypes)
      for (CudaLayout layout : layouts_of(emulated.kernel(i).loss)) {
        Case c;
        c.dtype = dtype;
        c.layout = layout;
        c.rows = 1;
        check(emulated, i, c, rng);
        for (bool aligned : {true, false}) {
          c.rows = 1003;  // 250 whole quads and a partial one; 2 x 64 threads take a few each
          if (layout != CudaLayout::Rows) c.rows = 37;
          c.width = 81;
          c.aligned = aligned;
          c.weighted = !aligned;
          c.scale = aligned ? 1.0 : 1.0 / 17.5;
          c.schedule = aligned ? 0 : 1 + i;  // thread order, then a shuffled one
          check(emulated, i, c, rng);
        }
      }
}

// The launch the engine makes (256 threads per block), a block per row on rows
// wider than the block, and rows narrower than a warp.
TEST(CudaEmulated, FullBlocksWideAndNarrowRows) {
  std::vector<Loss> losses;
  for (const Loss& loss : example_losses())
    if (loss.name == "cross_entropy" || loss.name == "sigmoid_focal" || loss.name == "giou") losses.push_back(loss);
  ASSERT_EQ(losses.size(), 3u);
  const EmulatedKernels emulated(losses, "cuda_launches");
  std::mt19937_64 rng(12);
  for (size_t i = 0; i < emulated.size(); ++i)
    for (CudaDType dtype : {CudaDType::F32, CudaDType::BF16}) {
      for (CudaLayout layout : layouts_of(emulated.kernel(i).loss)) {
        Case c;
        c.dtype = dtype;
        c.layout = layout;
        c.grid = 3;
        c.threads = 256;
        c.rows = layout == CudaLayout::Rows ? 5000 : 41;
        c.width = 81;
        c.weighted = true;
        c.schedule = 101 + i;
        check(emulated, i, c, rng);
      }
      if (c_codegen::has_columns(emulated.kernel(i).loss))
        for (size_t width : {size_t(3), size_t(300)}) {
          Case c;
          c.dtype = dtype;
          c.layout = width > 32 ? CudaLayout::Block : CudaLayout::Warp;
          c.width = width;
          c.rows = 9;
          check(emulated, i, c, rng);
        }
    }
}

// The random candidates of tests/cuda/ (the same presets, counts and seeds),
// float and double, and f16 for a share of them.
TEST(CudaEmulated, RandomCandidatesMatchTheInterpreter) {
  std::vector<Loss> losses;
  for (const Preset& preset : all_presets()) {
    std::vector<Loss> some = random_candidates(preset, 40, 77 + preset.name.size());
    losses.insert(losses.end(), some.begin(), some.end());
  }
  const EmulatedKernels emulated(losses, "cuda_candidates");
  std::mt19937_64 rng(13);
  for (size_t i = 0; i < emulated.size(); ++i)
    for (CudaDType dtype : {CudaDType::F32, CudaDType::F64, CudaDType::F16}) {
      if (dtype == CudaDType::F16 && i % 4 != 0) continue;
      Case c;
      c.dtype = dtype;
      c.layout = layouts_of(emulated.kernel(i).loss).front();
      c.aligned = i % 3 != 0;
      c.schedule = i % 2 ? 0 : 1001 + i;
      check(emulated, i, c, rng);
    }
}

}  // namespace
}  // namespace lossforge::generated_testing
