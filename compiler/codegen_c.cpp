// IR -> the row function in C++ (host) / CUDA C++ (device) text.
//
// Shape of the generated code (see codegen_c.hpp): per row, in topological
// order of the kernel's roots taken in rounds (a node's round: how many
// row-wise results it waits for in sequence),
//   * a `real` node is one `const T sN = ...;` (constants are inline literals,
//     params read from the launch block, inputs from their row);
//   * a box is an input row of 4 values, copied into a T[4] and read by field
//     and box ops;
//   * an element-wise real[C] node is not materialised: it is a column
//     expression, emitted (with the real[C] nodes below it) inside each column
//     loop that reads it;
//   * a row-wise node is column loops whose partial results the lane policy
//     combines: max and Σ e^(x - max) for softmax, log_softmax and logsumexp
//     (their column values are then e^(x_c - m) / t and x_c - m - ln t,
//     exactly as compiler/semantics.hpp computes them), computed once per
//     argument however many of them use it; Σ a·b for dot, Σ x for sum and
//     mean, where the sums of a round over one width share a loop;
//   * after the loss, each pred input's gradient: real and box parts stored by
//     the leader lane, real[C] parts by one more column loop.
#include "compiler/codegen_c.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "compiler/error.hpp"

namespace lossforge::c_codegen {
namespace {

constexpr const char* kLaunchAndLanes = R"lf(
#ifndef LOSSFORGE_LAUNCH_DEFINED
#define LOSSFORGE_LAUNCH_DEFINED
// The arguments of one launch (host loop or CUDA kernel), passed by value.
struct LossforgeLaunch {
  const void* inputs[16];  // input i: rows x widths[i] values of the kernel's dtype, row-major
  void* loss;              // per-row loss x weight, or null
  void* grads[16];         // gradient of the k-th pred input, shaped like it, or null
  const void* weight;      // per-row weights, or null (all 1)
  double* total;           // += sum of loss x weight x loss_scale (CUDA: zeroed by the caller), or null
  long long rows;
  long long widths[16];    // values per row: 1 real, 4 box, C real[C]
  double params[32];       // one per loss param
  double loss_scale;       // 1 sum, 1/rows mean, 1/avg_factor
  double grad_scale;       // gradients are d loss / d input x weight x grad_scale
};
#endif

namespace lossforge::gen {

namespace lfs = lossforge::sem;

// Row maximum step: NaN-propagating, so any NaN in a row gives NaN whatever the
// order lanes combine in (compiler/semantics.hpp: a NaN anywhere in the row
// makes softmax and logsumexp NaN as well).
template <class T>
LF_HD inline T max_combine(T m, T v) { return (v > m || v != v) ? v : m; }
template <class T>
LF_HD inline T neg_inf() {
#if defined(__CUDA_ARCH__)
  return T(__longlong_as_double(0xfff0000000000000ULL));
#else
  return T(-__builtin_huge_val());
#endif
}
template <class T>
LF_HD inline T softmax_column(T x, T m, T total) { return lossforge::sem::math::exp(x - m) / total; }
template <class T>
LF_HD inline T log_softmax_column(T x, T m, T log_total) { return x - m - log_total; }
template <class T>
LF_HD inline T logsumexp_value(T m, T total) { return m - m == T(0) ? m + lossforge::sem::math::log(total) : m; }

// Lane policies: who computes which columns of a real[C] row.
struct Serial {
  static LF_HD long long first() { return 0; }
  static LF_HD long long step() { return 1; }
  static LF_HD bool leader() { return true; }
  template <class T> static LF_HD T sum(T v) { return v; }
  template <class T> static LF_HD T max(T v) { return v; }
};

#if defined(__CUDACC__)
struct Warp {  // a warp per row: blockDim.x is a multiple of 32
  static LF_HD long long first() {
#if defined(__CUDA_ARCH__)
    return threadIdx.x & 31;
#else
    return 0;
#endif
  }
  static LF_HD long long step() { return 32; }
  static LF_HD bool leader() { return first() == 0; }
  template <class T> static LF_HD T sum(T v) {
#if defined(__CUDA_ARCH__)
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
#endif
    return v;
  }
  template <class T> static LF_HD T max(T v) {
#if defined(__CUDA_ARCH__)
    for (int o = 16; o > 0; o >>= 1) v = max_combine(v, __shfl_xor_sync(0xffffffffu, v, o));
#endif
    return v;
  }
};

__shared__ double block_buffer[33];

// Every thread of the block calls these (row loops are block-uniform).
__device__ inline double block_sum(double v) {
  v = Warp::sum(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  if (lane == 0) block_buffer[warp] = v;
  __syncthreads();
  if (warp == 0) {
    double t = lane < warps ? block_buffer[lane] : 0.0;
    t = Warp::sum(t);
    if (lane == 0) block_buffer[32] = t;
  }
  __syncthreads();
  const double r = block_buffer[32];
  __syncthreads();
  return r;
}
__device__ inline double block_max(double v) {
  v = Warp::max(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  if (lane == 0) block_buffer[warp] = v;
  __syncthreads();
  if (warp == 0) {
    double t = lane < warps ? block_buffer[lane] : neg_inf<double>();
    t = Warp::max(t);
    if (lane == 0) block_buffer[32] = t;
  }
  __syncthreads();
  const double r = block_buffer[32];
  __syncthreads();
  return r;
}

struct Block {  // a block per row
  static LF_HD long long first() {
#if defined(__CUDA_ARCH__)
    return threadIdx.x;
#else
    return 0;
#endif
  }
  static LF_HD long long step() {
#if defined(__CUDA_ARCH__)
    return blockDim.x;
#else
    return 1;
#endif
  }
  static LF_HD bool leader() { return first() == 0; }
  template <class T> static LF_HD T sum(T v) {
#if defined(__CUDA_ARCH__)
    return T(block_sum(double(v)));
#else
    return v;
#endif
  }
  template <class T> static LF_HD T max(T v) {
#if defined(__CUDA_ARCH__)
    return T(block_max(double(v)));
#else
    return v;
#endif
  }
};
#endif  // __CUDACC__

}  // namespace lossforge::gen
)lf";

// An exact C++ literal for a double: hexadecimal floating point.
std::string literal(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%a", value);
  return std::string("T(") + buffer + ")";
}

std::string sem_name(Op op) {
  switch (op) {
    case Op::Add: return "add";
    case Op::Sub: return "sub";
    case Op::Mul: return "mul";
    case Op::Div: return "div";
    case Op::Neg: return "neg";
    case Op::Pow: return "pow";
    case Op::Log: return "log";
    case Op::Exp: return "exp";
    case Op::Sqrt: return "sqrt";
    case Op::Abs: return "abs";
    case Op::Sin: return "sin";
    case Op::Cos: return "cos";
    case Op::Tanh: return "tanh";
    case Op::Relu: return "relu";
    case Op::Softplus: return "softplus";
    case Op::Sigmoid: return "sigmoid";
    case Op::Serf: return "serf";
    case Op::Salf: return "salf";
    case Op::Sgdf: return "sgdf";
    case Op::Erf: return "erf";
    case Op::Erfc: return "erfc";
    case Op::Min: return "min";
    case Op::Max: return "max";
    case Op::Clamp: return "clamp";
    case Op::Where: return "where";
    case Op::MinShare: return "min_share";
    case Op::MaxShare: return "max_share";
    default: break;
  }
  throw std::logic_error("codegen_c: '" + std::string(op_name(op)) + "' is not element-wise");
}

class RowEmitter {
 public:
  RowEmitter(const Kernel& kernel, std::string symbol) : kernel_(kernel), loss_(kernel.loss), symbol_(std::move(symbol)) {}

  std::string emit() {
    plan();
    signature();
    out_ << "{\n";
    for (size_t i = 0; i < loss_.inputs.size(); ++i)
      if (loss_.inputs[i].type.is_vec()) out_ << "  const long long w" << i << " = widths[" << i << "]; (void)w" << i << ";\n";
    out_ << "  (void)widths; (void)params; (void)gscale;\n";
    // Boxes in the compute type: the box ops take T[4] (S may be a 16-bit type).
    for (size_t i = 0; i < loss_.inputs.size(); ++i)
      if (loss_.inputs[i].type.is_box())
        out_ << "  const T b" << i << "[4] = {T(in" << i << "[0]), T(in" << i << "[1]), T(in" << i << "[2]), T(in" << i
             << "[3])}; (void)b" << i << ";\n";
    for (const Node* n : order_) {
      if (reads_pending(n)) flush_reductions();
      node(n);
    }
    flush_reductions();
    gradients();
    out_ << "  return " << scalar_.at(loss_.body.get()) << ";\n}\n";
    return out_.str();
  }

 private:
  void plan() {
    if (!loss_.body || !loss_.body->type().is_real())
      throw std::invalid_argument("codegen: the body of loss '" + loss_.name + "' is not real");
    if (kernel_.has_gradients()) check_gradient_shapes(loss_, kernel_.gradients);
    roots_ = kernel_.roots();
    order_ = topological_order(roots_);
    // Emit in rounds: a node's round is the number of row-wise results (sums,
    // softmax normalisers) it waits for in sequence. Row-wise sums of one round
    // do not read each other, so they can share a column loop.
    std::unordered_map<const Node*, size_t> round;
    for (const Node* n : order_) {
      size_t r = 0;
      for (const Expr& a : n->args()) r = std::max(r, round.at(a.get()) + (a->info().kind == OpKind::Rowwise ? 1 : 0));
      round[n] = r;
    }
    std::stable_sort(order_.begin(), order_.end(), [&](const Node* a, const Node* b) { return round.at(a) < round.at(b); });
    for (size_t i = 0; i < order_.size(); ++i) {
      const Node* n = order_[i];
      id_[n] = i;
      if (n->op() == Op::Input) {
        const size_t index = size_t(n->index());
        if (n->index() < 0 || index >= loss_.inputs.size() || !(loss_.inputs[index].type == n->type()))
          throw std::invalid_argument("codegen: input node '" + n->name() + "' does not match the inputs of loss '" +
                                      loss_.name + "'");
      }
      if (n->op() == Op::Param && (n->index() < 0 || size_t(n->index()) >= loss_.params.size()))
        throw std::invalid_argument("codegen: param node '" + n->name() + "' has no entry in loss '" + loss_.name + "'");
      if (n->type().is_box() && n->op() != Op::Input)
        throw std::invalid_argument("codegen: box values other than inputs are not supported (" +
                                    std::string(op_name(n->op())) + ")");
      if (n->type().is_vec()) width_var_[n] = "w" + std::to_string(width_input(n->type()));
    }
  }

  size_t width_input(const Type& type) const {
    for (size_t i = 0; i < loss_.inputs.size(); ++i)
      if (loss_.inputs[i].type.is_vec() && loss_.inputs[i].type.width() == type.width()) return i;
    throw std::invalid_argument("codegen: width " + std::string(type.width().str()) + " is bound by no input of '" +
                                loss_.name + "'");
  }

  void signature() {
    out_ << "// loss '" << loss_.name << "'";
    if (kernel_.has_gradients()) out_ << " and the gradients of its pred inputs";
    // S, the element type of the arrays, is T or a 16-bit storage type
    // (compiler/storage_types.hpp) that converts to and from float.
    // P, the params' type: the launch block's doubles, or T when a kernel
    // converts them once per thread.
    out_ << "\ntemplate <class T, class L, class S = T, class P = double>\nLF_HD inline T " << symbol_ << "_row(";
    for (size_t i = 0; i < loss_.inputs.size(); ++i)
      out_ << "const S* __restrict__ in" << i << " /* " << loss_.inputs[i].name << ": " << loss_.inputs[i].type.str()
           << " */, ";
    out_ << "const long long* widths, const P* params, T gscale";
    for (size_t g = 0; g < kernel_.gradients.size(); ++g)
      out_ << ", S* __restrict__ g" << g << " /* d/d " << loss_.inputs[kernel_.gradients[g].input].name << " */";
    out_ << ")\n";
  }

  std::string scalar_name(const Node* n) { return "s" + std::to_string(id_.at(n)); }
  std::string column_name(const Node* n) { return "c" + std::to_string(id_.at(n)); }

  // The value of `n` inside a column loop over `c`: a column name for real[C]
  // nodes (emitted into the loop), the scalar otherwise.
  std::string value_in_loop(const Node* n) { return n->type().is_vec() ? column_name(n) : scalar_.at(n); }

  // Emits the column values of `needed` (real[C] nodes) and of the real[C]
  // nodes below them, in topological order, into the current loop body.
  void columns(const std::vector<const Node*>& needed, const std::string& indent) {
    std::unordered_set<const Node*> want;
    std::vector<const Node*> stack(needed.begin(), needed.end());
    while (!stack.empty()) {
      const Node* n = stack.back();
      stack.pop_back();
      if (!n->type().is_vec() || !want.insert(n).second) continue;
      if (n->info().kind == OpKind::Elementwise || n->op() == Op::Softmax || n->op() == Op::LogSoftmax)
        for (const Expr& a : n->args()) stack.push_back(a.get());
    }
    std::vector<const Node*> sorted(want.begin(), want.end());
    std::sort(sorted.begin(), sorted.end(), [&](const Node* a, const Node* b) { return id_.at(a) < id_.at(b); });
    for (const Node* n : sorted) {
      out_ << indent << "const T " << column_name(n) << " = ";
      switch (n->op()) {
        case Op::Input: out_ << "in" << n->index() << "[c]"; break;
        case Op::Softmax:
          out_ << "lossforge::gen::softmax_column(" << column_name(n->arg(0).get()) << ", m" << id_.at(n) << ", t"
               << id_.at(n) << ")";
          break;
        case Op::LogSoftmax:
          out_ << "lossforge::gen::log_softmax_column(" << column_name(n->arg(0).get()) << ", m" << id_.at(n) << ", l"
               << id_.at(n) << ")";
          break;
        default: {
          out_ << "lfs::" << sem_name(n->op()) << "(";
          for (size_t a = 0; a < n->args().size(); ++a) out_ << (a ? ", " : "") << value_in_loop(n->arg(a).get());
          out_ << ")";
        }
      }
      out_ << ";\n";
    }
  }

  // for (c = L::first(); c < width; c += L::step()) { <columns of needed>; body }
  void column_loop(const std::string& width, const std::vector<const Node*>& needed, const std::string& body) {
    out_ << "  for (long long c = L::first(); c < " << width << "; c += L::step()) {\n";
    columns(needed, "    ");
    out_ << "    " << body << "\n  }\n";
  }

  void node(const Node* n) {
    const std::string s = scalar_name(n);
    switch (n->info().kind) {
      case OpKind::Leaf:
        if (n->op() == Op::Const) scalar_[n] = literal(n->value());
        else if (n->op() == Op::Param) {
          out_ << "  const T " << s << " = T(params[" << n->index() << "]);  // " << n->name() << "\n";
          scalar_[n] = s;
        } else if (n->type().is_real()) {
          out_ << "  const T " << s << " = in" << n->index() << "[0];  // " << n->name() << "\n";
          scalar_[n] = s;
        }
        return;
      case OpKind::Elementwise: {
        if (n->type().is_vec()) return;  // a column expression
        out_ << "  const T " << s << " = lfs::" << sem_name(n->op()) << "(";
        for (size_t a = 0; a < n->args().size(); ++a) out_ << (a ? ", " : "") << scalar_.at(n->arg(a).get());
        out_ << ");\n";
        scalar_[n] = s;
        return;
      }
      case OpKind::Box: {
        auto box = [&](size_t a) { return "b" + std::to_string(n->arg(a)->index()); };
        out_ << "  const T " << s << " = ";
        switch (n->op()) {
          case Op::Field: out_ << box(0) << "[" << n->index() << "]"; break;
          case Op::Area: out_ << "lfs::area(" << box(0) << ")"; break;
          case Op::Inter: out_ << "lfs::inter(" << box(0) << ", " << box(1) << ")"; break;
          case Op::Enclose: out_ << "lfs::enclose(" << box(0) << ", " << box(1) << ")"; break;
          case Op::Iou: out_ << "lfs::iou(" << box(0) << ", " << box(1) << ")"; break;
          default: throw std::logic_error("codegen_c: '" + std::string(op_name(n->op())) + "' is not a box op");
        }
        out_ << ";\n";
        scalar_[n] = s;
        return;
      }
      case OpKind::Rowwise: rowwise(n); return;
    }
  }

  void rowwise(const Node* n) {
    const Node* x = n->arg(0).get();
    const std::string id = std::to_string(id_.at(n));
    const std::string& width = width_var_.at(x);
    const std::string xc = value_in_loop(x);
    switch (n->op()) {
      case Op::Softmax:
      case Op::LogSoftmax:
      case Op::Logsumexp: {
        // The row's max and Σ e^(x - max) are computed once per argument: the
        // gradient's softmax(x) reuses those of the loss's log_softmax(x).
        auto [it, first] = normalizers_.try_emplace(x, Normalizer{"m" + id, "t" + id, ""});
        Normalizer& z = it->second;
        if (first) {
          out_ << "  T m" << id << " = lossforge::gen::neg_inf<T>();\n";
          column_loop(width, {x}, "m" + id + " = lossforge::gen::max_combine(m" + id + ", " + xc + ");");
          out_ << "  m" << id << " = L::max(m" << id << ");\n";
          out_ << "  T t" << id << " = T(0);\n";
          column_loop(width, {x}, "t" + id + " += lfs::math::exp(" + xc + " - m" + id + ");");
          out_ << "  t" << id << " = L::sum(t" << id << ");\n";
        } else {
          out_ << "  const T m" << id << " = " << z.max << ", t" << id << " = " << z.total << ";\n";
        }
        if (n->op() == Op::LogSoftmax) {
          out_ << "  const T l" << id << " = " << (z.log_total.empty() ? "lfs::math::log(t" + id + ")" : z.log_total)
               << ";\n";
          if (z.log_total.empty()) z.log_total = "l" + id;
        }
        if (n->op() == Op::Logsumexp) {
          out_ << "  const T s" << id << " = lossforge::gen::logsumexp_value(m" << id << ", t" << id << ");\n";
          scalar_[n] = "s" + id;
        }
        return;
      }
      case Op::Dot:
      case Op::Sum:
      case Op::Mean:
        // Sums wait, so that those over one width that do not read each other
        // share a loop (and the loop's reads of the row): see flush_reductions.
        if (!pending_.empty() && pending_width_ != width) flush_reductions();
        pending_.push_back(n);
        pending_width_ = width;
        return;
      default: throw std::logic_error("codegen_c: '" + std::string(op_name(n->op())) + "' is not row-wise");
    }
  }

  // True when `n` reads the result of a waiting sum, directly or through the
  // column expressions below it (element-wise real[C] nodes are emitted inside
  // the loops of their readers, which make this check themselves).
  bool reads_pending(const Node* n) const {
    if (pending_.empty() || (n->info().kind == OpKind::Elementwise && n->type().is_vec())) return false;
    std::vector<const Node*> stack;
    for (const Expr& a : n->args()) stack.push_back(a.get());
    std::unordered_set<const Node*> seen;
    while (!stack.empty()) {
      const Node* a = stack.back();
      stack.pop_back();
      if (!seen.insert(a).second) continue;
      if (std::find(pending_.begin(), pending_.end(), a) != pending_.end()) return true;
      if (a->type().is_vec())
        for (const Expr& b : a->args()) stack.push_back(b.get());
    }
    return false;
  }

  // The waiting sums (dot, sum, mean over one width) in one column loop.
  void flush_reductions() {
    if (pending_.empty()) return;
    std::vector<const Node*> needed;
    std::string body;
    for (const Node* n : pending_) {
      const std::string s = "s" + std::to_string(id_.at(n));
      out_ << "  T " << s << " = T(0);\n";
      body += (body.empty() ? "" : "\n    ") + s + " += " + value_in_loop(n->arg(0).get());
      needed.push_back(n->arg(0).get());
      if (n->op() == Op::Dot) {
        body += " * " + value_in_loop(n->arg(1).get());
        needed.push_back(n->arg(1).get());
      }
      body += ";";
    }
    column_loop(pending_width_, needed, body);
    for (const Node* n : pending_) {
      const std::string s = "s" + std::to_string(id_.at(n));
      out_ << "  " << s << " = L::sum(" << s << ");\n";
      if (n->op() == Op::Mean) out_ << "  " << s << " = " << s << " / T(" << pending_width_ << ");\n";
      scalar_[n] = s;
    }
    pending_.clear();
  }

  void gradients() {
    for (size_t g = 0; g < kernel_.gradients.size(); ++g) {
      const InputGradient& grad = kernel_.gradients[g];
      const Type& type = loss_.inputs[grad.input].type;
      const std::string out = "g" + std::to_string(g);
      if (type.is_vec()) {
        const Node* part = grad.parts[0].get();
        out_ << "  if (" << out << ")\n  ";
        const std::vector<const Node*> needed = part->type().is_vec() ? std::vector<const Node*>{part}
                                                                      : std::vector<const Node*>{};
        out_ << "  for (long long c = L::first(); c < w" << grad.input << "; c += L::step()) {\n";
        columns(needed, "      ");
        out_ << "      " << out << "[c] = " << value_in_loop(part) << " * gscale;\n    }\n";
        continue;
      }
      out_ << "  if (" << out << " && L::leader()) {\n";
      for (size_t p = 0; p < grad.parts.size(); ++p)
        out_ << "    " << out << "[" << p << "] = " << scalar_.at(grad.parts[p].get()) << " * gscale;\n";
      out_ << "  }\n";
    }
  }

  const Kernel& kernel_;
  const Loss& loss_;
  std::string symbol_;
  std::ostringstream out_;
  std::vector<Expr> roots_;
  std::vector<const Node*> order_;
  std::unordered_map<const Node*, size_t> id_;
  std::unordered_map<const Node*, std::string> scalar_;
  std::unordered_map<const Node*, std::string> width_var_;
  // Per argument of softmax, log_softmax and logsumexp: the names of its row
  // max, its Σ e^(x - max) and (once a log_softmax needed it) log of that sum.
  struct Normalizer {
    std::string max, total, log_total;
  };
  std::unordered_map<const Node*, Normalizer> normalizers_;
  // Sums not yet emitted, all over the row width pending_width_.
  std::vector<const Node*> pending_;
  std::string pending_width_;
};

}  // namespace

std::string preamble() {
  std::string text = "#ifndef LOSSFORGE_GENERATED_PREAMBLE\n#define LOSSFORGE_GENERATED_PREAMBLE\n";
  text += "// ---- compiler/semantics.hpp (embedded) ----\n";
  text += semantics_text();
  text += "// ---- launch block and lane policies ----\n";
  text += kLaunchAndLanes;
  text += "#endif  // LOSSFORGE_GENERATED_PREAMBLE\n";
  return text;
}

std::string launch_struct() {
  const std::string text = kLaunchAndLanes;
  const size_t begin = text.find("#ifndef LOSSFORGE_LAUNCH_DEFINED");
  const size_t end = text.find("#endif\n", begin) + 7;
  return text.substr(begin, end - begin);
}

std::string default_symbol(const std::string& loss_name) {
  std::string out = "lossforge_";
  for (char ch : loss_name) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
    out += ok ? ch : '_';
  }
  return out;
}

void check_limits(const Loss& loss) {
  if (loss.inputs.size() > kMaxInputs)
    throw InputError("loss '" + loss.name + "' has " + std::to_string(loss.inputs.size()) +
                     " inputs; generated kernels take at most " + std::to_string(kMaxInputs));
  if (loss.params.size() > kMaxParams)
    throw InputError("loss '" + loss.name + "' has " + std::to_string(loss.params.size()) +
                     " params; generated kernels take at most " + std::to_string(kMaxParams));
}

bool has_columns(const Loss& loss) {
  return std::any_of(loss.inputs.begin(), loss.inputs.end(), [](const LossInput& in) { return in.type.is_vec(); });
}

std::string row_function(const Kernel& kernel, const std::string& symbol) {
  check_limits(kernel.loss);
  return "namespace lossforge::gen {\n" + RowEmitter(kernel, symbol).emit() + "}  // namespace lossforge::gen\n";
}

std::string row_call(const Kernel& kernel, const std::string& symbol, const std::string& lanes,
                     const std::string& args, const std::string& row, const std::string& gscale,
                     const std::string& storage, const std::string& params) {
  const Loss& loss = kernel.loss;
  auto width = [&](size_t i) -> std::string {
    const Type& type = loss.inputs[i].type;
    return type.is_real() ? "1" : type.is_box() ? "4" : args + ".widths[" + std::to_string(i) + "]";
  };
  std::string call = "lossforge::gen::" + symbol + "_row<T, lossforge::gen::" + lanes + ">(";
  for (size_t i = 0; i < loss.inputs.size(); ++i)
    call += "(const " + storage + "*)" + args + ".inputs[" + std::to_string(i) + "] + (" + row + ") * " + width(i) + ", ";
  call += args + ".widths, " + (params.empty() ? args + ".params" : params) + ", " + gscale;
  for (size_t g = 0; g < kernel.gradients.size(); ++g) {
    const std::string p = args + ".grads[" + std::to_string(g) + "]";
    call += ", " + p + " ? (" + storage + "*)" + p + " + (" + row + ") * " + width(kernel.gradients[g].input) + " : (" +
            storage + "*)0";
  }
  return call + ")";
}

}  // namespace lossforge::c_codegen
