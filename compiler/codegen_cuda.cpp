// Kernel -> CUDA C++ for NVRTC/nvcc: the shared row function
// (compiler/codegen_c.hpp) under the three launch layouts of codegen_cuda.hpp.
#include "compiler/codegen_cuda.hpp"

#include <algorithm>
#include <string>

#include "compiler/codegen_c.hpp"
#include "compiler/storage_types.hpp"

namespace lossforge {
namespace {

// Device helpers the kernels use besides the preamble: 4-value loads and
// stores (one 16-byte access per box in float, two in double when aligned).
constexpr const char* kDeviceHelpers = R"lf(
#ifndef LOSSFORGE_GENERATED_DEVICE_HELPERS
#define LOSSFORGE_GENERATED_DEVICE_HELPERS
namespace lossforge::gen {
__device__ inline bool aligned16(const void* p) { return p == 0 || ((unsigned long long)p & 15) == 0; }
__device__ inline void load4(float* d, const float* s, bool aligned) {
  if (aligned) { const float4 v = *(const float4*)s; d[0] = v.x; d[1] = v.y; d[2] = v.z; d[3] = v.w; }
  else { d[0] = s[0]; d[1] = s[1]; d[2] = s[2]; d[3] = s[3]; }
}
__device__ inline void load4(double* d, const double* s, bool aligned) {
  if (aligned) { const double2 a = ((const double2*)s)[0], b = ((const double2*)s)[1]; d[0] = a.x; d[1] = a.y; d[2] = b.x; d[3] = b.y; }
  else { d[0] = s[0]; d[1] = s[1]; d[2] = s[2]; d[3] = s[3]; }
}
__device__ inline void store4(float* d, const float* s, bool aligned) {
  if (aligned) __stcs((float4*)d, make_float4(s[0], s[1], s[2], s[3]));
  else { d[0] = s[0]; d[1] = s[1]; d[2] = s[2]; d[3] = s[3]; }
}
__device__ inline void store4(double* d, const double* s, bool aligned) {
  if (aligned) { __stcs((double2*)d, make_double2(s[0], s[1])); __stcs((double2*)d + 1, make_double2(s[2], s[3])); }
  else { d[0] = s[0]; d[1] = s[1]; d[2] = s[2]; d[3] = s[3]; }
}
// A box of a 16-bit storage type: one 8-byte access when aligned.
template <class T, class S>
__device__ inline void load4(T* d, const S* s, bool aligned) {
  if (aligned) {
    const ushort4 v = *(const ushort4*)s;
    const S e[4] = {{v.x}, {v.y}, {v.z}, {v.w}};
    d[0] = e[0]; d[1] = e[1]; d[2] = e[2]; d[3] = e[3];
  } else { d[0] = s[0]; d[1] = s[1]; d[2] = s[2]; d[3] = s[3]; }
}
template <class S, class T>
__device__ inline void store4(S* d, const T* s, bool aligned) {
  S e[4];
  e[0] = s[0]; e[1] = s[1]; e[2] = s[2]; e[3] = s[3];
  if (aligned) __stcs((ushort4*)d, make_ushort4(e[0].bits, e[1].bits, e[2].bits, e[3].bits));
  else { d[0] = e[0]; d[1] = e[1]; d[2] = e[2]; d[3] = e[3]; }
}
// Four consecutive floats from row 4q on: one 16-byte load when `whole`,
// else element by element up to row n (zeros beyond).
__device__ inline float4 load_quad(const float* p, long long q, long long n, bool whole) {
  if (whole) return ((const float4*)p)[q];
  const long long r = 4 * q;
  return make_float4(r < n ? p[r] : 0.f, r + 1 < n ? p[r + 1] : 0.f, r + 2 < n ? p[r + 2] : 0.f, r + 3 < n ? p[r + 3] : 0.f);
}
__device__ inline void store_quad(float* p, long long q, long long n, bool whole, float4 v) {
  if (whole) { __stcs((float4*)p + q, v); return; }
  const long long r = 4 * q;
  if (r < n) p[r] = v.x;
  if (r + 1 < n) p[r + 1] = v.y;
  if (r + 2 < n) p[r + 2] = v.z;
  if (r + 3 < n) p[r + 3] = v.w;
}
// The same for a 16-bit storage type: one 8-byte access per quad.
template <class S>
__device__ inline float4 load_quad(const S* p, long long q, long long n, bool whole) {
  if (whole) {
    const ushort4 v = ((const ushort4*)p)[q];
    const S e[4] = {{v.x}, {v.y}, {v.z}, {v.w}};
    return make_float4(e[0], e[1], e[2], e[3]);
  }
  const long long r = 4 * q;
  return make_float4(r < n ? float(p[r]) : 0.f, r + 1 < n ? float(p[r + 1]) : 0.f, r + 2 < n ? float(p[r + 2]) : 0.f,
                     r + 3 < n ? float(p[r + 3]) : 0.f);
}
template <class S>
__device__ inline void store_quad(S* p, long long q, long long n, bool whole, float4 v) {
  S e[4];
  e[0] = v.x; e[1] = v.y; e[2] = v.z; e[3] = v.w;
  if (whole) { __stcs((ushort4*)p + q, make_ushort4(e[0].bits, e[1].bits, e[2].bits, e[3].bits)); return; }
  const long long r = 4 * q;
  if (r < n) p[r] = e[0];
  if (r + 1 < n) p[r + 1] = e[1];
  if (r + 2 < n) p[r + 2] = e[2];
  if (r + 3 < n) p[r + 3] = e[3];
}
// A quad's lanes go through a non-unrolled loop by rotation: the loop takes
// lane x and moves the others down, and its results enter at w, so that after
// four turns every lane is back in place (register moves, no selects by j).
__device__ inline float take_lane(float4& v) {
  const float x = v.x;
  v = make_float4(v.y, v.z, v.w, x);
  return x;
}
__device__ inline void push_lane(float4& v, float x) { v = make_float4(v.y, v.z, v.w, x); }
// The block's share of the reduction: one atomicAdd per block.
__device__ inline void add_total(const LossforgeLaunch& args, double total) {
  total = block_sum(total);
  if (threadIdx.x == 0 && args.total) atomicAdd(args.total, total * args.loss_scale);
}
}  // namespace lossforge::gen
#endif
)lf";

// The C++ type of the arrays of `dtype`.
const char* storage_type(CudaDType dtype) {
  switch (dtype) {
    case CudaDType::F32: return "float";
    case CudaDType::F64: return "double";
    case CudaDType::F16: return "lossforge::storage::half";
    case CudaDType::BF16: return "lossforge::storage::bfloat16";
  }
  return "?";
}

// The params as the row function reads them: converted to T once per thread
// (params_t, see head), not once per row.
std::string params_argument(const Loss& loss) { return loss.params.empty() ? "args.params" : "params_t"; }

// T: the compute type; S: the element type of inputs, weights and gradients.
std::string head(const std::string& name, CudaDType dtype, const Loss& loss, int min_blocks) {
  std::string bounds = std::to_string(kCudaBlockSize);
  if (min_blocks > 0) bounds += ", " + std::to_string(min_blocks);
  std::string text = "extern \"C\" __global__ void __launch_bounds__(" + bounds + ") " + name +
                     "(const LossforgeLaunch args) {\n";
  text += "  typedef " + std::string(compute_dtype(dtype) == DType::F32 ? "float" : "double") + " T;\n";
  text += "  typedef " + std::string(storage_type(dtype)) + " S;\n";
  text += "  const S* weight = (const S*)args.weight;\n";
  text += "  T* loss = (T*)args.loss;\n";
  text += "  const T gscale = T(args.grad_scale);\n";
  if (!loss.params.empty()) {
    text += "  const T params_t[] = {";
    for (size_t p = 0; p < loss.params.size(); ++p)
      text += std::string(p ? ", " : "") + "T(args.params[" + std::to_string(p) + "])";
    text += "};\n";
  }
  text += "  const long long n = args.rows;\n";
  text += "  double total = 0;\n";
  return text;
}

// One row r of a loss without real[C] inputs, every value through registers.
std::string scalar_row(const Kernel& kernel, const std::string& symbol, const std::string& indent) {
  const Loss& loss = kernel.loss;
  std::string t;
  std::string call = "lossforge::gen::" + symbol + "_row<T, lossforge::gen::Serial>(";
  for (size_t i = 0; i < loss.inputs.size(); ++i) {
    const std::string x = "x" + std::to_string(i), src = "((const S*)args.inputs[" + std::to_string(i) + "])";
    if (loss.inputs[i].type.is_box())
      t += indent + "T " + x + "[4]; lossforge::gen::load4(" + x + ", " + src + " + 4 * r, aligned);\n";
    else
      t += indent + "T " + x + "[1] = {T(" + src + "[r])};\n";
    call += x + ", ";
  }
  call += "args.widths, " + params_argument(loss) + ", w * gscale";
  for (size_t g = 0; g < kernel.gradients.size(); ++g) {
    const bool box = loss.inputs[kernel.gradients[g].input].type.is_box();
    t += indent + "T y" + std::to_string(g) + "[" + (box ? "4" : "1") + "];\n";
    call += ", y" + std::to_string(g);
  }
  t += indent + "const T w = weight ? T(weight[r]) : T(1);\n";
  t += indent + "const T l = " + call + ") * w;\n";
  t += indent + "if (loss) loss[r] = l;\n";
  t += indent + "total += double(l);\n";
  for (size_t g = 0; g < kernel.gradients.size(); ++g) {
    const std::string gs = std::to_string(g), out = "args.grads[" + gs + "]";
    if (loss.inputs[kernel.gradients[g].input].type.is_box())
      t += indent + "if (" + out + ") lossforge::gen::store4((S*)" + out + " + 4 * r, y" + gs + ", aligned);\n";
    else
      t += indent + "if (" + out + ") ((S*)" + out + ")[r] = y" + gs + "[0];\n";
  }
  return t;
}

// Rows 4q..4q+3 of an all-`real` float loss: 16-byte loads and stores (8-byte
// for 16-bit arrays) when the quad is whole and every array aligned, element
// loads otherwise (the tail).
// The four rows go through one non-unrolled loop, so the row code is compiled
// once (NVRTC's time grows with every inlined copy), rotating the lanes.
std::string quad_rows(const Kernel& kernel, const std::string& symbol) {
  const Loss& loss = kernel.loss;
  std::string t;
  t += "      const bool whole = aligned && 4 * q + 4 <= n;\n";
  for (size_t i = 0; i < loss.inputs.size(); ++i)
    t += "      float4 v" + std::to_string(i) + " = lossforge::gen::load_quad((const S*)args.inputs[" +
         std::to_string(i) + "], q, n, whole);\n";
  t += "      float4 wv = weight ? lossforge::gen::load_quad(weight, q, n, whole) : make_float4(1, 1, 1, 1);\n";
  t += "      const long long rows_left = n - 4 * q;\n";
  t += "      float4 l4 = make_float4(0, 0, 0, 0);\n";
  for (size_t g = 0; g < kernel.gradients.size(); ++g) t += "      float4 y" + std::to_string(g) + "4 = l4;\n";
  t += "#pragma unroll 1\n      for (int j = 0; j < 4; ++j) {\n";
  for (size_t i = 0; i < loss.inputs.size(); ++i)
    t += "        const T x" + std::to_string(i) + " = lossforge::gen::take_lane(v" + std::to_string(i) + ");\n";
  t += "        const T w = lossforge::gen::take_lane(wv);\n";
  for (size_t g = 0; g < kernel.gradients.size(); ++g) t += "        T y" + std::to_string(g) + ";\n";
  std::string call = "lossforge::gen::" + symbol + "_row<T, lossforge::gen::Serial>(";
  for (size_t i = 0; i < loss.inputs.size(); ++i) call += "&x" + std::to_string(i) + ", ";
  call += "args.widths, " + params_argument(loss) + ", w * gscale";
  for (size_t g = 0; g < kernel.gradients.size(); ++g) call += ", &y" + std::to_string(g);
  t += "        const T l = " + call + ") * w;\n";
  t += "        if (j < rows_left) total += double(l);\n";
  t += "        lossforge::gen::push_lane(l4, l);\n";
  for (size_t g = 0; g < kernel.gradients.size(); ++g)
    t += "        lossforge::gen::push_lane(y" + std::to_string(g) + "4, y" + std::to_string(g) + ");\n";
  t += "      }\n";
  t += "      if (loss) lossforge::gen::store_quad(loss, q, n, whole, l4);\n";
  for (size_t g = 0; g < kernel.gradients.size(); ++g) {
    const std::string gs = std::to_string(g);
    t += "      if (args.grads[" + gs + "]) lossforge::gen::store_quad((S*)args.grads[" + gs + "], q, n, whole, y" + gs +
         "4);\n";
  }
  return t;
}

std::string rows_kernel(const Kernel& kernel, const std::string& symbol, CudaDType dtype, int min_blocks) {
  const Loss& loss = kernel.loss;
  std::string t = head(cuda_kernel_name(symbol, dtype, CudaLayout::Rows), dtype, loss, min_blocks);
  t += "  const long long stride = (long long)gridDim.x * blockDim.x;\n";
  t += "  long long first = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n";
  t += "  bool aligned = lossforge::gen::aligned16(weight) && lossforge::gen::aligned16(loss);\n";
  for (size_t i = 0; i < loss.inputs.size(); ++i)
    t += "  aligned = aligned && lossforge::gen::aligned16(args.inputs[" + std::to_string(i) + "]);\n";
  for (size_t g = 0; g < kernel.gradients.size(); ++g)
    t += "  aligned = aligned && lossforge::gen::aligned16(args.grads[" + std::to_string(g) + "]);\n";
  bool all_real = true;
  for (const LossInput& in : loss.inputs) all_real = all_real && in.type.is_real();
  if (compute_dtype(dtype) == DType::F32 && all_real) {  // f32, f16, bf16
    t += "  for (long long q = first; q < (n + 3) / 4; q += stride) {\n";
    t += quad_rows(kernel, symbol);
    t += "  }\n";
  } else {
    t += "  for (long long r = first; r < n; r += stride) {\n";
    t += scalar_row(kernel, symbol, "    ");
    t += "  }\n";
  }
  t += "  lossforge::gen::add_total(args, total);\n}\n";
  return t;
}

std::string lanes_kernel(const Kernel& kernel, const std::string& symbol, CudaDType dtype, CudaLayout layout,
                         int min_blocks) {
  const bool warp = layout == CudaLayout::Warp;
  const std::string lanes = warp ? "Warp" : "Block";
  std::string t = head(cuda_kernel_name(symbol, dtype, layout), dtype, kernel.loss, min_blocks);
  if (warp) {
    t += "  const long long step = ((long long)gridDim.x * blockDim.x) >> 5;\n";
    t += "  for (long long r = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5; r < n; r += step) {\n";
  } else {
    t += "  for (long long r = blockIdx.x; r < n; r += gridDim.x) {\n";
  }
  t += "    const T w = weight ? T(weight[r]) : T(1);\n";
  const std::string call =
      c_codegen::row_call(kernel, symbol, lanes, "args", "r", "w * gscale", "S", params_argument(kernel.loss));
  t += "    const T l = " + call + " * w;\n";
  t += "    if (lossforge::gen::" + lanes + "::leader()) {\n";
  t += "      if (loss) loss[r] = l;\n";
  t += "      total += double(l);\n";
  t += "    }\n  }\n";
  t += "  lossforge::gen::add_total(args, total);\n}\n";
  return t;
}

}  // namespace

const char* cuda_layout_name(CudaLayout layout) {
  switch (layout) {
    case CudaLayout::Rows: return "rows";
    case CudaLayout::Warp: return "warp";
    case CudaLayout::Block: return "block";
  }
  return "?";
}

CudaLayout cuda_layout(const Loss& loss, long long max_width) {
  if (!c_codegen::has_columns(loss)) return CudaLayout::Rows;
  return max_width <= kWarpMaxWidth ? CudaLayout::Warp : CudaLayout::Block;
}

const char* cuda_dtype_name(CudaDType dtype) {
  switch (dtype) {
    case CudaDType::F32: return "f32";
    case CudaDType::F64: return "f64";
    case CudaDType::F16: return "f16";
    case CudaDType::BF16: return "bf16";
  }
  return "?";
}

std::optional<CudaDType> find_cuda_dtype(std::string_view name) {
  for (CudaDType dtype : {CudaDType::F32, CudaDType::F64, CudaDType::F16, CudaDType::BF16})
    if (name == cuda_dtype_name(dtype)) return dtype;
  return std::nullopt;
}

int cuda_dtype_bytes(CudaDType dtype) {
  switch (dtype) {
    case CudaDType::F32: return 4;
    case CudaDType::F64: return 8;
    case CudaDType::F16:
    case CudaDType::BF16: return 2;
  }
  return 0;
}

unsigned short to_storage_bits(CudaDType dtype, float value) {
  return dtype == CudaDType::F16 ? storage::half_from_float(value) : storage::bfloat16_from_float(value);
}

float from_storage_bits(CudaDType dtype, unsigned short bits) {
  return dtype == CudaDType::F16 ? storage::half_to_float(bits) : storage::bfloat16_to_float(bits);
}

std::string cuda_kernel_name(const std::string& symbol, CudaDType dtype, CudaLayout layout) {
  return symbol + "_" + cuda_dtype_name(dtype) + "_" + cuda_layout_name(layout);
}

std::string emit_cuda(const Loss& loss, const CudaEmitOptions& options) {
  return emit_cuda(options.gradients ? gradient_kernel(loss, differentiate(loss)) : forward_kernel(loss), options);
}

std::string emit_cuda(const Kernel& kernel, const CudaEmitOptions& options) {
  const std::string symbol = options.symbol.empty() ? c_codegen::default_symbol(kernel.loss.name) : options.symbol;
  std::string text;
  if (options.preamble) {
    text += "// Generated by lossforge (compiler/codegen_cuda.cpp): CUDA kernels for the losses below.\n";
    text += c_codegen::preamble();
    const bool sixteen_bit = std::any_of(options.dtypes.begin(), options.dtypes.end(),
                                         [](CudaDType d) { return cuda_dtype_bytes(d) == 2; });
    if (sixteen_bit) text += "// ---- compiler/storage_types.hpp (embedded) ----\n" + c_codegen::storage_types_text();
    text += kDeviceHelpers;
  }
  text += "\n" + c_codegen::row_function(kernel, symbol);
  for (CudaDType dtype : options.dtypes) {
    if (!c_codegen::has_columns(kernel.loss)) {
      text += "\n" + rows_kernel(kernel, symbol, dtype, options.min_blocks_per_sm);
    } else {
      text += "\n" + lanes_kernel(kernel, symbol, dtype, CudaLayout::Warp, options.min_blocks_per_sm);
      text += "\n" + lanes_kernel(kernel, symbol, dtype, CudaLayout::Block, options.min_blocks_per_sm);
    }
  }
  return text;
}

}  // namespace lossforge
