// The reference interpreter: a tape over the IR, evaluated a chunk of rows at a time.
//
// Every node of the loss body gets a slot holding its values for the rows of
// the current chunk (rows x width: 1 for real, C for real[C], 4 for box). The
// forward sweep fills the slots in topological order; the backward sweep walks
// them in reverse, adding each node's adjoint times its local derivatives
// (compiler/semantics.hpp) into the adjoints of its arguments.
//
// Activity analysis: only nodes that depend on a pred input carry an adjoint,
// and only those receive one. Partial derivatives toward anything else are never
// evaluated, so a derivative that is NaN or inf where nothing needs it (pow's
// exponent slope at a negative base, when the exponent is a constant) cannot
// poison the gradients that are needed.
//
// Nodes that depend on no input at all (constants, params and arithmetic over
// them) are "uniform": one value shared by every row, read with a row stride of
// 0. A real operand of a real[C] operation is read with a column stride of 0,
// which is all that broadcasting takes; in the backward sweep the same strides
// sum the row's contributions into the real operand's adjoint.
#include "runtime/interpreter.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "compiler/error.hpp"
#include "compiler/semantics.hpp"
#include "runtime/input_check.hpp"

namespace lossforge {
namespace {

// Rows per chunk: at most kMaxChunkRows, fewer when the rows are so wide that
// the tape would hold more than kTapeBudget values.
constexpr size_t kMaxChunkRows = 1024;
constexpr size_t kTapeBudget = size_t(1) << 22;

std::string quoted(std::string_view name) { return "'" + std::string(name) + "'"; }

std::string plural(size_t count, std::string_view noun) {
  return std::to_string(count) + " " + std::string(noun) + (count == 1 ? "" : "s");
}


template <class T>
class Tape {
 public:
  Tape(const Loss& loss, std::span<const Array<T>> inputs, const EvalOptions& options)
      : loss_(loss), inputs_(inputs), shape_(check_inputs(loss, inputs)), gradients_(options.gradients) {
    if (!loss.body) throw std::invalid_argument("interpret: loss " + quoted(loss.name) + " has no body");
    if (!loss.body->type().is_real())
      throw std::invalid_argument("interpret: the body of loss " + quoted(loss.name) + " is " +
                                  loss.body->type().str() + ", not real");
    build_slots(param_values(loss, options));
  }

  Evaluation<T> run() {
    Evaluation<T> result;
    result.loss.resize(shape_.rows);
    if (gradients_)
      for (size_t i : loss_.pred_inputs()) result.grads.emplace_back(shape_.rows, inputs_[i].width);
    const size_t chunk = std::min(chunk_rows(), std::max<size_t>(shape_.rows, 1));
    allocate(chunk);
    for (size_t first = 0; first < shape_.rows; first += chunk) {
      const size_t rows = std::min(chunk, shape_.rows - first);
      forward(first, rows);
      const Slot& root = slots_.back();
      for (size_t r = 0; r < rows; ++r) result.loss[first + r] = root.data[root.uniform ? 0 : r];
      if (gradients_) {
        backward(rows);
        collect_gradients(first, rows, result.grads);
      }
    }
    return result;
  }

 private:
  struct Slot {
    const Node* node = nullptr;
    std::array<size_t, 3> args{};  // slot indices of the arguments
    size_t width = 1;              // values per row
    bool uniform = false;          // one value for every row (depends on no input)
    bool active = false;           // depends on a pred input: carries an adjoint
    std::vector<T> values;         // rows x width (or width, when uniform); unused for inputs
    const T* data = nullptr;       // the values of this chunk: `values`, or the caller's input rows
    std::vector<T> adjoint;        // rows x width, for active slots
  };

  // Reads a slot for an element-wise op of the given output width: a uniform
  // slot repeats its row, a real slot repeats its value along a real[C] row.
  struct View {
    const T* data;
    size_t row_stride;
    size_t col_stride;
    T operator()(size_t r, size_t c) const { return data[r * row_stride + c * col_stride]; }
  };
  static View view(const Slot& s) { return {s.data, s.uniform ? 0 : s.width, s.width == 1 ? size_t(0) : 1}; }

  void build_slots(const std::vector<double>& params) {
    const std::vector<const Node*> order = topological_order(loss_.body);
    slots_.resize(order.size());
    std::unordered_map<const Node*, size_t> index;
    index.reserve(order.size());
    for (size_t i = 0; i < order.size(); ++i) {
      const Node* n = order[i];
      Slot& s = slots_[i];
      index.emplace(n, i);
      s.node = n;
      s.width = shape_.width_of(n->type());
      s.uniform = true;
      for (size_t a = 0; a < n->args().size(); ++a) {
        s.args[a] = index.at(n->arg(a).get());
        s.uniform = s.uniform && slots_[s.args[a]].uniform;
        s.active = s.active || slots_[s.args[a]].active;
      }
      switch (n->op()) {
        case Op::Const: s.values = {T(n->value())}; break;
        case Op::Param:
          if (n->index() < 0 || size_t(n->index()) >= params.size())
            throw std::invalid_argument("interpret: param node " + quoted(n->name()) + " has index " +
                                        std::to_string(n->index()) + " but the loss has " +
                                        plural(params.size(), "param"));
          s.values = {T(params[size_t(n->index())])};
          break;
        case Op::Input: {
          if (n->index() < 0 || size_t(n->index()) >= loss_.inputs.size() ||
              !(loss_.inputs[size_t(n->index())].type == n->type()))
            throw std::invalid_argument("interpret: input node " + quoted(n->name()) +
                                        " does not match the inputs of loss " + quoted(loss_.name));
          s.uniform = false;
          s.active = loss_.inputs[size_t(n->index())].pred;
          break;
        }
        default: break;
      }
      if (s.uniform) {
        s.values.resize(s.width);  // leaves already hold their value; uniform ops compute one row
        s.data = s.values.data();
      }
    }
    // A node whose every path to the loss passes through a flat argument (the
    // shares, where's condition) receives no adjoint: it stays inactive, so its
    // partials (0 * inf at a pole) are never evaluated. compiler/autodiff.cpp
    // builds no adjoint for such nodes either.
    std::vector<bool> reaches(slots_.size(), false);
    if (!reaches.empty()) reaches.back() = true;
    for (size_t i = slots_.size(); i-- > 0;) {
      Slot& s = slots_[i];
      s.active = s.active && reaches[i];
      const Op op = s.node->op();
      for (size_t a = 0; a < s.node->args().size(); ++a)
        if (reaches[i] && op != Op::MinShare && op != Op::MaxShare && !(op == Op::Where && a == 0))
          reaches[s.args[a]] = true;
    }
  }

  size_t chunk_rows() const {
    size_t per_row = 0;
    for (const Slot& s : slots_) {
      if (s.node->op() != Op::Input && !s.uniform) per_row += s.width;
      if (gradients_ && s.active) per_row += s.width;
    }
    return std::clamp<size_t>(kTapeBudget / std::max<size_t>(per_row, 1), 1, kMaxChunkRows);
  }

  void allocate(size_t chunk) {
    for (Slot& s : slots_) {
      if (s.node->op() != Op::Input && !s.uniform) s.values.resize(chunk * s.width);
      if (gradients_ && s.active) s.adjoint.resize(chunk * s.width);
    }
  }

  // ---- forward ----------------------------------------------------------------

  void forward(size_t first, size_t rows) {
    for (Slot& s : slots_) {
      if (s.node->op() == Op::Input) {
        s.data = inputs_[size_t(s.node->index())].data.data() + first * s.width;
        continue;
      }
      if (s.node->is_leaf()) continue;  // constants and params: set once
      s.data = s.values.data();
      evaluate(s, s.uniform ? 1 : rows);
    }
  }

  const Slot& arg(const Slot& s, size_t a) const { return slots_[s.args[a]]; }

  // out(r, c) = value_at(r, c) for every element of the chunk.
  template <class F>
  static void fill(Slot& s, size_t rows, F value_at) {
    T* out = s.values.data();
    const size_t w = s.width;
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < w; ++c) out[r * w + c] = value_at(r, c);
  }
  // The operator's semantics are template arguments, so each loop is compiled
  // for its operator with the function inlined.
  template <T (*F)(T)>
  void unary(Slot& s, size_t rows) {
    View a = view(arg(s, 0));
    fill(s, rows, [&](size_t r, size_t c) { return F(a(r, c)); });
  }
  template <T (*F)(T, T)>
  void binary(Slot& s, size_t rows) {
    View a = view(arg(s, 0)), b = view(arg(s, 1));
    fill(s, rows, [&](size_t r, size_t c) { return F(a(r, c), b(r, c)); });
  }
  // One value per row from the argument rows: row-wise reductions and box ops.
  template <class F>
  void per_row(Slot& s, size_t rows, F f) {
    const Slot& a = arg(s, 0);
    const Slot& b = s.node->args().size() > 1 ? arg(s, 1) : a;
    for (size_t r = 0; r < rows; ++r) s.values[r] = f(a.data + r * a.width, b.data + r * b.width);
  }

  void evaluate(Slot& s, size_t rows) {
    const int width = static_cast<int>(s.node->args().empty() ? 1 : arg(s, 0).width);
    switch (s.node->op()) {
      case Op::Const:
      case Op::Input:
      case Op::Param: break;
      case Op::Add: binary<sem::add<T>>(s, rows); break;
      case Op::Sub: binary<sem::sub<T>>(s, rows); break;
      case Op::Mul: binary<sem::mul<T>>(s, rows); break;
      case Op::Div: binary<sem::div<T>>(s, rows); break;
      case Op::Neg: unary<sem::neg<T>>(s, rows); break;
      case Op::Pow: binary<sem::pow<T>>(s, rows); break;
      case Op::Log: unary<sem::log<T>>(s, rows); break;
      case Op::Exp: unary<sem::exp<T>>(s, rows); break;
      case Op::Sqrt: unary<sem::sqrt<T>>(s, rows); break;
      case Op::Abs: unary<sem::abs<T>>(s, rows); break;
      case Op::Sin: unary<sem::sin<T>>(s, rows); break;
      case Op::Cos: unary<sem::cos<T>>(s, rows); break;
      case Op::Tanh: unary<sem::tanh<T>>(s, rows); break;
      case Op::Relu: unary<sem::relu<T>>(s, rows); break;
      case Op::Softplus: unary<sem::softplus<T>>(s, rows); break;
      case Op::Sigmoid: unary<sem::sigmoid<T>>(s, rows); break;
      case Op::Serf: unary<sem::serf<T>>(s, rows); break;
      case Op::Salf: unary<sem::salf<T>>(s, rows); break;
      case Op::Sgdf: unary<sem::sgdf<T>>(s, rows); break;
      case Op::Erf: unary<sem::erf<T>>(s, rows); break;
      case Op::Erfc: unary<sem::erfc<T>>(s, rows); break;
      case Op::Min: binary<sem::min<T>>(s, rows); break;
      case Op::Max: binary<sem::max<T>>(s, rows); break;
      case Op::Clamp: {
        View a = view(arg(s, 0)), lo = view(arg(s, 1)), hi = view(arg(s, 2));
        fill(s, rows, [&](size_t r, size_t c) { return sem::clamp(a(r, c), lo(r, c), hi(r, c)); });
        break;
      }
      case Op::Softmax:
        for (size_t r = 0; r < rows; ++r) sem::softmax(arg(s, 0).data + r * s.width, s.values.data() + r * s.width, width);
        break;
      case Op::LogSoftmax:
        for (size_t r = 0; r < rows; ++r)
          sem::log_softmax(arg(s, 0).data + r * s.width, s.values.data() + r * s.width, width);
        break;
      case Op::Logsumexp: per_row(s, rows, [&](const T* x, const T*) { return sem::logsumexp(x, width); }); break;
      case Op::Dot: per_row(s, rows, [&](const T* a, const T* b) { return sem::dot(a, b, width); }); break;
      case Op::Sum: per_row(s, rows, [&](const T* x, const T*) { return sem::sum(x, width); }); break;
      case Op::Mean: per_row(s, rows, [&](const T* x, const T*) { return sem::mean(x, width); }); break;
      case Op::Field: {
        const size_t field = size_t(s.node->index());
        per_row(s, rows, [&](const T* box, const T*) { return box[field]; });
        break;
      }
      case Op::Area: per_row(s, rows, [](const T* p, const T*) { return sem::area(p); }); break;
      case Op::Inter: per_row(s, rows, [](const T* p, const T* g) { return sem::inter(p, g); }); break;
      case Op::Enclose: per_row(s, rows, [](const T* p, const T* g) { return sem::enclose(p, g); }); break;
      case Op::Iou: per_row(s, rows, [](const T* p, const T* g) { return sem::iou(p, g); }); break;
      case Op::Where: {
        View c = view(arg(s, 0)), a = view(arg(s, 1)), b = view(arg(s, 2));
        fill(s, rows, [&](size_t r, size_t col) { return sem::where(c(r, col), a(r, col), b(r, col)); });
        break;
      }
      case Op::MinShare: binary<sem::min_share<T>>(s, rows); break;
      case Op::MaxShare: binary<sem::max_share<T>>(s, rows); break;
    }
  }

  // ---- backward ---------------------------------------------------------------

  void backward(size_t rows) {
    for (Slot& s : slots_)
      if (s.active) std::fill_n(s.adjoint.begin(), rows * s.width, T(0));
    Slot& root = slots_.back();
    if (!root.active) return;  // no pred input reaches the loss: all gradients are 0
    std::fill_n(root.adjoint.begin(), rows, T(1));
    for (size_t i = slots_.size(); i-- > 0;) {
      const Slot& s = slots_[i];
      if (s.active && !s.node->is_leaf()) propagate(s, rows);
    }
  }

  // The adjoint of argument `a` gets, element by element, the node's adjoint
  // times partial_at(r, c). Nothing happens, and partial_at is never called,
  // when the argument is not active.
  template <class F>
  void accumulate(const Slot& s, size_t a, size_t rows, F partial_at) {
    Slot& target = slots_[s.args[a]];
    if (!target.active) return;
    T* adjoint = target.adjoint.data();
    const size_t row_stride = target.width, col_stride = target.width == 1 ? 0 : 1;
    const T* g = s.adjoint.data();
    const size_t w = s.width;
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < w; ++c) adjoint[r * row_stride + c * col_stride] += g[r * w + c] * partial_at(r, c);
  }
  // Like accumulate, but adds the node's adjoint itself where `picked(r, c)`
  // holds and nothing elsewhere.
  template <class F>
  void accumulate_selected(const Slot& s, size_t a, size_t rows, F picked) {
    Slot& target = slots_[s.args[a]];
    if (!target.active) return;
    T* adjoint = target.adjoint.data();
    const size_t row_stride = target.width, col_stride = target.width == 1 ? 0 : 1;
    const T* g = s.adjoint.data();
    const size_t w = s.width;
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < w; ++c)
        if (picked(r, c)) adjoint[r * row_stride + c * col_stride] += g[r * w + c];
  }
  template <T (*Da)(T)>
  void unary_partial(const Slot& s, size_t rows) {
    View a = view(arg(s, 0));
    accumulate(s, 0, rows, [&](size_t r, size_t c) { return Da(a(r, c)); });
  }
  template <T (*Da)(T, T), T (*Db)(T, T)>
  void binary_partials(const Slot& s, size_t rows) {
    View a = view(arg(s, 0)), b = view(arg(s, 1));
    accumulate(s, 0, rows, [&](size_t r, size_t c) { return Da(a(r, c), b(r, c)); });
    accumulate(s, 1, rows, [&](size_t r, size_t c) { return Db(a(r, c), b(r, c)); });
  }
  // The adjoint row of argument a, or null when it needs none.
  T* adjoint_row(const Slot& s, size_t a, size_t r) {
    Slot& target = slots_[s.args[a]];
    return target.active ? target.adjoint.data() + r * target.width : nullptr;
  }

  void propagate(const Slot& s, size_t rows) {
    const int width = static_cast<int>(arg(s, 0).width);
    const T* g = s.adjoint.data();
    switch (s.node->op()) {
      case Op::Const:
      case Op::Input:
      case Op::Param: break;
      case Op::Add: binary_partials<sem::add_da<T>, sem::add_db<T>>(s, rows); break;
      case Op::Sub: binary_partials<sem::sub_da<T>, sem::sub_db<T>>(s, rows); break;
      case Op::Mul: binary_partials<sem::mul_da<T>, sem::mul_db<T>>(s, rows); break;
      case Op::Div: binary_partials<sem::div_da<T>, sem::div_db<T>>(s, rows); break;
      case Op::Neg: unary_partial<sem::neg_da<T>>(s, rows); break;
      case Op::Pow: binary_partials<sem::pow_da<T>, sem::pow_db<T>>(s, rows); break;
      case Op::Log: unary_partial<sem::log_da<T>>(s, rows); break;
      case Op::Exp: unary_partial<sem::exp_da<T>>(s, rows); break;
      case Op::Sqrt: unary_partial<sem::sqrt_da<T>>(s, rows); break;
      case Op::Abs: unary_partial<sem::abs_da<T>>(s, rows); break;
      case Op::Sin: unary_partial<sem::sin_da<T>>(s, rows); break;
      case Op::Cos: unary_partial<sem::cos_da<T>>(s, rows); break;
      case Op::Tanh: unary_partial<sem::tanh_da<T>>(s, rows); break;
      case Op::Relu: unary_partial<sem::relu_da<T>>(s, rows); break;
      case Op::Softplus: unary_partial<sem::softplus_da<T>>(s, rows); break;
      case Op::Sigmoid: unary_partial<sem::sigmoid_da<T>>(s, rows); break;
      case Op::Serf: unary_partial<sem::serf_da<T>>(s, rows); break;
      case Op::Salf: unary_partial<sem::salf_da<T>>(s, rows); break;
      case Op::Sgdf: unary_partial<sem::sgdf_da<T>>(s, rows); break;
      case Op::Erf: unary_partial<sem::erf_da<T>>(s, rows); break;
      case Op::Erfc: unary_partial<sem::erfc_da<T>>(s, rows); break;
      case Op::Min: binary_partials<sem::min_da<T>, sem::min_db<T>>(s, rows); break;
      case Op::Max: binary_partials<sem::max_da<T>, sem::max_db<T>>(s, rows); break;
      case Op::Clamp: {
        View a = view(arg(s, 0)), lo = view(arg(s, 1)), hi = view(arg(s, 2));
        accumulate(s, 0, rows, [&](size_t r, size_t c) { return sem::clamp_da(a(r, c), lo(r, c), hi(r, c)); });
        accumulate(s, 1, rows, [&](size_t r, size_t c) { return sem::clamp_dlo(a(r, c), lo(r, c), hi(r, c)); });
        accumulate(s, 2, rows, [&](size_t r, size_t c) { return sem::clamp_dhi(a(r, c), lo(r, c), hi(r, c)); });
        break;
      }
      case Op::Softmax:
      case Op::LogSoftmax:
        if (T* dx0 = adjoint_row(s, 0, 0)) {
          auto vjp = s.node->op() == Op::Softmax ? sem::softmax_vjp<T> : sem::log_softmax_vjp<T>;
          for (size_t r = 0; r < rows; ++r) {
            const size_t at = r * s.width;
            vjp(s.data + at, g + at, dx0 + at, width);
          }
        }
        break;
      case Op::Logsumexp:
        for (size_t r = 0; r < rows; ++r)
          sem::logsumexp_vjp(arg(s, 0).data + r * size_t(width), s.data[r], g[r], adjoint_row(s, 0, r), width);
        break;
      case Op::Dot:
        for (size_t r = 0; r < rows; ++r) {
          const size_t at = r * size_t(width);
          sem::dot_vjp(arg(s, 0).data + at, arg(s, 1).data + at, g[r], adjoint_row(s, 0, r), adjoint_row(s, 1, r),
                       width);
        }
        break;
      case Op::Sum:
        for (size_t r = 0; r < rows; ++r) sem::sum_vjp(g[r], adjoint_row(s, 0, r), width);
        break;
      case Op::Mean:
        for (size_t r = 0; r < rows; ++r) sem::mean_vjp(g[r], adjoint_row(s, 0, r), width);
        break;
      case Op::Field: {
        const size_t field = size_t(s.node->index());
        for (size_t r = 0; r < rows; ++r) adjoint_row(s, 0, r)[field] += g[r];
        break;
      }
      case Op::Area:
        for (size_t r = 0; r < rows; ++r) sem::area_vjp(arg(s, 0).data + 4 * r, g[r], adjoint_row(s, 0, r));
        break;
      case Op::Inter:
      case Op::Enclose:
      case Op::Iou: {
        auto vjp = s.node->op() == Op::Inter ? sem::inter_vjp<T>
                   : s.node->op() == Op::Enclose ? sem::enclose_vjp<T>
                                                 : sem::iou_vjp<T>;
        for (size_t r = 0; r < rows; ++r)
          vjp(arg(s, 0).data + 4 * r, arg(s, 1).data + 4 * r, g[r], adjoint_row(s, 0, r), adjoint_row(s, 1, r));
        break;
      }
      case Op::Where: {
        // The picked branch gets the adjoint itself, the other nothing (not g * 0,
        // which would leak a NaN adjoint into it); the condition gets none.
        View c = view(arg(s, 0));
        for (size_t branch : {size_t(1), size_t(2)})
          accumulate_selected(s, branch, rows, [&](size_t r, size_t col) { return (c(r, col) != T(0)) == (branch == 1); });
        break;
      }
      case Op::MinShare:
      case Op::MaxShare: break;  // flat: no gradient flows through a share
    }
  }

  // Adds each active pred input's adjoint into its gradient rows.
  void collect_gradients(size_t first, size_t rows, std::vector<Array<T>>& grads) const {
    const std::vector<size_t> preds = loss_.pred_inputs();
    for (const Slot& s : slots_) {
      if (s.node->op() != Op::Input || !s.active) continue;
      const size_t k = size_t(std::find(preds.begin(), preds.end(), size_t(s.node->index())) - preds.begin());
      T* out = grads[k].row(first);
      for (size_t i = 0; i < rows * s.width; ++i) out[i] += s.adjoint[i];
    }
  }

  const Loss& loss_;
  std::span<const Array<T>> inputs_;
  BatchShape shape_;
  bool gradients_;
  std::vector<Slot> slots_;  // in topological order: the root is last
};

}  // namespace

template <class T>
Evaluation<T> interpret(const Loss& loss, std::span<const Array<T>> inputs, const EvalOptions& options) {
  return Tape<T>(loss, inputs, options).run();
}

template Evaluation<float> interpret(const Loss&, std::span<const Array<float>>, const EvalOptions&);
template Evaluation<double> interpret(const Loss&, std::span<const Array<double>>, const EvalOptions&);

}  // namespace lossforge
