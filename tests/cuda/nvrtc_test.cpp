// NVRTC compiles the generated CUDA (compiler/codegen_cuda.hpp) to PTX and to
// an sm_90 CUBIN: every example loss in every dtype, and random candidates of
// each preset (f32; a few in f16 and bf16).
// This needs the toolkit only, no GPU. NVRTC costs tens of milliseconds per
// kernel, so within the CI budget (2 cores) the default is 250 candidates per
// preset to PTX, the first 50 of them also to a CUBIN;
// LOSSFORGE_NVRTC_CANDIDATES=1000 (bench/gpu/run.sh sets it) compiles 1,000
// per preset to both. Candidates share translation units (distinct symbols, one
// preamble); the time per kernel is printed.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <iostream>

#include "../aot/generated_support.hpp"
#include "compiler/codegen_cuda.hpp"
#include "compiler/error.hpp"
#include "runtime/cuda/nvrtc_compiler.hpp"

namespace lossforge::generated_testing {
namespace {

using cuda::CudaImage;
using cuda::nvrtc_compile;

constexpr size_t kCandidatesPerProgram = 25;

size_t candidates_per_preset() {
  const char* text = std::getenv("LOSSFORGE_NVRTC_CANDIDATES");
  return text && std::atoi(text) > 0 ? size_t(std::atoi(text)) : 250;
}
// CUBINs for the first this many of each preset (all of them when set by the environment).
size_t cubins_per_preset() { return std::getenv("LOSSFORGE_NVRTC_CANDIDATES") ? candidates_per_preset() : 50; }
constexpr int kArch = 90;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void expect_image(const CudaImage& image, bool cubin, const std::string& kernel) {
  EXPECT_EQ(image.cubin, cubin);
  if (cubin) {
    ASSERT_GE(image.bytes.size(), 4u);
    EXPECT_EQ(image.bytes.substr(0, 4), "\x7f" "ELF");
  } else {
    EXPECT_NE(image.bytes.find(".target sm_90"), std::string::npos);
  }
  EXPECT_NE(image.bytes.find(kernel), std::string::npos) << "no kernel " << kernel;
}

TEST(Nvrtc, EveryExampleCompilesToPtxAndCubin) {
  // The first program in a process pays NVRTC's start-up; warm it up so the
  // per-kernel times below are the warm ones.
  nvrtc_compile("extern \"C\" __global__ void warm(float* x) { x[0] = 1; }", "warm.cu", kArch, false);
  double ptx_seconds = 0, cubin_seconds = 0;
  const std::vector<Loss> examples = example_losses();
  for (const Loss& loss : examples) {
    SCOPED_TRACE(loss.name);
    CudaEmitOptions options;
    options.dtypes = {CudaDType::F32, CudaDType::F64, CudaDType::F16, CudaDType::BF16};
    const std::string source = emit_cuda(loss, options);
    const std::string symbol = "lossforge_" + loss.name;
    auto start = std::chrono::steady_clock::now();
    const CudaImage ptx = nvrtc_compile(source, loss.name + ".cu", kArch, false);
    ptx_seconds += seconds_since(start);
    start = std::chrono::steady_clock::now();
    const CudaImage cubin = nvrtc_compile(source, loss.name + ".cu", kArch, true);
    cubin_seconds += seconds_since(start);
    for (CudaDType dtype : options.dtypes) {
      const std::string kernel = cuda_kernel_name(symbol, dtype, cuda_layout(loss, 81));
      expect_image(ptx, false, kernel);
      expect_image(cubin, true, kernel);
    }
  }
  std::cout << "[ nvrtc ] " << examples.size() << " examples (f32, f64, f16 and bf16 kernels each): "
            << 1000 * ptx_seconds / examples.size() << " ms to PTX, " << 1000 * cubin_seconds / examples.size()
            << " ms to an sm_90 CUBIN per loss\n";
}

TEST(Nvrtc, RandomCandidatesCompileToPtxAndCubin) {
  size_t kernels = 0, cubin_kernels = 0;
  double ptx_seconds = 0, cubin_seconds = 0;
  const size_t count = candidates_per_preset();
  for (const Preset& preset : all_presets()) {
    const std::vector<Loss> candidates = random_candidates(preset, count, 1000 + preset.name.size());
    ASSERT_EQ(candidates.size(), count);
    for (size_t first = 0; first < candidates.size(); first += kCandidatesPerProgram) {
      std::string source;
      std::vector<std::string> names;
      for (size_t i = first; i < std::min(candidates.size(), first + kCandidatesPerProgram); ++i) {
        CudaEmitOptions options;
        options.symbol = "k" + std::to_string(i);
        options.preamble = i == first;
        source += emit_cuda(candidates[i], options);
        names.push_back(cuda_kernel_name(options.symbol, CudaDType::F32, cuda_layout(candidates[i], 81)));
      }
      const std::string name = preset.name + "_" + std::to_string(first) + ".cu";
      auto start = std::chrono::steady_clock::now();
      const CudaImage ptx = nvrtc_compile(source, name, kArch, false);
      ptx_seconds += seconds_since(start);
      for (const std::string& kernel : names)
        EXPECT_NE(ptx.bytes.find(".entry " + kernel + "("), std::string::npos) << kernel;
      kernels += names.size();
      if (first >= cubins_per_preset()) continue;
      start = std::chrono::steady_clock::now();
      const CudaImage cubin = nvrtc_compile(source, name, kArch, true);
      cubin_seconds += seconds_since(start);
      for (const std::string& kernel : names) EXPECT_NE(cubin.bytes.find(kernel), std::string::npos) << kernel;
      cubin_kernels += names.size();
    }
  }
  EXPECT_EQ(kernels, count * all_presets().size());
  std::cout << "[ nvrtc ] candidates in programs of " << kCandidatesPerProgram << ": " << kernels << " to PTX, "
            << 1000 * ptx_seconds / kernels << " ms per candidate; " << cubin_kernels << " to an sm_90 CUBIN, "
            << 1000 * cubin_seconds / std::max<size_t>(cubin_kernels, 1) << " ms per candidate\n";
}

// The 16-bit kernels of random candidates compile too, and really move 16-bit
// values: their PTX loads and stores 16-bit words and converts binary16 with cvt.
TEST(Nvrtc, SixteenBitKernelsOfRandomCandidatesCompile) {
  for (const Preset& preset : all_presets()) {
    const std::vector<Loss> candidates = random_candidates(preset, 25, 2000 + preset.name.size());
    std::string source;
    std::vector<std::string> names;
    for (size_t i = 0; i < candidates.size(); ++i) {
      CudaEmitOptions options;
      options.dtypes = {CudaDType::F16, CudaDType::BF16};
      options.symbol = "k" + std::to_string(i);
      options.preamble = i == 0;
      source += emit_cuda(candidates[i], options);
      for (CudaDType dtype : options.dtypes)
        names.push_back(cuda_kernel_name(options.symbol, dtype, cuda_layout(candidates[i], 81)));
    }
    const std::string ptx = nvrtc_compile(source, preset.name + "_16bit.cu", kArch, false).bytes;
    for (const std::string& kernel : names) EXPECT_NE(ptx.find(".entry " + kernel + "("), std::string::npos) << kernel;
    EXPECT_NE(ptx.find("cvt.f32.f16"), std::string::npos) << preset.name;
    EXPECT_NE(ptx.find("cvt.rn.f16.f32"), std::string::npos) << preset.name;
    EXPECT_NE(ptx.find(".u16"), std::string::npos) << preset.name;
    EXPECT_EQ(ptx.find("ld.global.f32"), std::string::npos) << preset.name << ": a 16-bit kernel loads 32-bit floats";
  }
  // Element-wise losses read 4 rows of 16-bit values with one 8-byte load when aligned.
  CudaEmitOptions options;
  options.dtypes = {CudaDType::BF16};
  const Module focal = load_module(SourceFile::from_text("<test>", "loss f(pred x: real, y: real) = softplus(x) - x * y"));
  const std::string ptx = nvrtc_compile(emit_cuda(focal.losses.front(), options), "f.cu", kArch, false).bytes;
  EXPECT_NE(ptx.find("v4.u16"), std::string::npos);
}

// sigmoid(x) and softplus(x) both exponentiate -|x| (compiler/semantics.hpp:
// sigmoid's two branches take one exp), so NVRTC computes that exponential
// once: the f32 kernel of both (forward only) has as many ex2 instructions as
// softplus(x)'s alone; so does that of the same of -x.
// (Simplification turns CSE-Autoloss-B cls's log(sigmoid(x)) and
// log(1 - sigmoid(x)) into softplus(-x) and softplus(x); NVRTC does not see
// that |-x| is |x|, so x's and -x's exponentials stay two.)
TEST(Nvrtc, SigmoidAndSoftplusShareOneExp) {
  const auto ex2_count = [](const std::string& text) {
    const Module module = load_module(SourceFile::from_text("<test>", text));
    const Loss& loss = module.losses.front();
    CudaEmitOptions options;
    options.dtypes = {CudaDType::F32};
    options.gradients = false;
    const std::string ptx = nvrtc_compile(emit_cuda(loss, options), "shared.cu", kArch, false).bytes;
    size_t count = 0;
    for (size_t at = ptx.find("ex2.approx"); at != std::string::npos; at = ptx.find("ex2.approx", at + 1)) ++count;
    return count;
  };
  const size_t alone = ex2_count("loss a(pred x: real) = softplus(x)");
  EXPECT_GE(alone, 1u);
  EXPECT_EQ(ex2_count("loss b(pred x: real) = softplus(x) * sigmoid(x)"), alone);
  EXPECT_EQ(ex2_count("loss c(pred x: real) = softplus(-x) + sigmoid(-x)"), alone);
}

// CudaOptions::min_blocks_per_sm reaches the compiler as __launch_bounds__'
// second argument (PTX's .minnctapersm, which caps the registers per thread);
// by default the kernels leave the count to the compiler.
TEST(Nvrtc, BlocksPerMultiprocessorReachThePtx) {
  const Module module = load_module(SourceFile::read(std::string(LOSSFORGE_SOURCE_DIR) + "/examples/losses/focal.loss"));
  CudaEmitOptions options;
  const std::string plain = nvrtc_compile(emit_cuda(module.losses.front(), options), "focal.cu", kArch, false).bytes;
  EXPECT_NE(plain.find(".maxntid 256"), std::string::npos);
  EXPECT_EQ(plain.find(".minnctapersm"), std::string::npos);
  options.min_blocks_per_sm = 6;
  const std::string source = emit_cuda(module.losses.front(), options);
  EXPECT_NE(source.find("__launch_bounds__(256, 6)"), std::string::npos);
  EXPECT_NE(nvrtc_compile(source, "focal.cu", kArch, false).bytes.find(".minnctapersm 6"), std::string::npos);
}

TEST(Nvrtc, CompileErrorsNameTheGeneratedLine) {
  const std::string source = "extern \"C\" __global__ void broken(float* x) {\n  x[0] = undefined_name;\n}\n";
  try {
    nvrtc_compile(source, "broken.cu", kArch, false);
    FAIL() << "compiled";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("broken.cu(2)"), std::string::npos) << message;
    EXPECT_NE(message.find("    2 |   x[0] = undefined_name;"), std::string::npos) << message;
  }
}

TEST(Nvrtc, ArchitecturesAndVersion) {
  const std::vector<int> archs = cuda::nvrtc_architectures();
  EXPECT_NE(std::find(archs.begin(), archs.end(), 90), archs.end());
  EXPECT_EQ(cuda::nvrtc_version().rfind("NVRTC ", 0), 0u);
  // A device newer than NVRTC knows gets PTX for the newest known architecture.
  const CudaImage image =
      cuda::nvrtc_compile_for_device("extern \"C\" __global__ void k(float* x) { x[0] = 1; }", "k.cu", 990);
  EXPECT_FALSE(image.cubin);
  EXPECT_EQ(image.arch, archs.back());
}

}  // namespace
}  // namespace lossforge::generated_testing
