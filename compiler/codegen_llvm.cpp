// IR -> LLVM IR -> optimised native code, for one Kernel.
//
// Shape of the generated code
//   lossforge_kernel (external) loads the input and output pointers from their
//   arrays and calls the row function, whose pointer arguments are `noalias`,
//   so the vectoriser knows that no store to an output can change an input
//   and needs no runtime overlap checks. The row function computes the
//   uniform nodes (no input below them) once, then loops over rows [begin, end):
//     * a `real` node is one SSA value per row;
//     * a `box` is an input row of 4 values, read by field and box ops;
//     * a `real[C]` node owns one row of scratch memory. Element-wise real[C]
//       nodes are not computed one loop each: consecutive ones (in topological
//       order) of the same width are fused into one column loop, which stores
//       only the values something outside the loop reads. Row-wise ops
//       (logsumexp, dot, sum, ...) are their own loops, with three
//       exceptions that save passes over the row: softmax(x) keeps e^(x - m)
//       in its row and its readers divide; dot(a, log_softmax(x)) sums in
//       the loop of Σ e^(x - m) when a is ready (rowwise, Op::Dot; nodes
//       are emitted arguments without row reductions first, so that weights
//       computed from inputs are: emission_order); and sum(-a) reads a,
//       taken from a folded dot of a when there is one. In a column loop, a
//       product a * f whose f calls library routines skips f in blocks where
//       a is all zero when that cannot change the product's bits (guarded
//       products: one-hot weights).
//   Vectors are one register wide (vector_lanes: 16 floats with AVX-512, 8
//   with AVX2). Losses over real[C] vectorise inside their column loops,
//   emitted as vector code (lane_blocks): whole vectors, then the last
//   columns as one more vector, masked (or, for loops that store to output
//   rows, moved back to end at the row's end); scratch rows are padded to
//   whole vectors. The others vectorise across rows:
//     * rows of reals (focal, ...): with AVX-512 the last partial vector
//       runs masked; without it (AVX2, whose masked stores are slow) four
//       vectors per iteration (the Full tier; one in the Quick tier) and
//       the last rows in a scalar remainder loop;
//     * rows with boxes (GIoU, ...): blocks of one vector (16 rows, 8 in
//       double, with AVX-512), emitted as vector code, one row per lane,
//       the boxes transposed by shuffles (compiler/box_lanes.hpp); the last
//       block moved back to end at `end`, a range shorter than a block run
//       on a padded copy (row_blocks, build_entry). The entry calls the row
//       function twice then; else it is inlined.
//
// Optimisation
//   Not LLVM's O3 pipeline but the few passes these kernels need (optimize()):
//   the IR arrives in SSA form, loops rotated, pointers noalias, so O3's
//   inliner, IPO, loop canonicalisation and second simplification round add
//   nothing but attributes and block names. Against O3 on the same IR: the
//   same vector loops and run times, compiles 1.3-2x faster (bench/README.md,
//   session 5).
//
// Exactness
//   Each op mirrors compiler/semantics.hpp: the same formula, the same order of
//   operations, the same constants rounded to T, the same NaN-aware selects
//   for min/max/clamp/relu and box sides. No fast-math flags: no reassociation,
//   no FMA contraction, so +, -, *, / round exactly as the interpreter's do.
//   Row reductions (sum, dot, the row maximum, the softmax denominators) run
//   in sem::row_sum_of's order, 8 interleaved lanes combined as a halving
//   tree, emitted as explicit 8-wide vector loops: the interpreter adds in the
//   same order, so both agree bit for bit and the reductions vectorise.
//
// Math routines (T = float uses the f-suffixed ones)
//   exp, log, sin, cos, pow   llvm.exp/log/sin/cos/pow intrinsics. Scalar:
//       glibc libm (≤ 1 ulp in float and double, per glibc's error tables).
//       In vectorised loops and vector code (box rows, column loops):
//       glibc's libmvec variants of the vector width, AVX-512
//       (_ZGVeN16v_expf, _ZGVeN8v_exp, ...) where the host has it, else AVX2
//       (_ZGVdN8v_expf, _ZGVdN4v_exp, ...), mapped by the TargetLibraryInfo
//       (vector_math_library) for the vectoriser and ReplaceWithVeclib (pow
//       of vectors: called by that name, KernelBuilder::vector_pow). Every
//       column of a real[C] row gets the vector routine (a row's own values,
//       such as ln Σ e^(x - m), the scalar one); rows of reals leave their
//       last rows to the scalar ones. glibc documents them to at
//       most 4 ulp. Measured on AVX-512 (tests/llvm_math_test.cpp, the grid
//       below): exp 3 ulp (float and double), log 4 ulp (float) and 2 ulp
//       (double).
//       pow with a constant integer exponent, |n| <= 4, is multiplication
//       instead (<= 2 ulp; x^2 exact): see KernelBuilder::pow. A param in
//       an exponent is made such a constant in a second copy of the row
//       loop, taken when the call's params equal their defaults.
//   sqrt, fabs                llvm.sqrt/fabs: exact (correctly rounded).
//   tanh, erf, erfc, atan, hypot   no libm call: LLVM 16 maps none of them to
//       libmvec, and a scalar call keeps the whole row loop scalar (CSE-
//       Autoloss-B cls was 1.7x the interpreter). They are emitted inline from
//       +, -, *, /, sqrt, selects, llvm.fmuladd (fused on FMA hosts) and
//       llvm.exp (libmvec in vector loops), without control flow, so they
//       vectorise (see KernelBuilder::tanh, atan, erf, erfc, hypot1). Where
//       branches divide, the quotient's operands are selected before one
//       division (the same bits; divisions are the slowest vector
//       instructions here: sigmoid, atan, erf, erfc):
//         tanh   Cephes tanh/tanhf: |x| + |x| x² R(x²) below 0.625, else
//                1 - 2/(e^(2|x|) + 1); sign by copysign. sgdf's tanh(πa/8)
//                takes 1 - 2e/(1 + e) with e = e^(-|πa/4|), the exp of
//                sgdf's derivative, so that the two share it.
//         atan   Cephes atan/atanf: reduction by tan(3π/8) and 0.66 (float:
//                tan(π/8)) to [-0.42, 0.42], then r + r s R(s), s = r².
//                Used by sgdf on tanh(πa/8) in [-1, 1].
//         erf, erfc   Sun fdlibm s_erf.c (what glibc's erf/erfc and, with the
//                coefficients rounded to float, erff/erfcf compute): rational
//                approximations on |x| < 0.84375, < 1.25, < 1/0.35, < 28, all
//                evaluated and one selected (4 divisions, not 6); the tails as
//                exp(-t² - 0.5625) exp((t-a)(t+a) + R/S) / a with t = a
//                truncated so that t² is exact.
//         hypot(1, u) (salf)   √(1 + u²), or |u| where that is the correctly
//                rounded value (|u| > 2^12 float, 2^26 double).
//       serf of an S-curve (sigmoid, serf, salf, sgdf: values in [0, 1] for
//       every input) needs erf on [0, 0.45] only, and takes the first
//       interval's formula alone: the same bits, a sixth of the work.
//       Measured against glibc's scalar routines (the interpreter's) over a
//       dense grid of 0.66M (float) / 0.77M (double) points on [-30, 30] plus
//       log-spaced tails, in the vectorised kernel (tests/llvm_math_test.cpp):
//                     float            double
//         tanh        2 ulp            2 ulp (4.0e-16 relative)
//         erf         1 ulp            1 ulp (2.2e-16)
//         erfc        5 ulp            6 ulp (7.9e-16)
//         serf, salf, sgdf (values in [0, 1], incl. this file's atan and
//                     hypot): at most 1 eps absolute, float and double.
//       atan alone, scalar emulation of the same operations over [-10, 10]:
//       float 3 ulp, double 1 ulp. ±0, ±inf and NaN give exactly libm's
//       results (signed zeros included). cosh is not needed: sgdf's
//       derivative is written with exp by compiler/autodiff.cpp.
//   log1p (softplus)          not called: softplus needs log1p(e) for
//       e = exp(-|a|) in (0, 1], which is computed as Goldberg's
//       u = 1 + e; u == 1 ? e : log(u) * e / (u - 1), accurate to a few ulp
//       when log is (D. Goldberg, "What every computer scientist should know
//       about floating-point arithmetic", Theorem 4), and vectorisable
//       through libmvec's log.
//   The interpreter calls the scalar libm routines, so LLVM and interpreter
//   results differ only by these few ulp (and what a formula makes of them).
#include "compiler/codegen_llvm.hpp"
#include "compiler/box_lanes.hpp"
#include "compiler/value_range.hpp"

#include <llvm/ADT/StringMap.h>
#include <llvm/Analysis/TargetLibraryInfo.h>
#include <llvm/Analysis/TargetTransformInfo.h>
#include <llvm/CodeGen/ReplaceWithVeclib.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/SubtargetFeature.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Transforms/IPO/AlwaysInliner.h>
#include <llvm/Transforms/IPO/GlobalDCE.h>
#include <llvm/Transforms/InstCombine/InstCombine.h>
#include <llvm/Transforms/Scalar/EarlyCSE.h>
#include <llvm/Transforms/Scalar/LICM.h>
#include <llvm/Transforms/Scalar/LoopPassManager.h>
#include <llvm/Transforms/Scalar/SimplifyCFG.h>
#include <llvm/Transforms/Utils/InjectTLIMappings.h>
#include <llvm/Transforms/Utils/LCSSA.h>
#include <llvm/Transforms/Utils/LoopSimplify.h>
#include <llvm/Transforms/Vectorize/LoopVectorize.h>
#include <llvm/Support/DynamicLibrary.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Target/TargetOptions.h>
#include <llvm/TargetParser/Host.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "compiler/error.hpp"
#include "compiler/semantics.hpp"

namespace lossforge::llvm_codegen {
namespace {

// ---- the host target ---------------------------------------------------------

void initialize_llvm() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
  });
}

struct HostTarget {
  std::string triple;
  std::string cpu;
  std::string features;
  bool libmvec = false;  // glibc's vector math library can be loaded into this process
  int vector_bits = 256;  // the kernels' vectors: see vector_lanes
};

// A TargetMachine for the host; null, with `error` set, when LLVM has none.
// Position-independent, small code model: the object can be loaded at any
// address by the JIT's linker (it makes stubs for the libm calls).
std::unique_ptr<llvm::TargetMachine> make_machine(const HostTarget& host, llvm::CodeGenOpt::Level effort,
                                                  std::string& error) {
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(host.triple, error);
  if (!target) {
    error = "LLVM has no target for " + host.triple + ": " + error;
    return nullptr;
  }
  llvm::TargetOptions options;  // IEEE semantics: no unsafe math, no FMA contraction
  std::unique_ptr<llvm::TargetMachine> machine(target->createTargetMachine(
      host.triple, host.cpu, host.features, options, llvm::Reloc::PIC_, llvm::CodeModel::Small, effort));
  if (!machine) error = "LLVM cannot make a target machine for " + host.triple + " " + host.cpu;
  return machine;
}

// 512 where the CPU has AVX-512F and LLVM does not tune it for 256-bit
// vectors. Intel's AVX-512 CPUs lower their clock for 512-bit work, so LLVM
// tunes them (skylake-avx512 to sapphirerapids) "prefer-256-bit"; AMD's
// znver4 runs them at full speed and is not so tuned. Measured on znver4
// (bench/README.md, session 6): 512-bit kernels 1.05-1.43x faster.
int vector_bits_of(const HostTarget& host) {
  std::string error;
  const std::unique_ptr<llvm::TargetMachine> machine = make_machine(host, llvm::CodeGenOpt::None, error);
  if (!machine) return 256;
  const llvm::MCSubtargetInfo& subtarget = *machine->getMCSubtargetInfo();
  return subtarget.checkFeatures("+avx512f") && !subtarget.checkFeatures("+prefer-256-bit") ? 512 : 256;
}

const HostTarget& host_target() {
  static const HostTarget host = [] {
    initialize_llvm();
    HostTarget h;
    h.triple = llvm::sys::getProcessTriple();
    h.cpu = llvm::sys::getHostCPUName().str();
    llvm::SubtargetFeatures features;
    llvm::StringMap<bool> host_features;
    if (llvm::sys::getHostCPUFeatures(host_features))
      for (const auto& feature : host_features) features.AddFeature(feature.first(), feature.second);
    h.features = features.getString();
    h.vector_bits = vector_bits_of(h);
    // The JIT resolves the vector variants from libmvec.so.1 (runtime/llvm_engine.cpp
    // loads it the same way); without it the loops must not call them.
    std::string error;
    h.libmvec = llvm::sys::DynamicLibrary::getPermanentLibrary("libmvec.so.1", &error).isValid();
    return h;
  }();
  return host;
}

// How the rows of a loss vectorise: inside its column loops when it has
// real[C] inputs, else across rows. Rows of reals (element-wise losses) run
// in one vector loop (its tail: see Vectorise::Elements); rows with boxes run
// in blocks of vector code (row_blocks): their 4-strided loads are 4x as slow
// masked, and the vectoriser's interleaved loads of a block took the
// instruction selector 2-3x the time of transposing shuffles (session 13).
enum class Rows { Columns, Elements, Blocks };
Rows rows_layout(const Loss& loss) {
  bool vec = false, box = false;
  for (const LossInput& input : loss.inputs) {
    vec = vec || input.type.is_vec();
    box = box || input.type.is_box();
  }
  return vec ? Rows::Columns : box ? Rows::Blocks : Rows::Elements;
}

// The code generator's effort for a kernel of the tier. Box kernels run
// within 1.6x of their memory traffic: the aggressive code generator made
// them 1-4% faster than the fast one for 1.8x the compile time (GIoU 15.7
// against 9.4 ms; bench/README.md, session 6; as vector code in session 13,
// 10-15% faster for 2x), so both tiers use the fast one.
llvm::CodeGenOpt::Level codegen_effort(const Kernel& kernel, OptLevel level) {
  if (level == OptLevel::Quick || rows_layout(kernel.loss) == Rows::Blocks) return llvm::CodeGenOpt::None;
  return llvm::CodeGenOpt::Aggressive;
}

// The host's TargetMachine for this effort, one per thread: making one and
// its subtarget (register classes, legaliser tables) cost 0.6 ms of every
// compile, and a TargetMachine is not for threads compiling at once. ORC's
// own single-threaded compiler keeps one for all its modules likewise.
llvm::TargetMachine& host_machine(llvm::CodeGenOpt::Level effort) {
  thread_local std::map<llvm::CodeGenOpt::Level, std::unique_ptr<llvm::TargetMachine>> machines;
  std::unique_ptr<llvm::TargetMachine>& machine = machines[effort];
  if (!machine) {
    std::string error;
    machine = make_machine(host_target(), effort, error);
    if (!machine) throw UnavailableError(error);
  }
  return *machine;
}

const llvm::TargetLibraryInfoImpl& vector_math_library();  // libm -> libmvec, below

// ---- the kernel builder ------------------------------------------------------

class KernelBuilder {
 public:
  KernelBuilder(llvm::Module& module, const Kernel& kernel, DType dtype, OptLevel level)
      : ctx_(module.getContext()),
        module_(module),
        kernel_(kernel),
        loss_(kernel.loss),
        b_(ctx_),
        t_(dtype == DType::F32 ? llvm::Type::getFloatTy(ctx_) : llvm::Type::getDoubleTy(ctx_)),
        f32_(dtype == DType::F32),
        element_vectors_(level == OptLevel::Full ? kElementVectors : 1),
        boxes_(llvm_codegen::rows_layout(kernel.loss) == Rows::Blocks ? &box_lanes(int(vector_width())) : nullptr),
        v_(boxes_ ? llvm::FixedVectorType::get(t_, unsigned(boxes_->lanes)) : t_),
        i64_(llvm::Type::getInt64Ty(ctx_)),
        ptr_(llvm::PointerType::get(ctx_, 0)) {}

  void build() {
    plan();
    llvm::Function* rows = build_row_function();
    build_entry(rows);
    build_scratch_size();
  }

 private:
  // What the code generator knows about one node before emitting anything.
  struct NodePlan {
    bool uniform = true;      // depends on no input
    size_t width_input = 0;   // real[C] nodes: the input whose row width is C
    std::vector<const Node*> users;
    size_t scratch = SIZE_MAX;  // real[C] non-inputs: index of its scratch row
    size_t position = 0;        // in order_, the order of emission
  };

  // ---- planning ----

  void plan() {
    if (!loss_.body || !loss_.body->type().is_real())
      throw std::invalid_argument("codegen: the body of loss '" + loss_.name + "' is not real");
    if (kernel_.has_gradients()) check_gradient_shapes(loss_, kernel_.gradients);
    roots_ = kernel_.roots();
    for (const Expr& r : roots_) root_set_.insert(r.get());
    order_ = emission_order(roots_);
    for (size_t position = 0; position < order_.size(); ++position) {
      const Node* n = order_[position];
      NodePlan& p = plan_[n];
      p.position = position;
      for (size_t i = 0; i < n->args().size(); ++i) {
        plan_[read_row(n, i)].users.push_back(n);
        p.uniform = p.uniform && plan_[n->arg(i).get()].uniform;
      }
      if (n->op() == Op::Input) {
        const size_t index = size_t(n->index());
        if (n->index() < 0 || index >= loss_.inputs.size() || !(loss_.inputs[index].type == n->type()))
          throw std::invalid_argument("codegen: input node '" + n->name() + "' does not match the inputs of loss '" +
                                      loss_.name + "'");
        p.uniform = false;
      }
      if (n->op() == Op::Param && (n->index() < 0 || size_t(n->index()) >= loss_.params.size()))
        throw std::invalid_argument("codegen: param node '" + n->name() + "' has no entry in loss '" + loss_.name +
                                    "'");
      if (n->type().is_vec()) {
        p.width_input = width_input(n->type());
        if (n->op() != Op::Input) {
          p.scratch = scratch_inputs_.size();
          scratch_inputs_.push_back(p.width_input);
        }
      }
      if (n->type().is_box() && n->op() != Op::Input)
        throw std::invalid_argument("codegen: box values other than inputs are not supported (" +
                                    std::string(op_name(n->op())) + ")");
      if (n->op() == Op::Pow && plan_[n->arg(1).get()].uniform) collect_params(n->arg(1).get(), exponent_params_);
      if (n->op() == Op::Softmax) softmax_of_[n->arg(0).get()] = n;
    }
    // log_softmax(x) read only by dots: the dots fold it in (rowwise).
    for (const Node* n : order_) {
      if (n->op() != Op::LogSoftmax || is_root(n)) continue;
      const std::vector<const Node*>& users = plan_.at(n).users;
      const auto folds = [n](const Node* u) {  // dot(a, n) with a != n (dot(n, n) needs the row)
        return u->op() == Op::Dot && (u->arg(0).get() == n) != (u->arg(1).get() == n);
      };
      if (std::all_of(users.begin(), users.end(), folds))
        dot_only_.insert(n);
    }
  }

  // The order of emission: each node after its arguments, and of those the
  // ones without a row reduction below them first. The weights of
  // dot(log_softmax(x), w), element-wise on inputs, are then computed before
  // the exponentials of x are summed, and the dot sums in that loop
  // (shifted_exps) instead of a loop of its own (CSE-Autoloss-A's
  // -dot(log_softmax(X), Y (1 + sin Z)) as the simplifier orders it).
  static std::vector<const Node*> emission_order(std::span<const Expr> roots) {
    std::unordered_map<const Node*, bool> reduces;  // a row reduction at or below the node
    for (const Node* n : topological_order(roots)) {
      bool r = n->info().kind == OpKind::Rowwise;
      for (const Expr& a : n->args()) r = r || reduces.at(a.get());
      reduces[n] = r;
    }
    struct Visit {
      const Node* node;
      std::vector<const Node*> args;  // in the order to visit
      size_t next = 0;
    };
    const auto visit = [&](const Node* n) {
      Visit v{n, {}, 0};
      for (const Expr& a : n->args()) v.args.push_back(a.get());
      std::stable_sort(v.args.begin(), v.args.end(),
                       [&](const Node* a, const Node* b) { return !reduces.at(a) && reduces.at(b); });
      return v;
    };
    std::vector<const Node*> order;
    std::unordered_set<const Node*> seen;
    std::vector<Visit> stack;
    for (const Expr& root : roots) {
      if (!seen.insert(root.get()).second) continue;
      stack.push_back(visit(root.get()));
      while (!stack.empty()) {
        Visit& top = stack.back();
        if (top.next < top.args.size()) {
          const Node* child = top.args[top.next++];
          if (seen.insert(child).second) stack.push_back(visit(child));
        } else {
          order.push_back(top.node);
          stack.pop_back();
        }
      }
    }
    return order;
  }

  // What argument i of n reads. sum(-a) and mean(-a) reduce a's lanes
  // negated (the same bits: negation is exact), so that the row -a is not
  // stored for them: its column loop fuses with its other readers (the
  // gradient of cross-entropy, -y - softmax(x) sum(-y), makes one loop over
  // -y and not two, and stores no row of it).
  static bool sums_negation(const Node* n) {
    return (n->op() == Op::Sum || n->op() == Op::Mean) && n->arg(0)->op() == Op::Neg;
  }
  static const Node* read_row(const Node* n, size_t i) {
    return sums_negation(n) ? n->arg(0)->arg(0).get() : n->arg(i).get();
  }

  // The params below a uniform node, by index.
  void collect_params(const Node* n, std::set<size_t>& out) const {
    if (n->op() == Op::Param) out.insert(size_t(n->index()));
    for (const Expr& a : n->args()) collect_params(a.get(), out);
  }

  // The first input whose type spells the same width: its row width is the
  // width of every real[C] value with that C (the input checks enforce it).
  size_t width_input(const Type& type) const {
    for (size_t i = 0; i < loss_.inputs.size(); ++i)
      if (loss_.inputs[i].type.is_vec() && loss_.inputs[i].type.width() == type.width()) return i;
    throw std::invalid_argument("codegen: width " + std::string(type.width().str()) + " is bound by no input of '" +
                                loss_.name + "'");
  }

  // ---- small IR helpers ----

  llvm::Value* k(double value) { return llvm::ConstantFP::get(v_, value); }
  llvm::Value* index(int64_t value) { return llvm::ConstantInt::get(i64_, value); }
  llvm::Align align() const { return llvm::Align(f32_ ? 4 : 8); }  // of T: vectors of rows start anywhere

  llvm::Value* intrinsic(llvm::Intrinsic::ID id, std::initializer_list<llvm::Value*> args) {
    return b_.CreateIntrinsic(id, {v_}, llvm::ArrayRef<llvm::Value*>(args.begin(), args.size()));
  }
  llvm::Value* exp(llvm::Value* a) { return intrinsic(llvm::Intrinsic::exp, {a}); }
  llvm::Value* log(llvm::Value* a) { return intrinsic(llvm::Intrinsic::log, {a}); }
  // |-a| is |a|: written so, softplus(-x) and sigmoid(-x) share exp(-|x|)
  // with softplus(x) and sigmoid(x) through EarlyCSE (LLVM 16's InstCombine
  // does not fold fabs(fneg a), and runs after EarlyCSE besides).
  llvm::Value* fabs(llvm::Value* a) {
    auto* negation = llvm::dyn_cast<llvm::UnaryOperator>(a);
    if (negation && negation->getOpcode() == llvm::Instruction::FNeg) a = negation->getOperand(0);
    return intrinsic(llvm::Intrinsic::fabs, {a});
  }

  llvm::Value* is_nan(llvm::Value* a) { return b_.CreateFCmpUNO(a, a); }
  // sem::min_picks_a / max_picks_a: a <= b || isnan(a) (a NaN in b is picked by the select).
  llvm::Value* min_picks_a(llvm::Value* a, llvm::Value* b) { return b_.CreateOr(b_.CreateFCmpOLE(a, b), is_nan(a)); }
  llvm::Value* max_picks_a(llvm::Value* a, llvm::Value* b) { return b_.CreateOr(b_.CreateFCmpOGE(a, b), is_nan(a)); }
  llvm::Value* min(llvm::Value* a, llvm::Value* b) { return b_.CreateSelect(min_picks_a(a, b), a, b); }
  llvm::Value* max(llvm::Value* a, llvm::Value* b) { return b_.CreateSelect(max_picks_a(a, b), a, b); }
  llvm::Value* half_sum(llvm::Value* a) { return b_.CreateFDiv(b_.CreateFAdd(a, k(1)), k(2)); }  // (a + 1) / 2

  // sem::min_share_a / max_share_a once `wins` (a NaN or strictly better) is known.
  llvm::Value* share(llvm::Value* wins, llvm::Value* a, llvm::Value* b) {
    return b_.CreateSelect(wins, k(1), b_.CreateSelect(b_.CreateFCmpOEQ(a, b), k(0.5), k(0)));
  }

  // log1p(e) for e in (0, 1] (or NaN), Goldberg's form: see the file comment.
  llvm::Value* log1p_of_small(llvm::Value* e) {
    llvm::Value* u = b_.CreateFAdd(k(1), e);
    llvm::Value* ratio = b_.CreateFDiv(b_.CreateFMul(log(u), e), b_.CreateFSub(u, k(1)));
    return b_.CreateSelect(b_.CreateFCmpOEQ(u, k(1)), e, ratio);
  }

  // ---- vectorisable math routines (see the file comment for method and error) ----
  // Built from +, -, *, /, sqrt, selects, llvm.fmuladd (fused where the CPU has
  // FMA) and llvm.exp (libmvec in vector loops): no control flow, no scalar
  // call, so a row loop using them vectorises.

  llvm::Value* fmuladd(llvm::Value* a, llvm::Value* b, llvm::Value* c) {
    return intrinsic(llvm::Intrinsic::fmuladd, {a, b, c});
  }
  llvm::Value* copysign(llvm::Value* magnitude, llvm::Value* sign) {
    return intrinsic(llvm::Intrinsic::copysign, {magnitude, sign});
  }
  // c[0] x^n + c[1] x^(n-1) + ... + c[n], by Horner's rule.
  llvm::Value* horner(llvm::Value* x, std::initializer_list<double> c) {
    const double* it = c.begin();
    llvm::Value* r = k(*it++);
    for (; it != c.end(); ++it) r = fmuladd(r, x, k(*it));
    return r;
  }
  llvm::Value* select(llvm::Value* c, llvm::Value* a, llvm::Value* b) { return b_.CreateSelect(c, a, b); }
  llvm::Value* lt(llvm::Value* a, double b) { return b_.CreateFCmpOLT(a, k(b)); }
  llvm::Value* ge(llvm::Value* a, double b) { return b_.CreateFCmpOGE(a, k(b)); }

  // tanh(x), Cephes tanh.c / tanhf.c: |x| < 0.625: |x| + |x| z R(z), z = x²
  // (R rational in double, polynomial in float); else 1 - 2 / (e^(2|x|) + 1),
  // which is exactly 1 once e^(2|x|) is large or inf. Sign by copysign, so
  // tanh(-0) = -0 and NaN stays NaN. A caller that has e = e^(-2|x|) passes
  // it (sgdf): then 1 - 2e / (1 + e), the same value, also rounded once near 1.
  llvm::Value* tanh(llvm::Value* x, llvm::Value* exp_of_minus_2ax = nullptr) {
    llvm::Value* ax = fabs(x);
    llvm::Value* z = b_.CreateFMul(ax, ax);
    llvm::Value* small;
    if (f32_) {
      llvm::Value* p = horner(z, {-5.70498872745E-3, 2.06390887954E-2, -5.37397155531E-2, 1.33314422036E-1,
                                  -3.33332819422E-1});
      small = fmuladd(b_.CreateFMul(p, z), ax, ax);
    } else {
      llvm::Value* p = horner(z, {-9.64399179425052238628E-1, -9.92877231001918586564E1, -1.61468768441708447952E3});
      llvm::Value* q = horner(z, {1.0, 1.12811678491632931402E2, 2.23548839060100448583E3, 4.84406305325125486048E3});
      small = fmuladd(b_.CreateFMul(ax, z), b_.CreateFDiv(p, q), ax);
    }
    llvm::Value* big;
    if (exp_of_minus_2ax) {  // 1 - 2e / (1 + e), e = e^(-2|x|): one rounding near 1, as below
      llvm::Value* e = exp_of_minus_2ax;
      big = b_.CreateFSub(k(1), b_.CreateFDiv(b_.CreateFAdd(e, e), b_.CreateFAdd(k(1), e)));
    } else {
      llvm::Value* e = exp(b_.CreateFAdd(ax, ax));
      big = b_.CreateFSub(k(1), b_.CreateFDiv(k(2), b_.CreateFAdd(e, k(1))));
    }
    return copysign(select(lt(ax, 0.625), small, big), x);
  }

  // atan(x), Cephes atan.c / atanf.c: |x| > tan(3π/8): π/2 + atan(-1/|x|);
  // |x| > 0.66 (float: tan(π/8)): π/4 + atan((|x|-1)/(|x|+1)); then
  // r + r s R(s), s = r² (R rational in double, with the low bits of π/2 and
  // π/4 added back; polynomial in float). Sign by copysign.
  llvm::Value* atan(llvm::Value* x) {
    llvm::Value* ax = fabs(x);
    llvm::Value* big = b_.CreateFCmpOGT(ax, k(2.41421356237309504880));
    llvm::Value* mid = b_.CreateFCmpOGT(ax, k(f32_ ? 0.4142135623730950 : 0.66));
    // r = -1/|x|, (|x|-1)/(|x|+1) or |x|/1 (exactly |x|): one division of
    // the selected numerator and denominator.
    llvm::Value* r = b_.CreateFDiv(select(big, k(-1), select(mid, b_.CreateFSub(ax, k(1)), ax)),
                                   select(big, ax, select(mid, b_.CreateFAdd(ax, k(1)), k(1))));
    llvm::Value* y0 = select(big, k(sem::kPi / 2), select(mid, k(sem::kPi / 4), k(0)));
    llvm::Value* s = b_.CreateFMul(r, r);
    llvm::Value* y;
    if (f32_) {
      llvm::Value* p = horner(s, {8.05374449538e-2, -1.38776856032E-1, 1.99777106478E-1, -3.33329491539E-1});
      y = fmuladd(b_.CreateFMul(p, s), r, r);
    } else {
      llvm::Value* p = horner(s, {-8.750608600031904122785E-1, -1.615753718733365076637E1, -7.500855792314704667340E1,
                                  -1.228866684490136173410E2, -6.485021904942025371773E1});
      llvm::Value* q = horner(s, {1.0, 2.485846490142306297962E1, 1.650270098316988542046E2, 4.328810604912902668951E2,
                                  4.853903996359136964868E2, 1.945506571482613964425E2});
      y = fmuladd(r, b_.CreateFDiv(b_.CreateFMul(s, p), q), r);
      constexpr double kMoreBits = 6.123233995736765886130E-17;  // π/2 - double(π/2)
      y = b_.CreateFAdd(y, select(big, k(kMoreBits), select(mid, k(kMoreBits / 2), k(0))));
    }
    return copysign(b_.CreateFAdd(y0, y), x);
  }

  // erf and erfc, Sun fdlibm s_erf.c (glibc's double erf/erfc, and with the
  // same coefficients rounded to float its erff/erfcf): four intervals of |x|,
  // each a rational approximation, all computed and the right one selected.
  struct ErfParts {
    llvm::Value* ax;
    llvm::Value* tiny_y;  // |x| < 0.84375: erf(x) = x + x y
    llvm::Value* near_1;  // [0.84375, 1.25): erf(|x|) = erx + near_1
    llvm::Value* tail;    // [1.25, 28): erfc(|x|) = tail
  };
  // A rational approximation p / q, kept apart so that the intervals that
  // exclude each other can select their p and q and divide once: the same
  // bits as dividing each and selecting.
  struct Ratio {
    llvm::Value* p;
    llvm::Value* q;
  };
  llvm::Value* divide_selected(llvm::Value* first, const Ratio& a, const Ratio& b) {
    return b_.CreateFDiv(select(first, a.p, b.p), select(first, a.q, b.q));
  }
  Ratio erf_tiny_ratio(llvm::Value* x) {
    llvm::Value* z = b_.CreateFMul(x, x);
    return {horner(z, {-2.37630166566501626084e-05, -5.77027029648944159157e-03, -2.84817495755985104766e-02,
                       -3.25042107247001499370e-01, 1.28379167095512558561e-01}),
            horner(z, {-3.96022827877536812320e-06, 1.32494738004321644526e-04, 5.08130628187576562776e-03,
                       6.50222499887672944485e-02, 3.97917223959155352819e-01, 1.0})};
  }
  ErfParts erf_parts(llvm::Value* x) {
    ErfParts e;
    e.ax = fabs(x);
    llvm::Value* s = b_.CreateFSub(e.ax, k(1));
    const Ratio near_1{
        horner(s, {-2.16637559486879084300e-03, 3.54783043256182359371e-02, -1.10894694282396677476e-01,
                   3.18346619901161753674e-01, -3.72207876035701323847e-01, 4.14856118683748331666e-01,
                   -2.36211856075265944077e-03}),
        horner(s, {1.19844998467991074170e-02, 1.36370839120290507362e-02, 1.26171219808761642112e-01,
                   7.18286544141962662868e-02, 5.40397917702171048937e-01, 1.06420880400844228286e-01, 1.0})};
    // tiny_y and near_1 are read on intervals that exclude each other.
    e.tiny_y = e.near_1 = divide_selected(lt(e.ax, 0.84375), erf_tiny_ratio(x), near_1);
    llvm::Value* w = b_.CreateFDiv(k(1), b_.CreateFMul(e.ax, e.ax));
    const Ratio ra{
        horner(w, {-9.81432934416914548592e+00, -8.12874355063065934246e+01, -1.84605092906711035994e+02,
                   -1.62396669462573470355e+02, -6.23753324503260060396e+01, -1.05586262253232909814e+01,
                   -6.93858572707181764372e-01, -9.86494403484714822705e-03}),
        horner(w, {-6.04244152148580987438e-02, 6.57024977031928170135e+00, 1.08635005541779435134e+02,
                   4.29008140027567833386e+02, 6.45387271733267880336e+02, 4.34565877475229228821e+02,
                   1.37657754143519042600e+02, 1.96512716674392571292e+01, 1.0})};
    const Ratio rb{
        horner(w, {-4.83519191608651397019e+02, -1.02509513161107724954e+03, -6.37566443368389627722e+02,
                   -1.60636384855821916062e+02, -1.77579549177547519889e+01, -7.99283237680523006574e-01,
                   -9.86494292470009928597e-03}),
        horner(w, {-2.24409524465858183362e+01, 4.74528541206955367215e+02, 2.55305040643316442583e+03,
                   3.19985821950859553908e+03, 1.53672958608443695994e+03, 3.25792512996573918826e+02,
                   3.03380607434824582924e+01, 1.0})};
    llvm::Value* rs = divide_selected(lt(e.ax, 1 / 0.35), ra, rb);
    // erfc(a) = exp(-a² - 0.5625 + R/S) / a, with a² split as t² + (a-t)(a+t):
    // t is a with its low mantissa bits cleared, so t² is exact.
    llvm::Type* int_type = f32_ ? b_.getInt32Ty() : b_.getInt64Ty();
    if (auto* vector = llvm::dyn_cast<llvm::FixedVectorType>(v_))
      int_type = llvm::FixedVectorType::get(int_type, vector->getNumElements());
    llvm::Value* mask = f32_ ? llvm::ConstantInt::get(int_type, 0xffffe000u)
                             : llvm::ConstantInt::get(int_type, 0xffffffff00000000ull);
    llvm::Value* t = b_.CreateBitCast(b_.CreateAnd(b_.CreateBitCast(e.ax, int_type), mask), v_);
    llvm::Value* e1 = exp(fmuladd(b_.CreateFNeg(t), t, k(-0.5625)));
    llvm::Value* e2 = exp(fmuladd(b_.CreateFSub(t, e.ax), b_.CreateFAdd(t, e.ax), rs));
    e.tail = b_.CreateFDiv(b_.CreateFMul(e1, e2), e.ax);
    return e;
  }
  static constexpr double kErx = 8.45062911510467529297e-01;  // erf(1) rounded to float
  llvm::Value* erf(llvm::Value* x) {
    const ErfParts e = erf_parts(x);
    llvm::Value* tiny = fmuladd(x, e.tiny_y, x);
    llvm::Value* near_1 = copysign(b_.CreateFAdd(k(kErx), e.near_1), x);
    llvm::Value* tail = copysign(b_.CreateFSub(k(1), e.tail), x);  // |x| >= 6 (and ±inf): ±1
    return select(lt(e.ax, 0.84375), tiny,
                  select(lt(e.ax, 1.25), near_1, select(ge(e.ax, 6), copysign(k(1), x), tail)));
  }
  // erf on |x| < 0.84375 (or NaN), where it is the first interval's formula
  // alone: a sixth of the work, one division instead of four.
  llvm::Value* erf_of_small(llvm::Value* x) {
    const Ratio tiny = erf_tiny_ratio(x);
    return fmuladd(x, b_.CreateFDiv(tiny.p, tiny.q), x);
  }
  llvm::Value* erfc(llvm::Value* x) {
    const ErfParts e = erf_parts(x);
    llvm::Value* xy = b_.CreateFMul(x, e.tiny_y);
    llvm::Value* tiny = select(lt(x, 0.25), b_.CreateFSub(k(1), b_.CreateFAdd(x, xy)),
                               b_.CreateFSub(k(0.5), b_.CreateFAdd(xy, b_.CreateFSub(x, k(0.5)))));
    llvm::Value* near_1 = select(ge(x, 0), b_.CreateFSub(k(1 - kErx), e.near_1),
                                 b_.CreateFAdd(k(1), b_.CreateFAdd(k(kErx), e.near_1)));
    llvm::Value* tail = select(b_.CreateFCmpOGT(x, k(0)), e.tail, b_.CreateFSub(k(2), e.tail));
    // x >= 28 (and +inf): 0; x <= -6 (and -inf): 2; NaN falls through to `tail`.
    tail = select(ge(x, 28), k(0), select(b_.CreateFCmpOLE(x, k(-6)), k(2), tail));
    return select(lt(e.ax, 0.84375), tiny, select(lt(e.ax, 1.25), near_1, tail));
  }

  // hypot(1, u) = √(1 + u²), u² fused into the add where the CPU has FMA; for
  // |u| > 2^12 (float) / 2^26 (double) the exact value rounds to |u| (the
  // relative excess 1/(2u²) is below half an ulp), which is taken directly and
  // keeps u² from overflowing. NaN gives NaN, ±inf gives inf.
  llvm::Value* hypot1(llvm::Value* u) {
    llvm::Value* au = fabs(u);
    llvm::Value* h = intrinsic(llvm::Intrinsic::sqrt, {fmuladd(u, u, k(1))});
    return select(b_.CreateFCmpOGT(au, k(f32_ ? 4096.0 : 67108864.0)), au, h);
  }

  // x^y. A constant integer exponent with |y| <= 4 (a literal, or a param
  // in the row loop specialised to its default, see build_row_function) is
  // computed by multiplication: x*x is pow's correctly rounded result, x^3,
  // x^4 and the reciprocals round two or three times (<= 2 ulp from libm's
  // pow), and pow(x, 0) = 1 even for NaN, as in libm. Otherwise llvm.pow:
  // libmvec's powf costs about twenty exps (focal spent three quarters of its
  // time there, bench/README.md).
  llvm::Value* pow(llvm::Value* x, llvm::Value* y) {
    const auto* c = llvm::dyn_cast<llvm::ConstantFP>(y);
    if (const auto* splat = llvm::dyn_cast<llvm::Constant>(y); splat && !c)  // box rows: one per lane
      c = llvm::dyn_cast_or_null<llvm::ConstantFP>(splat->getSplatValue());
    if (c) {
      llvm::APFloat value = c->getValueAPF();
      bool inexact = false;
      value.convert(llvm::APFloat::IEEEdouble(), llvm::APFloat::rmNearestTiesToEven, &inexact);
      const double e = value.convertToDouble();
      if (e == std::trunc(e) && std::fabs(e) <= 4) {
        const int n = int(std::fabs(e));
        llvm::Value* square = n >= 2 ? b_.CreateFMul(x, x) : nullptr;
        llvm::Value* power = n == 0   ? k(1)
                             : n == 1 ? x
                             : n == 2 ? square
                             : n == 3 ? b_.CreateFMul(square, x)
                                      : b_.CreateFMul(square, square);
        return e < 0 ? b_.CreateFDiv(k(1), power) : power;
      }
    }
    if (v_->isVectorTy()) return vector_pow(x, y);
    return intrinsic(llvm::Intrinsic::pow, {x, y});
  }
  // pow of two vectors (rows of boxes, column loops), as libmvec's function of the width.
  // ReplaceWithVeclib cannot map it: LLVM 16 looks a two-operand intrinsic up
  // as "llvm.pow.f32.f32" and finds nothing, and the code generator would
  // call scalar powf once per lane. Without libmvec, the intrinsic.
  llvm::Value* vector_pow(llvm::Value* x, llvm::Value* y) {
    const llvm::StringRef name = vector_math_library().getVectorizedFunction(
        f32_ ? "llvm.pow.f32" : "llvm.pow.f64", llvm::cast<llvm::FixedVectorType>(v_)->getElementCount());
    if (name.empty()) return intrinsic(llvm::Intrinsic::pow, {x, y});
    llvm::FunctionCallee callee = module_.getOrInsertFunction(name, llvm::FunctionType::get(v_, {v_, v_}, false));
    if (auto* f = llvm::dyn_cast<llvm::Function>(callee.getCallee())) {
      f->setDoesNotAccessMemory();
      f->setDoesNotThrow();
    }
    return b_.CreateCall(callee, {x, y});
  }

  // Whether a node's value lies in [0, 1] (or is NaN) for every input,
  // infinities included: the S-curves.
  static bool in_unit_interval(const Node& n) {
    return n.op() == Op::Sigmoid || n.op() == Op::Serf || n.op() == Op::Salf || n.op() == Op::Sgdf;
  }

  // ---- element-wise semantics (compiler/semantics.hpp, op by op) ----

  // The DSL's protected division and guarded exp, as elementwise emits them
  // (sgdf's tanh also calls these, so that its exp is the same instructions
  // as its derivative's).
  llvm::Value* dsl_div(llvm::Value* a, llvm::Value* b) { return b_.CreateFDiv(a, b_.CreateFAdd(b, k(sem::kDivEps))); }
  llvm::Value* dsl_exp(llvm::Value* a) { return exp(min(a, k(sem::kExpMax))); }

  llvm::Value* elementwise(const Node& n, const std::vector<llvm::Value*>& a) {
    switch (n.op()) {
      case Op::Add: return b_.CreateFAdd(a[0], a[1]);
      case Op::Sub: return b_.CreateFSub(a[0], a[1]);
      case Op::Mul: return b_.CreateFMul(a[0], a[1]);
      case Op::Div: return dsl_div(a[0], a[1]);
      case Op::Neg: return b_.CreateFNeg(a[0]);
      case Op::Pow: return pow(a[0], a[1]);
      case Op::Log: return log(b_.CreateFAdd(a[0], k(sem::kLogEps)));
      case Op::Exp: return dsl_exp(a[0]);
      case Op::Sqrt: return intrinsic(llvm::Intrinsic::sqrt, {a[0]});
      case Op::Abs: return fabs(a[0]);
      case Op::Sin: return intrinsic(llvm::Intrinsic::sin, {a[0]});
      case Op::Cos: return intrinsic(llvm::Intrinsic::cos, {a[0]});
      case Op::Tanh: return tanh(a[0]);
      case Op::Relu:  // a > 0 || isnan(a) ? a : 0 -- "unordered or greater than"
        return b_.CreateSelect(b_.CreateFCmpUGT(a[0], k(0)), a[0], k(0));
      case Op::Softplus: {
        // (a > 0 ? a : 0) + log1p(exp(-|a|))
        llvm::Value* positive = b_.CreateSelect(b_.CreateFCmpOGT(a[0], k(0)), a[0], k(0));
        return b_.CreateFAdd(positive, log1p_of_small(exp(b_.CreateFNeg(fabs(a[0])))));
      }
      case Op::Sigmoid: {
        // The two branches, 1 / (1 + e^-a) for a >= 0 and e^a / (1 + e^a)
        // otherwise, both use e = exp(-|a|): one exp serves both, and the
        // numerator is selected before the one division (the same bits as
        // dividing twice and selecting, in half the divider time).
        llvm::Value* e = exp(b_.CreateFNeg(fabs(a[0])));
        return b_.CreateFDiv(b_.CreateSelect(b_.CreateFCmpOGE(a[0], k(0)), k(1), e), b_.CreateFAdd(k(1), e));
      }
      case Op::Serf: {  // (erf((√π/2)·a / 2) + 1) / 2
        llvm::Value* x = b_.CreateFDiv(b_.CreateFMul(k(sem::kSqrtPi / 2), a[0]), k(2));
        // An S-curve's value in [0, 1] gives x in [0, 0.45] (CSE-Autoloss-B's Serf(Sig(NY))).
        return half_sum(in_unit_interval(*n.arg(0)) ? erf_of_small(x) : erf(x));
      }
      case Op::Salf: {  // u = a / 2; (u / hypot(1, u) + 1) / 2
        llvm::Value* u = b_.CreateFDiv(a[0], k(2));
        return half_sum(b_.CreateFDiv(u, hypot1(u)));
      }
      case Op::Sgdf: {  // ((2/π)·2·atan(tanh(π·a / 8)) + 1) / 2
        // tanh's exponential is taken as sgdf's derivative writes it
        // (compiler/autodiff.cpp), exp(-|π·a / 4|), in the same instructions
        // (elementwise's Mul, Div, Abs, Neg, Exp), which CSE then merges: a
        // kernel with sgdf's gradient makes one exp where it made two. π·a / 4
        // is twice π·a / 8 exactly: both scale π·a by a power of 2.
        llvm::Value* pi_a = b_.CreateFMul(k(sem::kPi), a[0]);
        llvm::Value* e = dsl_exp(b_.CreateFNeg(fabs(dsl_div(pi_a, k(4)))));
        llvm::Value* t = tanh(b_.CreateFDiv(pi_a, k(8)), e);
        return half_sum(b_.CreateFMul(b_.CreateFMul(k(2 / sem::kPi), k(2)), atan(t)));
      }
      case Op::Erf: return erf(a[0]);
      case Op::Erfc: return erfc(a[0]);
      case Op::Min: return min(a[0], a[1]);
      case Op::Max: return max(a[0], a[1]);
      case Op::Clamp: return min(max(a[0], a[1]), a[2]);
      case Op::Where:  // c != 0 ? a : b; a NaN condition is "unordered or not equal": picks a
        return b_.CreateSelect(b_.CreateFCmpUNE(a[0], k(0)), a[1], a[2]);
      case Op::MinShare:  // isnan(a) || a < b ? 1 : a == b ? 1/2 : 0
        return share(b_.CreateOr(is_nan(a[0]), b_.CreateFCmpOLT(a[0], a[1])), a[0], a[1]);
      case Op::MaxShare:
        return share(b_.CreateOr(is_nan(a[0]), b_.CreateFCmpOGT(a[0], a[1])), a[0], a[1]);
      case Op::Const:
      case Op::Input:
      case Op::Param:
      case Op::Softmax:
      case Op::LogSoftmax:
      case Op::Logsumexp:
      case Op::Dot:
      case Op::Sum:
      case Op::Mean:
      case Op::Field:
      case Op::Area:
      case Op::Inter:
      case Op::Enclose:
      case Op::Iou: break;
    }
    throw std::logic_error("codegen: '" + std::string(op_name(n.op())) + "' is not element-wise");
  }

  // ---- loops ----

  // for (i = start; i < count; ++i) body, with loop-carried values; returns
  // their values after the loop (the initial ones when it runs zero times).
  using LoopBody = std::function<std::vector<llvm::Value*>(llvm::Value* i, const std::vector<llvm::Value*>& carried)>;
  enum class Vectorise { Default, Elements, Never };
  static constexpr int32_t kElementVectors = 4;  // see loop_hints
  std::vector<llvm::Value*> loop(llvm::Value* start, llvm::Value* count, const std::vector<llvm::Value*>& initial,
                                 const LoopBody& body, const char* name, Vectorise hint = Vectorise::Default) {
    llvm::Function* f = b_.GetInsertBlock()->getParent();
    llvm::BasicBlock* before = b_.GetInsertBlock();
    llvm::BasicBlock* head = llvm::BasicBlock::Create(ctx_, name, f);
    llvm::BasicBlock* done = llvm::BasicBlock::Create(ctx_, std::string(name) + ".done", f);
    b_.CreateCondBr(b_.CreateICmpSLT(start, count), head, done);

    b_.SetInsertPoint(head);
    llvm::PHINode* i = b_.CreatePHI(i64_, 2, "i");
    std::vector<llvm::PHINode*> phis;
    std::vector<llvm::Value*> carried;
    for (llvm::Value* v : initial) {
      phis.push_back(b_.CreatePHI(v->getType(), 2));
      carried.push_back(phis.back());
    }
    std::vector<llvm::Value*> next = body(i, carried);
    llvm::Value* i_next = b_.CreateAdd(i, index(1), "", /*HasNUW=*/true, /*HasNSW=*/true);
    llvm::BasicBlock* latch = b_.GetInsertBlock();
    llvm::BranchInst* back = b_.CreateCondBr(b_.CreateICmpSLT(i_next, count), head, done);
    if (llvm::MDNode* hints = loop_hints(hint)) back->setMetadata(llvm::LLVMContext::MD_loop, hints);
    i->addIncoming(start, before);
    i->addIncoming(i_next, latch);
    for (size_t c = 0; c < phis.size(); ++c) {
      phis[c]->addIncoming(initial[c], before);
      phis[c]->addIncoming(next[c], latch);
    }

    b_.SetInsertPoint(done);
    std::vector<llvm::Value*> out;
    for (size_t c = 0; c < phis.size(); ++c) out.push_back(phi(initial[c], before, next[c], latch));
    return out;
  }
  // At a join: `a` when control came from block `from_a`, else `b` (from `from_b`).
  llvm::Value* phi(llvm::Value* a, llvm::BasicBlock* from_a, llvm::Value* b, llvm::BasicBlock* from_b) {
    llvm::PHINode* joined = b_.CreatePHI(a->getType(), 2);
    joined->addIncoming(a, from_a);
    joined->addIncoming(b, from_b);
    return joined;
  }

  // Loop metadata for each kind of loop.
  // Elements: rows of reals. With AVX-512 the last partial vector runs
  //   masked (every iteration is predicated; AVX-512's masks cost nothing),
  //   without it in a scalar remainder loop: AVX2's masked stores
  //   (vmaskmovps) are slow on AMD's Zen cores: masking every iteration
  //   ran focal 1.9x and CSE-Autoloss-B cls 1.4-1.8x slower on Zen 3
  //   (bench/README.md, session 11). Either way a row's bits do not depend
  //   on the thread count: threads take chunks of whole 256-row blocks
  //   (runtime/llvm_engine.cpp), so the remainder is the same rows.
  //   In the Full tier each iteration runs kElementVectors vectors side by
  //   side: one vector's chain of library calls (exp, then log of it, ...)
  //   is longer than the out-of-order window, so a lone vector leaves the
  //   core waiting on latency; four in flight ran CSE-Autoloss-B cls 25% and
  //   focal 15% faster. The Quick tier keeps one: four cost focal's compile
  //   1.6x (bench/README.md, session 15).
  // Never: copies of a few rows, and the blocks of rows of boxes (their code
  //   is vector code already: row_blocks).
  llvm::MDNode* loop_hints(Vectorise hint) {
    const int32_t vector = int32_t(vector_width());
    switch (hint) {
      case Vectorise::Default: return nullptr;
      case Vectorise::Elements:
        if (host_target().vector_bits == 512)
          return loop_hints({loop_hint("llvm.loop.vectorize.enable", b_.getTrue()),
                             loop_hint("llvm.loop.vectorize.predicate.enable", b_.getTrue())});
        return loop_hints({loop_hint("llvm.loop.vectorize.enable", b_.getTrue()),
                           loop_hint("llvm.loop.vectorize.width", b_.getInt32(vector)),
                           loop_hint("llvm.loop.interleave.count", b_.getInt32(element_vectors_))});
      case Vectorise::Never: return loop_hints({loop_hint("llvm.loop.vectorize.enable", b_.getFalse())});
    }
    return nullptr;
  }
  llvm::MDNode* loop_hint(const char* name, llvm::Constant* value) {
    return llvm::MDNode::get(ctx_, {llvm::MDString::get(ctx_, name), llvm::ConstantAsMetadata::get(value)});
  }
  llvm::MDNode* loop_hints(std::vector<llvm::Metadata*> hints) {
    hints.insert(hints.begin(), nullptr);  // operand 0 refers to the loop id itself
    llvm::MDNode* id = llvm::MDNode::getDistinct(ctx_, hints);
    id->replaceOperandWith(0, id);
    return id;
  }

  // ---- per-row values ----

  // The first column of a real[C] value (softmax's divided as it is read).
  llvm::Value* first_column(const Node* n) {
    llvm::Value* value = b_.CreateLoad(t_, row_.at(n));
    if (auto total = softmax_total_.find(n); total != softmax_total_.end()) return b_.CreateFDiv(value, total->second);
    return value;
  }
  llvm::Value* width_of(const Node* n) { return widths_[plan_.at(n).width_input]; }

  // A sink: after all nodes, a real[C] (or broadcast real) root written to an output row.
  struct Sink {
    const Node* node;
    llvm::Value* row;  // T* to the output row
  };

  // Emits the pending element-wise real[C] nodes of one width as one column
  // loop of vector code (lane_blocks, one host vector a block), plus the
  // sinks of that width: values that stay in the loop live in registers.
  void flush(size_t width_input, const std::vector<Sink>& sinks = {}) {
    std::vector<const Node*> group = std::move(pending_[width_input]);
    pending_[width_input].clear();
    if (group.empty() && sinks.empty()) return;
    std::unordered_set<const Node*> in_group(group.begin(), group.end());
    std::unordered_set<const Node*> sunk;
    for (const Sink& s : sinks) sunk.insert(s.node);
    for (const Node* n : group) pending_set_.erase(n);
    // A node needs its scratch row when something outside this loop reads it.
    std::vector<bool> stored;
    for (const Node* n : group) {
      bool outside = is_root(n) && !sunk.count(n);
      for (const Node* user : plan_.at(n).users) outside = outside || !in_group.count(user);
      stored.push_back(outside);
    }
    const GuardedProducts guarded = guarded_products(group, stored, sunk);
    const VectorCode vector_code(*this);
    lane_blocks(widths_[width_input], vector_code.lanes, {},
                [&](const Block& block, const std::vector<llvm::Value*>& none) {
                  std::unordered_map<const Node*, llvm::Value*> local;
                  const auto value = [&](const Node* n) {
                    auto it = local.find(n);
                    return it != local.end() ? it->second : block_of(n, block);
                  };
                  const auto emit = [&](const Node* n) {
                    std::vector<llvm::Value*> args;
                    for (const Expr& a : n->args()) args.push_back(value(a.get()));
                    return local[n] = elementwise(*n, args);
                  };
                  for (size_t g = 0; g < group.size(); ++g) {
                    const Node* n = group[g];
                    if (guarded.factor_nodes.count(n)) continue;  // emitted by their product
                    auto product = guarded.products.find(n);
                    llvm::Value* v = product == guarded.products.end()
                                         ? emit(n)
                                         : local[n] = guarded_product(n, product->second, value, emit);
                    if (stored[g]) store_block(v, row_.at(n), block.c);
                  }
                  for (const Sink& s : sinks) store_lanes(value(s.node), s.row, block);
                  return none;
                },
                "cols", sinks.empty() ? LastBlock::Masked : LastBlock::MovedBack);
  }

  // ---- products that skip their factor where the weight is zero ----
  //
  // a * f, where f costs library calls and is finite and never negative
  // wherever its inputs are finite, is a itself (bit for bit, ±0 kept) when
  // a is ±0: a block whose a lanes are all zero and whose inputs below f are
  // all finite skips f. Multi-class weights are one-hot rows (CSE-Autoloss-A:
  // Y (1 + sin Z), 80 of 81 sines multiplied by zero): such a row computes f
  // in one of its eleven blocks of 8 (CSE-Autoloss-A 0.78x the time, with
  // the emission order; bench/README.md, session 16).
  struct GuardedProduct {
    const Node* weight;                // a
    std::vector<const Node*> factor;   // f and the nodes only it reads, in the group's order
    std::vector<const Node*> inputs;   // the real[C] inputs below them
  };
  struct GuardedProducts {
    std::unordered_map<const Node*, GuardedProduct> products;
    std::unordered_set<const Node*> factor_nodes;
  };
  GuardedProducts guarded_products(const std::vector<const Node*>& group, const std::vector<bool>& stored,
                                   const std::unordered_set<const Node*>& sunk) {
    GuardedProducts out;
    std::unordered_map<const Node*, size_t> position;
    for (size_t g = 0; g < group.size(); ++g) position[group[g]] = g;
    for (size_t g = 0; g < group.size(); ++g) {
      const Node* n = group[g];
      if (n->op() != Op::Mul) continue;
      for (size_t side : {1, 0}) {
        std::optional<GuardedProduct> product = guard_of(n, side, group, position, stored, sunk, out.factor_nodes);
        if (!product) continue;
        for (const Node* f : product->factor) out.factor_nodes.insert(f);
        out.products.emplace(n, std::move(*product));
        break;
      }
    }
    return out;
  }
  // The guard of product n with factor n->arg(side), if it qualifies.
  std::optional<GuardedProduct> guard_of(const Node* n, size_t side, const std::vector<const Node*>& group,
                                         const std::unordered_map<const Node*, size_t>& position,
                                         const std::vector<bool>& stored, const std::unordered_set<const Node*>& sunk,
                                         const std::unordered_set<const Node*>& taken) {
    const Node* weight = n->arg(1 - side).get();
    const Node* factor = n->arg(side).get();
    if (!weight->type().is_vec() || factor == weight) return std::nullopt;
    // The factor's nodes: in this loop, stored nowhere, read only by the
    // product or by each other (decided users first: reverse group order).
    std::unordered_set<const Node*> nodes;
    const auto exclusive = [&](const Node* x, bool first) {
      auto at = position.find(x);
      if (at == position.end() || stored[at->second] || sunk.count(x) || taken.count(x)) return false;
      const std::vector<const Node*>& users = plan_.at(x).users;
      return !users.empty() && std::all_of(users.begin(), users.end(), [&](const Node* u) {
        return first ? u == n : nodes.count(u) > 0;
      });
    };
    if (!exclusive(factor, true)) return std::nullopt;
    nodes.insert(factor);
    for (size_t g = position.at(factor); g-- > 0;)
      if (group[g] != weight && exclusive(group[g], false)) nodes.insert(group[g]);
    GuardedProduct product{weight, {}, {}};
    bool calls = false;
    const double largest = f32_ ? double(std::numeric_limits<float>::max()) : std::numeric_limits<double>::max();
    for (const Node* x : group) {
      if (!nodes.count(x)) continue;
      if (x->op() == Op::Div) return std::nullopt;  // divides by zero at b = -1e-20, which value_range leaves out
      calls = calls || op_calls_library(x->op());
      const ValueRange& range = ranges_(Expr::share(x));
      if (!range.finite() || std::max(-range.lo, range.hi) > largest) return std::nullopt;
      for (const Expr& a : x->args()) {
        const Node* leaf = a.get();
        if (nodes.count(leaf)) continue;
        if (leaf->op() == Op::Input && leaf->type().is_vec()) {
          if (std::find(product.inputs.begin(), product.inputs.end(), leaf) == product.inputs.end())
            product.inputs.push_back(leaf);
        } else if (leaf->op() != Op::Const) {
          return std::nullopt;  // a value whose range rests on inputs this block does not check
        }
      }
      product.factor.push_back(x);
    }
    if (!calls || ranges_(Expr::share(factor)).lo < 0 || !never_negative_zero(*factor)) return std::nullopt;
    return product;
  }
  // Ops whose code calls libm or libmvec, or is as long as such a call.
  static bool op_calls_library(Op op) {
    switch (op) {
      case Op::Exp:
      case Op::Log:
      case Op::Sin:
      case Op::Cos:
      case Op::Pow:
      case Op::Tanh:
      case Op::Softplus:
      case Op::Sigmoid:
      case Op::Serf:
      case Op::Salf:
      case Op::Sgdf:
      case Op::Erf:
      case Op::Erfc: return true;
      default: return false;
    }
  }
  // Whether n's value is never -0 (then a non-negative value is +0 or more,
  // and a * n keeps a's sign of zero). Round to nearest makes x + y -0 only
  // when both are; x * y is -0 only when a factor is -0 or the two differ
  // in sign, which factors that are never -0 and never negative do not.
  bool never_negative_zero(const Node& n) {
    switch (n.op()) {
      case Op::Const: return !std::signbit(n.value());
      case Op::Add: return never_negative_zero(*n.arg(0)) || never_negative_zero(*n.arg(1));
      case Op::Mul:
        return std::all_of(n.args().begin(), n.args().end(),
                           [&](const Expr& a) { return never_negative_zero(*a) && ranges_(a).lo >= 0; });
      case Op::Exp:
      case Op::Abs: return true;
      default: return false;
    }
  }
  // a, where its lanes are all ±0 and the factor's inputs all finite; else a * f.
  template <class Value, class Emit>
  llvm::Value* guarded_product(const Node* n, const GuardedProduct& product, const Value& value, const Emit& emit) {
    llvm::Value* weight = value(product.weight);
    llvm::Value* skip = b_.CreateAndReduce(b_.CreateFCmpOEQ(weight, k(0)));
    for (const Node* input : product.inputs)  // value_range's assumption, |x| <= kInputBound (false for NaN)
      skip = b_.CreateAnd(skip, b_.CreateAndReduce(b_.CreateFCmpOLE(fabs(value(input)), k(kInputBound))));
    llvm::Function* f = b_.GetInsertBlock()->getParent();
    llvm::BasicBlock* before = b_.GetInsertBlock();
    llvm::BasicBlock* compute = llvm::BasicBlock::Create(ctx_, "factor", f);
    llvm::BasicBlock* done = llvm::BasicBlock::Create(ctx_, "factor.done", f);
    b_.CreateCondBr(skip, done, compute);
    b_.SetInsertPoint(compute);
    for (const Node* x : product.factor) emit(x);
    llvm::Value* full = emit(n);
    llvm::BasicBlock* compute_end = b_.GetInsertBlock();
    b_.CreateBr(done);
    b_.SetInsertPoint(done);
    return phi(weight, before, full, compute_end);
  }
  bool is_root(const Node* n) const { return root_set_.count(n) > 0; }

  // Flushes the pending loops that `n` reads from.
  void flush_arguments(const Node* n) {
    for (size_t i = 0; i < n->args().size(); ++i)
      if (const Node* a = read_row(n, i); pending_set_.count(a)) flush(plan_.at(a).width_input);
  }

  // ---- rows of real[C] in blocks of lanes ----
  //
  // Column loops are explicit vector code, not scalar loops left to the
  // vectoriser: the last columns of a row (81 classes: one) run as one more
  // vector under a mask where the vectoriser's remainder ran scalar libm
  // calls; cross-entropy at 21 classes took 0.76x the time (bench/README.md,
  // session 16).

  // Columns c..c+lanes-1 of a row; `mask` (null for a whole block) marks the
  // lanes inside the row.
  struct Block {
    llvm::Value* c;
    llvm::Value* mask;
    unsigned lanes;
  };
  // Columns [0, width) of a row, `lanes` a block: body(block, carried) for
  // each whole block from column 0, then, when the width is not a multiple
  // of `lanes`, once more for the last columns:
  //   Masked: under a mask (loads under it; scratch rows are padded to whole
  //     blocks, so stores to them need none);
  //   MovedBack: for loops without carried values that store to output rows:
  //     a whole block moved back to end at the width (its first columns
  //     computed and stored again, the same values), masked only in rows
  //     narrower than a block. AVX2's masked store (vmaskmovps) is microcode
  //     on AMD's Zen cores: stored under a mask, cross-entropy's gradient
  //     ran 7% slower at 81 classes.
  // Returns the carried values after the last block.
  enum class LastBlock { Masked, MovedBack };
  using BlockBody = std::function<std::vector<llvm::Value*>(const Block&, const std::vector<llvm::Value*>& carried)>;
  std::vector<llvm::Value*> lane_blocks(llvm::Value* width, unsigned lanes, const std::vector<llvm::Value*>& initial,
                                        const BlockBody& body, const char* name,
                                        LastBlock last_block = LastBlock::Masked) {
    llvm::Value* shift = index(int64_t(llvm::Log2_32(lanes)));
    llvm::Value* blocks = b_.CreateLShr(width, shift);
    const std::vector<llvm::Value*> whole =
        loop(index(0), blocks, initial,
             [&](llvm::Value* block, const std::vector<llvm::Value*>& carried) {
               return body(Block{b_.CreateShl(block, shift, "", true, true), nullptr, lanes}, carried);
             },
             name);
    llvm::Value* full = b_.CreateShl(blocks, shift);
    llvm::Value* rest = b_.CreateSub(width, full);
    llvm::Function* f = b_.GetInsertBlock()->getParent();
    llvm::BasicBlock* before = b_.GetInsertBlock();
    llvm::BasicBlock* last = llvm::BasicBlock::Create(ctx_, std::string(name) + ".last", f);
    llvm::BasicBlock* done = llvm::BasicBlock::Create(ctx_, std::string(name) + ".last.done", f);
    b_.CreateCondBr(b_.CreateICmpNE(rest, index(0)), last, done);
    b_.SetInsertPoint(last);
    if (last_block == LastBlock::MovedBack) {
      if (!initial.empty()) throw std::logic_error("codegen: a block moved back would carry its columns twice");
      llvm::BasicBlock* back = llvm::BasicBlock::Create(ctx_, std::string(name) + ".back", f);
      llvm::BasicBlock* narrow = llvm::BasicBlock::Create(ctx_, std::string(name) + ".narrow", f);
      b_.CreateCondBr(b_.CreateICmpUGE(width, index(lanes)), back, narrow);
      b_.SetInsertPoint(back);
      body(Block{b_.CreateSub(width, index(lanes)), nullptr, lanes}, {});
      b_.CreateBr(done);
      b_.SetInsertPoint(narrow);
    }
    llvm::Value* mask = b_.CreateICmpULT(lane_indices(lanes), b_.CreateVectorSplat(lanes, rest));
    const std::vector<llvm::Value*> after = body(Block{full, mask, lanes}, whole);
    llvm::BasicBlock* last_end = b_.GetInsertBlock();
    b_.CreateBr(done);
    b_.SetInsertPoint(done);
    std::vector<llvm::Value*> out;
    for (size_t k = 0; k < whole.size(); ++k) out.push_back(phi(whole[k], before, after[k], last_end));
    return out;
  }
  llvm::Constant* lane_indices(unsigned lanes) {
    std::vector<llvm::Constant*> indices;
    for (unsigned l = 0; l < lanes; ++l) indices.push_back(llvm::ConstantInt::get(i64_, l));
    return llvm::ConstantVector::get(indices);
  }
  // A block of a row in memory.
  llvm::Value* load_block(llvm::Value* row, const Block& block) {
    llvm::Type* vector = llvm::FixedVectorType::get(t_, block.lanes);
    llvm::Value* at = b_.CreateInBoundsGEP(t_, row, block.c);
    if (!block.mask) return b_.CreateAlignedLoad(vector, at, align());
    return b_.CreateMaskedLoad(vector, at, align(), block.mask, llvm::Constant::getNullValue(vector));
  }
  // A block of a value: a real broadcast, a real[C] read from its row (softmax's divided as it is read).
  llvm::Value* block_of(const Node* n, const Block& block) {
    if (!n->type().is_vec()) return b_.CreateVectorSplat(block.lanes, scalar_.at(n));
    llvm::Value* lanes = load_block(row_.at(n), block);
    if (auto total = softmax_total_.find(n); total != softmax_total_.end())
      return b_.CreateFDiv(lanes, b_.CreateVectorSplat(block.lanes, total->second));
    return lanes;
  }
  // A block to a scratch row, padded to whole blocks (padded()): the last
  // block's lanes past the width land in the padding.
  void store_block(llvm::Value* lanes, llvm::Value* scratch_row, llvm::Value* c) {
    b_.CreateAlignedStore(lanes, b_.CreateInBoundsGEP(t_, scratch_row, c), align());
  }
  // A block to an output row: the last block under its mask.
  void store_lanes(llvm::Value* lanes, llvm::Value* row, const Block& block) {
    llvm::Value* at = b_.CreateInBoundsGEP(t_, row, block.c);
    if (block.mask) b_.CreateMaskedStore(lanes, at, align(), block.mask);
    else b_.CreateAlignedStore(lanes, at, align());
  }
  // Element-wise code (elementwise, k, intrinsic) on vectors of one host
  // register, one column a lane, while it lives: the column loops of rows of
  // real[C], whose other code is scalar.
  class VectorCode {
   public:
    explicit VectorCode(KernelBuilder& builder)
        : lanes(unsigned(builder.vector_width())), builder_(builder), scalar_(builder.v_) {
      builder.v_ = llvm::FixedVectorType::get(builder.t_, lanes);
    }
    ~VectorCode() { builder_.v_ = scalar_; }
    VectorCode(const VectorCode&) = delete;
    VectorCode& operator=(const VectorCode&) = delete;

    const unsigned lanes;  // columns a block

   private:
    KernelBuilder& builder_;
    llvm::Type* scalar_;
  };

  // ---- row reductions, in sem::row_sum_of's lane order ----
  // Element c goes to lane c % 8 of an 8-wide accumulator: whole blocks of 8
  // in a loop, the last partial block under a mask (lanes past the width keep
  // their value), then the lanes are combined as a halving tree. Explicit
  // vectors, because the loop vectoriser may not reassociate an ordered sum.
  using LaneTerm = std::function<llvm::Value*(llvm::Value* c, llvm::Value* mask)>;
  using LaneStep = std::function<llvm::Value*(llvm::Value* acc, llvm::Value* v)>;
  llvm::Value* lane_reduce(llvm::Value* width, llvm::Value* initial, const LaneTerm& term, const LaneStep& step,
                           const char* name) {
    const auto one = [&](llvm::Value* c, llvm::Value* mask) { return std::vector<llvm::Value*>{term(c, mask)}; };
    return lane_reduce(width, std::vector<llvm::Value*>{initial}, one, step, name)[0];
  }
  // Several reductions of one row in one loop: terms(c, mask) gives one lane
  // vector per accumulator, each reduced in the same lane order.
  using LaneTerms = std::function<std::vector<llvm::Value*>(llvm::Value* c, llvm::Value* mask)>;
  std::vector<llvm::Value*> lane_reduce(llvm::Value* width, const std::vector<llvm::Value*>& initial,
                                        const LaneTerms& terms, const LaneStep& step, const char* name) {
    static_assert(sem::kRowLanes == 8, "lane_reduce's shuffles assume 8 lanes");
    const auto add_terms = [&](std::vector<llvm::Value*> acc, llvm::Value* c, llvm::Value* mask) {
      const std::vector<llvm::Value*> v = terms(c, mask);
      for (size_t k = 0; k < acc.size(); ++k)
        acc[k] = mask ? b_.CreateSelect(mask, step(acc[k], v[k]), acc[k]) : step(acc[k], v[k]);
      return acc;
    };
    const std::vector<llvm::Value*> acc = lane_blocks(
        width, unsigned(sem::kRowLanes), initial,
        [&](const Block& block, const std::vector<llvm::Value*>& carried) {
          return add_terms(carried, block.c, block.mask);
        },
        name);
    std::vector<llvm::Value*> out;
    for (llvm::Value* a : acc) {
      for (int half = 4; half > 0; half /= 2) {
        std::vector<int> low, high;
        for (int l = 0; l < half; ++l) {
          low.push_back(l);
          high.push_back(l + half);
        }
        a = step(b_.CreateShuffleVector(a, low), b_.CreateShuffleVector(a, high));
      }
      out.push_back(b_.CreateExtractElement(a, uint64_t(0)));
    }
    return out;
  }
  // Columns c..c+7 of a row or a value (as load_block, block_of); `mask` limits the loads to the row.
  llvm::Value* lanes_of(llvm::Value* row, llvm::Value* c, llvm::Value* mask) {
    return load_block(row, Block{c, mask, unsigned(sem::kRowLanes)});
  }
  llvm::Value* lanes_of(const Node* n, llvm::Value* c, llvm::Value* mask) {
    return block_of(n, Block{c, mask, unsigned(sem::kRowLanes)});
  }
  LaneStep lane_add() {
    return [this](llvm::Value* acc, llvm::Value* v) { return b_.CreateFAdd(acc, v); };
  }

  // The row maximum, as sem::row_max: every lane starts at x[0] and takes v when v > lane.
  llvm::Value* row_max(const Node* x, llvm::Value* width) {
    return lane_reduce(
        width, b_.CreateVectorSplat(8, first_column(x)),
        [&](llvm::Value* c, llvm::Value* mask) { return lanes_of(x, c, mask); },
        [this](llvm::Value* acc, llvm::Value* v) { return b_.CreateSelect(b_.CreateFCmpOGT(v, acc), v, acc); },
        "max");
  }
  llvm::Value* zero_lanes() { return llvm::Constant::getNullValue(llvm::FixedVectorType::get(t_, 8)); }
  // The row maximum m and Σ e^(x - m) of a row x, made once per row for all
  // of softmax(x), log_softmax(x) and logsumexp(x). The exponentials go to
  // softmax(x)'s row when the kernel has it (log_softmax's gradient does):
  // softmax then only divides. Else to `own`, the caller's scratch row.
  struct RowExps {
    llvm::Value* max;
    llvm::Value* total;
  };
  RowExps row_exps(const Node* x, llvm::Value* width, llvm::Value* own) {
    if (auto it = row_exps_.find(x); it != row_exps_.end()) return it->second;
    auto softmax = softmax_of_.find(x);
    llvm::Value* out = softmax != softmax_of_.end() ? row_.at(softmax->second) : own;
    llvm::Value* m = row_max(x, width);
    return row_exps_[x] = RowExps{m, shifted_exps(x, m, out, width)};
  }
  // out[i] = exp(x[i] - m); returns Σ out[i]. The sums of the dots folded
  // with log_softmax(x) whose weights are ready share the loop of Σ out[i]
  // (they need m alone): cross-entropy makes one loop over its row fewer.
  // The exps are a loop of their own, not part of the sums' loop: the libmvec
  // call clobbers every vector register, and the accumulators went through
  // the stack around it (cross-entropy 1.27x slower; bench/README.md, session 16).
  llvm::Value* shifted_exps(const Node* x, llvm::Value* m, llvm::Value* out, llvm::Value* width) {
    {
      const VectorCode vector_code(*this);
      llvm::Value* shift = b_.CreateVectorSplat(vector_code.lanes, m);
      lane_blocks(
          width, vector_code.lanes, {},
          [&](const Block& block, const std::vector<llvm::Value*>& none) {
            store_block(exp(b_.CreateFSub(block_of(x, block), shift)), out, block.c);
            return none;
          },
          "exp");
    }
    std::vector<FoldedDot> riders;
    for (const Node* log_softmax : order_)  // not dot_only_'s order: the same code every time
      if (dot_only_.count(log_softmax) && log_softmax->arg(0).get() == x)
        for (const Node* dot : plan_.at(log_softmax).users) {
          const FoldedDot f = folded_dot(dot);
          if (plan_.at(f.a).position > current_position_) continue;  // its weights come later
          if (pending_set_.count(f.a)) flush(plan_.at(f.a).width_input);
          riders.push_back(f);
        }
    llvm::Value* shift = b_.CreateVectorSplat(8, m);
    size_t count = 1;
    for (const FoldedDot& f : riders) count += f.sum_count();
    const std::vector<llvm::Value*> sums = lane_reduce(
        width, std::vector<llvm::Value*>(count, zero_lanes()),
        [&](llvm::Value* c, llvm::Value* mask) {
          std::vector<llvm::Value*> terms{lanes_of(out, c, mask)};
          for (const FoldedDot& f : riders) {
            const std::vector<llvm::Value*> more = fold_terms(f, shift, c, mask);
            terms.insert(terms.end(), more.begin(), more.end());
          }
          return terms;
        },
        lane_add(), "sum");
    size_t at = 1;
    for (const FoldedDot& f : riders) {
      folded_sums_[f.dot] = std::vector<llvm::Value*>(sums.begin() + ptrdiff_t(at),
                                                      sums.begin() + ptrdiff_t(at + f.sum_count()));
      at += f.sum_count();
    }
    return sums[0];
  }

  // dot(a, log_softmax(z)) folded (rowwise, Op::Dot): its weights and the
  // row sums of a (or -a) still to come (the gradient's sum(-y)). Those are
  // the dot's own Σ a, in the same lane order: sum(a) is it, and sum(-a) is
  // 0 - Σ a bit for bit (round to nearest is symmetric, and a sum from +0
  // is never -0), so they take no accumulator of their own.
  struct FoldedDot {
    const Node* dot;
    const Node* log_softmax;
    const Node* a;
    std::vector<const Node*> sums_of_a;
    static constexpr size_t sum_count() { return 2; }  // Σ a (z - m), Σ a
  };
  FoldedDot folded_dot(const Node* dot) const {
    const Node* log_softmax = dot_only_.count(dot->arg(0).get()) ? dot->arg(0).get() : dot->arg(1).get();
    const Node* a = log_softmax == dot->arg(0).get() ? dot->arg(1).get() : dot->arg(0).get();
    FoldedDot f{dot, log_softmax, a, {}};
    for (const Node* user : plan_.at(a).users)
      if ((user->op() == Op::Sum || user->op() == Op::Mean) && read_row(user, 0) == a &&
          plan_.at(user).position > plan_.at(dot).position)
        f.sums_of_a.push_back(user);
    return f;
  }
  // Its terms at columns c..c+7: a (z - m), a.
  std::vector<llvm::Value*> fold_terms(const FoldedDot& f, llvm::Value* m, llvm::Value* c, llvm::Value* mask) {
    llvm::Value* weights = lanes_of(f.a, c, mask);
    llvm::Value* z = lanes_of(f.log_softmax->arg(0).get(), c, mask);
    return {b_.CreateFMul(weights, b_.CreateFSub(z, m)), weights};
  }
  void rowwise(const Node* n) {
    flush_arguments(n);
    const Node* x = n->arg(0).get();
    llvm::Value* width = width_of(x);
    switch (n->op()) {
      case Op::Softmax:
        // e^(x - m) / Σ e^(x - m): row_exps puts the exponentials in the row
        // of softmax(x), now or when log_softmax(x) came first, and every
        // reader divides as it reads (column, lanes_of): no loop of its own
        // that stores the quotients (the same bits, one pass fewer).
        softmax_total_[n] = row_exps(x, width, row_.at(n)).total;
        return;
      case Op::LogSoftmax: {
        // x - m - ln Σ e^(x - m); the exponentials go through y first when
        // no softmax(x) takes them.
        llvm::Value* y = row_.at(n);
        const RowExps e = row_exps(x, width, y);
        llvm::Value* m = e.max;
        llvm::Value* log_total = log(e.total);
        if (dot_only_.count(n)) {  // its dots take m and ln Σ instead of the row
          log_softmax_parts_[n] = LogSoftmaxParts{m, log_total};
          return;
        }
        const VectorCode vector_code(*this);
        llvm::Value* shift = b_.CreateVectorSplat(vector_code.lanes, m);
        llvm::Value* log_total_lanes = b_.CreateVectorSplat(vector_code.lanes, log_total);
        lane_blocks(
            width, vector_code.lanes, {},
            [&](const Block& block, const std::vector<llvm::Value*>& none) {
              store_block(b_.CreateFSub(b_.CreateFSub(block_of(x, block), shift), log_total_lanes), y, block.c);
              return none;
            },
            "log_softmax");
        return;
      }
      case Op::Logsumexp: {
        // m + ln Σ e^(x - m), or m itself when m is ±inf or NaN.
        const RowExps e = row_exps(x, width, logsumexp_row_.at(n));
        llvm::Value* finite = b_.CreateFCmpOEQ(b_.CreateFSub(e.max, e.max), k(0));
        scalar_[n] = b_.CreateSelect(finite, b_.CreateFAdd(e.max, log(e.total)), e.max);
        return;
      }
      case Op::Dot: {
        const Node* y = n->arg(1).get();
        if (dot_only_.count(x) || dot_only_.count(y)) {
          // dot(a, log_softmax(z)) = Σ a (z - m) - ln Σ e^(z - m) · Σ a: one
          // loop with two sums (the exponentials' when a was ready for it),
          // no log_softmax row, and the log off its path.
          const FoldedDot f = folded_dot(n);
          const Node* a = f.a;
          const Node* z = f.log_softmax->arg(0).get();
          const LogSoftmaxParts parts = log_softmax_parts_.at(f.log_softmax);
          llvm::Value* m = b_.CreateVectorSplat(8, parts.max);
          auto done = folded_sums_.find(n);  // summed with the exponentials (shifted_exps)
          const std::vector<llvm::Value*> sums =
              done != folded_sums_.end()
                  ? done->second
                  : lane_reduce(
                        width, std::vector<llvm::Value*>(f.sum_count(), zero_lanes()),
                        [&](llvm::Value* c, llvm::Value* mask) { return fold_terms(f, m, c, mask); }, lane_add(),
                        "dot_log_softmax");
          for (const Node* sum : f.sums_of_a)
            early_sums_[sum] = sums_negation(sum) ? b_.CreateFSub(k(0), sums[1]) : sums[1];
          llvm::Value* folded = b_.CreateFSub(sums[0], b_.CreateFMul(parts.log_total, sums[1]));
          // With an infinite or NaN term (a -inf logit, an infinite weight) the
          // two forms differ (inf - inf): such rows take the terms one by one,
          // a (z - m - ln Σ), as the interpreter does.
          llvm::Value* log_total = b_.CreateVectorSplat(8, parts.log_total);
          scalar_[n] = unless_finite(folded, [&] {
            return lane_reduce(
                width, zero_lanes(),
                [&](llvm::Value* c, llvm::Value* mask) {
                  llvm::Value* term = b_.CreateFSub(b_.CreateFSub(lanes_of(z, c, mask), m), log_total);
                  return b_.CreateFMul(lanes_of(a, c, mask), term);
                },
                lane_add(), "dot_log_softmax_terms");
          });
          return;
        }
        scalar_[n] = lane_reduce(
            width, zero_lanes(),
            [&](llvm::Value* c, llvm::Value* mask) {
              return b_.CreateFMul(lanes_of(x, c, mask), lanes_of(y, c, mask));
            },
            lane_add(), "dot");
        return;
      }
      case Op::Sum:
      case Op::Mean: {
        const Node* row = read_row(n, 0);
        auto early = early_sums_.find(n);
        llvm::Value* total = early != early_sums_.end() ? early->second : lane_reduce(
            width, zero_lanes(),
            [&](llvm::Value* c, llvm::Value* mask) {
              llvm::Value* lanes = lanes_of(row, c, mask);
              return sums_negation(n) ? b_.CreateFNeg(lanes) : lanes;
            },
            lane_add(), "sum");
        scalar_[n] = n->op() == Op::Sum ? total : b_.CreateFDiv(total, b_.CreateSIToFP(width, t_));
        return;
      }
      default: throw std::logic_error("codegen: '" + std::string(op_name(n->op())) + "' is not row-wise");
    }
  }

  // `value` where it is finite, else what `slow` computes (emitted on a
  // branch of its own, which rows with finite values skip).
  llvm::Value* unless_finite(llvm::Value* value, const std::function<llvm::Value*()>& slow) {
    llvm::Function* f = b_.GetInsertBlock()->getParent();
    llvm::BasicBlock* before = b_.GetInsertBlock();
    llvm::BasicBlock* recompute = llvm::BasicBlock::Create(ctx_, "not_finite", f);
    llvm::BasicBlock* done = llvm::BasicBlock::Create(ctx_, "finite", f);
    llvm::Value* finite = b_.CreateFCmpOEQ(b_.CreateFSub(value, value), k(0));
    b_.CreateCondBr(finite, done, recompute);
    b_.SetInsertPoint(recompute);
    llvm::Value* slow_value = slow();
    llvm::BasicBlock* slow_end = b_.GetInsertBlock();
    b_.CreateBr(done);
    b_.SetInsertPoint(done);
    return phi(value, before, slow_value, slow_end);
  }

  // ---- rows of boxes, a block of rows per vector (box_lanes.hpp) ----

  std::array<llvm::Value*, 4> transpose(const std::array<llvm::Value*, 4>& v) {
    auto shuffle = [&](llvm::Value* a, llvm::Value* b, const std::vector<int>& mask) {
      return b_.CreateShuffleVector(a, b, mask);
    };
    llvm::Value* t0 = shuffle(v[0], v[1], boxes_->pairs_low);
    llvm::Value* t1 = shuffle(v[0], v[1], boxes_->pairs_high);
    llvm::Value* t2 = shuffle(v[2], v[3], boxes_->pairs_low);
    llvm::Value* t3 = shuffle(v[2], v[3], boxes_->pairs_high);
    return {shuffle(t0, t2, boxes_->quads_low), shuffle(t0, t2, boxes_->quads_high),
            shuffle(t1, t3, boxes_->quads_low), shuffle(t1, t3, boxes_->quads_high)};
  }
  // One real per row at `at`: a block's rows in the order its boxes' lanes hold them.
  llvm::Value* load_reals(llvm::Value* at) {
    if (!boxes_) return b_.CreateLoad(t_, at);
    return b_.CreateShuffleVector(b_.CreateAlignedLoad(v_, at, align()), boxes_->row_of_lane);
  }
  void store_reals(llvm::Value* value, llvm::Value* at) {
    if (boxes_) value = b_.CreateShuffleVector(value, boxes_->lane_of_row);
    b_.CreateAlignedStore(value, at, align());
  }
  // A block's box gradients, one vector per coordinate, stored as boxes.
  void store_box(const std::array<llvm::Value*, 4>& coordinates, llvm::Value* at) {
    const std::array<llvm::Value*, 4> memory = transpose(coordinates);
    for (int i = 0; i < 4; ++i)
      b_.CreateAlignedStore(memory[size_t(i)], b_.CreateInBoundsGEP(t_, at, index(i * boxes_->lanes)), align());
  }

  // ---- boxes (sem::area, inter, enclose, iou) ----

  std::array<llvm::Value*, 4> coordinates(const Node* box) {
    auto it = box_.find(box);
    if (it != box_.end()) return it->second;
    std::array<llvm::Value*, 4> xy{};
    if (boxes_) {  // a block of rows: 4 vectors as in memory, transposed
      for (int i = 0; i < 4; ++i)
        xy[i] = b_.CreateAlignedLoad(v_, b_.CreateInBoundsGEP(t_, row_.at(box), index(i * boxes_->lanes)), align());
      xy = transpose(xy);
    } else {
      for (int i = 0; i < 4; ++i) xy[i] = b_.CreateLoad(t_, b_.CreateInBoundsGEP(t_, row_.at(box), index(i)));
    }
    box_[box] = xy;
    return xy;
  }
  llvm::Value* area(const std::array<llvm::Value*, 4>& p) {
    return b_.CreateFMul(b_.CreateFSub(p[2], p[0]), b_.CreateFSub(p[3], p[1]));
  }
  // max(hi - lo, 0) under the tie and NaN rules of sem::make_side.
  llvm::Value* side(llvm::Value* lo, llvm::Value* hi) {
    llvm::Value* length = b_.CreateFSub(hi, lo);
    return b_.CreateSelect(max_picks_a(length, k(0)), length, k(0));
  }
  llvm::Value* inter(const std::array<llvm::Value*, 4>& p, const std::array<llvm::Value*, 4>& g) {
    llvm::Value* x = side(max(p[0], g[0]), min(p[2], g[2]));
    llvm::Value* y = side(max(p[1], g[1]), min(p[3], g[3]));
    return b_.CreateFMul(x, y);
  }
  llvm::Value* enclose(const std::array<llvm::Value*, 4>& p, const std::array<llvm::Value*, 4>& g) {
    llvm::Value* x = side(min(p[0], g[0]), max(p[2], g[2]));
    llvm::Value* y = side(min(p[1], g[1]), max(p[3], g[3]));
    return b_.CreateFMul(x, y);
  }

  llvm::Value* box_op(const Node* n) {
    const auto p = coordinates(n->arg(0).get());
    switch (n->op()) {
      case Op::Field: return p[size_t(n->index())];
      case Op::Area: return area(p);
      default: break;
    }
    const auto g = coordinates(n->arg(1).get());
    switch (n->op()) {
      case Op::Inter: return inter(p, g);
      case Op::Enclose: return enclose(p, g);
      case Op::Iou: {
        llvm::Value* i = inter(p, g);
        llvm::Value* u = b_.CreateFAdd(b_.CreateFSub(b_.CreateFAdd(area(p), area(g)), i), k(sem::kBoxEps));
        return b_.CreateFDiv(i, u);
      }
      default: throw std::logic_error("codegen: '" + std::string(op_name(n->op())) + "' is not a box op");
    }
  }

  // ---- one node ----

  void emit(const Node* n) {
    const NodePlan& p = plan_.at(n);
    current_position_ = p.position;
    switch (n->info().kind) {
      case OpKind::Leaf:
        if (n->op() == Op::Input) {
          const size_t i = size_t(n->index());
          // Row pointer: real inputs are read as in[row] (width 1 known here),
          // boxes as in[4 row + k], rows of real[C] as in[C row + c].
          if (n->type().is_real())
            scalar_[n] = load_reals(b_.CreateInBoundsGEP(t_, inputs_[i], row_index_));
          else
            row_[n] = b_.CreateInBoundsGEP(t_, inputs_[i], b_.CreateNSWMul(row_index_, row_widths_[i]));
        }
        return;  // constants and params are uniform: done in the entry block
      case OpKind::Elementwise: {
        if (n->type().is_vec()) {
          // Deferred: fused with its neighbours into one column loop.
          pending_[p.width_input].push_back(n);
          pending_set_.insert(n);
          return;
        }
        std::vector<llvm::Value*> args;
        for (const Expr& a : n->args()) args.push_back(scalar_.at(a.get()));
        scalar_[n] = elementwise(*n, args);
        return;
      }
      case OpKind::Rowwise: rowwise(n); return;
      case OpKind::Box: scalar_[n] = box_op(n); return;
    }
  }

  // The uniform nodes, once per call, in the entry block.
  void emit_uniform(const Node* n, llvm::Value* params) {
    switch (n->op()) {
      case Op::Const: scalar_[n] = k(n->value()); return;
      case Op::Param: {
        llvm::Value* value = b_.CreateLoad(llvm::Type::getDoubleTy(ctx_),
                                           b_.CreateInBoundsGEP(llvm::Type::getDoubleTy(ctx_), params, index(n->index())));
        if (f32_) value = b_.CreateFPTrunc(value, t_);
        scalar_[n] = boxes_ ? b_.CreateVectorSplat(unsigned(boxes_->lanes), value) : value;
        return;
      }
      default: break;
    }
    std::vector<llvm::Value*> args;
    for (const Expr& a : n->args()) args.push_back(scalar_.at(a.get()));
    scalar_[n] = elementwise(*n, args);  // uniform nodes are real and element-wise: no input below them
  }

  // ---- how rows vectorise ----

  Rows rows_layout() const { return llvm_codegen::rows_layout(loss_); }
  // One vector register: T values in it.
  int64_t vector_width() const { return vector_lanes(f32_ ? DType::F32 : DType::F64); }
  // One vector. (Blocks of two, left to the vectoriser's cost model in
  // session 5, ran box losses 10% faster but compiled random reg candidates
  // in 1.5x the time.)
  int64_t block_rows() const { return vector_width(); }
  static int64_t values_per_row(const Type& type) { return type.is_box() ? 4 : 1; }  // of a real or box

  // for rows [begin, end), end - begin >= block_rows(): a block of rows is
  // one pass of the row code, emitted as vector code (v_, one row per lane;
  // its boxes transposed, box_lanes.hpp): no vectoriser, no scalar remainder
  // loop, every row computed by the same vector code. The last block
  // is moved back to end at `end`, recomputing rows of the one before: a
  // row's outputs depend on its inputs alone, so they are rewritten with the
  // same bits. The entry function pads shorter ranges (build_entry).
  void row_blocks(llvm::Value* begin, llvm::Value* end, const LoopBody& row_body) {
    const int64_t w = block_rows();
    llvm::Value* last = b_.CreateSub(end, index(w), "last");
    llvm::Value* blocks = b_.CreateSDiv(b_.CreateAdd(b_.CreateSub(end, begin), index(w - 1)), index(w), "blocks");
    loop(
        index(0), blocks, {},
        [&](llvm::Value* block, const std::vector<llvm::Value*>&) {
          llvm::Value* start = b_.CreateAdd(begin, b_.CreateMul(block, index(w)));
          llvm::Value* base = b_.CreateSelect(b_.CreateICmpSLT(start, last), start, last, "base");
          return row_body(base, {});  // all w rows, one per lane
        },
        "block", Vectorise::Never);
  }

  // ---- functions ----

  // void rows(in_0..in_{n-1}, loss, grad_0..grad_{m-1}, params, widths, begin, end, scratch)
  llvm::Function* build_row_function() {
    const size_t n_inputs = loss_.inputs.size();
    const size_t n_grads = kernel_.gradients.size();
    std::vector<llvm::Type*> params(n_inputs + 1 + n_grads, ptr_);
    params.insert(params.end(), {ptr_, ptr_, i64_, i64_, ptr_});
    llvm::Function* f = llvm::Function::Create(llvm::FunctionType::get(b_.getVoidTy(), params, false),
                                               llvm::Function::InternalLinkage, "lossforge_rows", module_);
    // Called twice by a blocked entry (build_entry): one copy of the rows.
    f->addFnAttr(rows_layout() == Rows::Blocks ? llvm::Attribute::NoInline : llvm::Attribute::AlwaysInline);
    f->addFnAttr(llvm::Attribute::NoUnwind);
    // Distinct arrays: inputs are only read, outputs and scratch only through
    // their own pointer. (Two inputs may be the same array: both are read-only.)
    for (size_t a = 0; a < n_inputs + 1 + n_grads; ++a) f->addParamAttr(unsigned(a), llvm::Attribute::NoAlias);
    f->addParamAttr(unsigned(params.size() - 1), llvm::Attribute::NoAlias);
    for (size_t a = 0; a < n_inputs; ++a) f->addParamAttr(unsigned(a), llvm::Attribute::ReadOnly);

    auto arg = [&](size_t i) { return f->getArg(unsigned(i)); };
    // Argument names for `lossforge emit` readers: in.x, loss, grad.x, ...
    for (size_t i = 0; i < n_inputs; ++i) arg(i)->setName("in." + loss_.inputs[i].name);
    arg(n_inputs)->setName("loss");
    for (size_t g = 0; g < n_grads; ++g)
      arg(n_inputs + 1 + g)->setName("grad." + loss_.inputs[kernel_.gradients[g].input].name);
    const char* tail[] = {"params", "widths", "begin", "end", "scratch"};
    for (size_t t = 0; t < 5; ++t) arg(n_inputs + 1 + n_grads + t)->setName(tail[t]);
    for (size_t i = 0; i < n_inputs; ++i) inputs_.push_back(arg(i));
    llvm::Value* loss_out = arg(n_inputs);
    std::vector<llvm::Value*> grads_out;
    for (size_t g = 0; g < n_grads; ++g) grads_out.push_back(arg(n_inputs + 1 + g));
    llvm::Value* param_values = arg(n_inputs + 1 + n_grads);
    llvm::Value* width_values = arg(n_inputs + 2 + n_grads);
    llvm::Value* begin = arg(n_inputs + 3 + n_grads);
    llvm::Value* end = arg(n_inputs + 4 + n_grads);
    llvm::Value* scratch = arg(n_inputs + 5 + n_grads);

    b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", f));
    // Row widths: 1 and 4 are constants (the vectoriser sees unit strides,
    // box blocks constant offsets); real[C] widths come from the caller.
    for (size_t i = 0; i < n_inputs; ++i) {
      const Type& type = loss_.inputs[i].type;
      llvm::Value* w = type.is_real()  ? index(1)
                       : type.is_box() ? index(4)
                                       : b_.CreateLoad(i64_, b_.CreateInBoundsGEP(i64_, width_values, index(int64_t(i))));
      row_widths_.push_back(w);
    }
    widths_ = row_widths_;
    // Scratch rows: one per real[C] intermediate, laid out as lossforge_scratch_size counts them.
    llvm::Value* offset = index(0);
    for (size_t s = 0; s < scratch_inputs_.size(); ++s) {
      scratch_rows_.push_back(b_.CreateInBoundsGEP(t_, scratch, offset));
      offset = b_.CreateAdd(offset, padded(widths_[scratch_inputs_[s]]));
    }
    for (const Node* n : order_) {
      const NodePlan& p = plan_.at(n);
      if (p.scratch != SIZE_MAX) row_[n] = scratch_rows_[p.scratch];
    }
    // logsumexp has no row of its own but needs one for its exponentials:
    // it borrows an extra scratch row (counted by lossforge_scratch_size too).
    for (const Node* n : order_)
      if (n->op() == Op::Logsumexp) {
        logsumexp_row_[n] = b_.CreateInBoundsGEP(t_, scratch, offset);
        const size_t w = plan_.at(n->arg(0).get()).width_input;
        scratch_inputs_.push_back(w);
        offset = b_.CreateAdd(offset, padded(widths_[w]));
      }
    for (const Node* n : order_)
      if (plan_.at(n).uniform) emit_uniform(n, param_values);

    const LoopBody row_body = [&](llvm::Value* row, const std::vector<llvm::Value*>&) {
      row_index_ = row;
      box_.clear();
      row_exps_.clear();
      early_sums_.clear();
      folded_sums_.clear();
      softmax_total_.clear();
      log_softmax_parts_.clear();
      for (const Node* n : order_)
        if (!plan_.at(n).uniform) emit(n);
      // Outputs: the loss, then each pred input's gradient.
      store_reals(scalar_.at(loss_.body.get()), b_.CreateInBoundsGEP(t_, loss_out, row));
      std::unordered_map<size_t, std::vector<Sink>> sinks;  // by width input
      for (size_t g = 0; g < n_grads; ++g) {
        const InputGradient& grad = kernel_.gradients[g];
        const Type& type = loss_.inputs[grad.input].type;
        if (type.is_vec()) {
          llvm::Value* out_row = b_.CreateInBoundsGEP(t_, grads_out[g], b_.CreateNSWMul(row, row_widths_[grad.input]));
          sinks[grad.input].push_back({grad.parts[0].get(), out_row});
          continue;
        }
        // The row's address, then its fields: the vectoriser proves that
        // these addresses cannot wrap (and adds no run-time check per block).
        llvm::Value* out_row = b_.CreateInBoundsGEP(t_, grads_out[g], b_.CreateNSWMul(row, index(values_per_row(type))));
        if (type.is_box() && boxes_) {
          store_box({scalar_.at(grad.parts[0].get()), scalar_.at(grad.parts[1].get()),
                     scalar_.at(grad.parts[2].get()), scalar_.at(grad.parts[3].get())},
                    out_row);
          continue;
        }
        for (size_t part = 0; part < grad.parts.size(); ++part)
          store_reals(scalar_.at(grad.parts[part].get()), b_.CreateInBoundsGEP(t_, out_row, index(int64_t(part))));
      }
      // Remaining fused loops, each with the gradient rows of its width.
      for (size_t w = 0; w < n_inputs; ++w) {
        std::vector<Sink> own;
        for (auto& [input, list] : sinks)
          if (width_input(loss_.inputs[input].type) == w) own.insert(own.end(), list.begin(), list.end());
        flush(w, own);
      }
      return std::vector<llvm::Value*>{};
    };
    auto all_rows = [&] {
      switch (rows_layout()) {
        case Rows::Columns: loop(begin, end, {}, row_body, "row"); break;
        case Rows::Elements: loop(begin, end, {}, row_body, "row", Vectorise::Elements); break;
        case Rows::Blocks: row_blocks(begin, end, row_body); break;
      }
    };
    if (exponent_params_.empty()) {
      all_rows();
    } else {
      // A param in a pow exponent (focal's gamma) is almost always called
      // with its default: the rows are emitted twice, and a call whose
      // exponent params equal their defaults runs the copy where they are
      // constants, so that pow(1 - p, gamma) becomes a multiplication.
      llvm::Type* f64 = llvm::Type::getDoubleTy(ctx_);
      llvm::Value* defaults = b_.getTrue();
      for (size_t i : exponent_params_) {
        llvm::Value* value = b_.CreateLoad(f64, b_.CreateInBoundsGEP(f64, param_values, index(int64_t(i))));
        defaults = b_.CreateAnd(defaults, b_.CreateFCmpOEQ(value, llvm::ConstantFP::get(f64, loss_.params[i].value)));
      }
      llvm::BasicBlock* specialised = llvm::BasicBlock::Create(ctx_, "rows.defaults", f);
      llvm::BasicBlock* general = llvm::BasicBlock::Create(ctx_, "rows.general", f);
      llvm::BasicBlock* done = llvm::BasicBlock::Create(ctx_, "rows.done", f);
      b_.CreateCondBr(defaults, specialised, general);
      const auto general_values = scalar_;

      b_.SetInsertPoint(specialised);
      for (const Node* n : order_) {
        if (!plan_.at(n).uniform) continue;
        if (n->op() == Op::Param && exponent_params_.count(size_t(n->index())))
          scalar_[n] = k(loss_.params[size_t(n->index())].value);  // rounded to T as the loaded param is
        else
          emit_uniform(n, param_values);  // over constants, IRBuilder folds it to a constant
      }
      all_rows();
      b_.CreateBr(done);

      scalar_ = general_values;
      b_.SetInsertPoint(general);
      all_rows();
      b_.CreateBr(done);
      b_.SetInsertPoint(done);
    }
    b_.CreateRetVoid();
    return f;
  }

  // void lossforge_kernel(const T* const* inputs, const int64_t* widths, T* loss,
  //                       T* const* grads, const double* params, int64_t begin, int64_t end, T* scratch)
  void build_entry(llvm::Function* rows) {
    llvm::FunctionType* type =
        llvm::FunctionType::get(b_.getVoidTy(), {ptr_, ptr_, ptr_, ptr_, ptr_, i64_, i64_, ptr_}, false);
    llvm::Function* f = llvm::Function::Create(type, llvm::Function::ExternalLinkage, kKernelSymbol, module_);
    f->addFnAttr(llvm::Attribute::NoUnwind);
    // Vector registers live across a libmvec call are spilled to the stack
    // (the vector ABI saves none); without realignment their slots lie at
    // whatever alignment the caller's stack has. On znver4 half the offsets
    // mod 32 ran the same kernel 1.6x slower (focal 2.6 against 1.6 ns per
    // element, CSE-Autoloss-B cls 7.3 against 4.4; bench/README.md, session
    // 7): which a process got depended on its stack's random start and the
    // call depth. Realigned to the vector size, every call runs at the fast
    // speed.
    f->addFnAttr("stackrealign");
    const char* names[] = {"inputs", "widths", "loss", "grads", "params", "begin", "end", "scratch"};
    for (unsigned a = 0; a < 8; ++a) f->getArg(a)->setName(names[a]);
    b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", f));
    llvm::Value* inputs = f->getArg(0);
    llvm::Value* grads = f->getArg(3);
    std::vector<llvm::Value*> args;
    for (size_t i = 0; i < loss_.inputs.size(); ++i)
      args.push_back(b_.CreateLoad(ptr_, b_.CreateInBoundsGEP(ptr_, inputs, index(int64_t(i)))));
    args.push_back(f->getArg(2));
    for (size_t g = 0; g < kernel_.gradients.size(); ++g)
      args.push_back(b_.CreateLoad(ptr_, b_.CreateInBoundsGEP(ptr_, grads, index(int64_t(g)))));
    args.insert(args.end(), {f->getArg(4), f->getArg(1), f->getArg(5), f->getArg(6), f->getArg(7)});
    if (rows_layout() != Rows::Blocks) {
      b_.CreateCall(rows, args);
      b_.CreateRetVoid();
      return;
    }
    // Rows in blocks need at least one block's rows: a shorter range runs on
    // copies padded with its last row, and only its own rows are copied back.
    llvm::Value* begin = f->getArg(5);
    llvm::Value* count = b_.CreateSub(f->getArg(6), begin, "count");
    const int64_t w = block_rows();
    llvm::BasicBlock* direct = llvm::BasicBlock::Create(ctx_, "direct", f);
    llvm::BasicBlock* short_range = llvm::BasicBlock::Create(ctx_, "short", f);
    llvm::BasicBlock* padded = llvm::BasicBlock::Create(ctx_, "padded", f);
    llvm::BasicBlock* done = llvm::BasicBlock::Create(ctx_, "done", f);
    b_.CreateCondBr(b_.CreateICmpSGE(count, index(w)), direct, short_range);
    b_.SetInsertPoint(direct);
    b_.CreateCall(rows, args);
    b_.CreateBr(done);
    b_.SetInsertPoint(short_range);
    b_.CreateCondBr(b_.CreateICmpSGT(count, index(0)), padded, done);

    b_.SetInsertPoint(padded);
    // The arguments of `rows` that are arrays of rows: copied in (inputs) or
    // out (the loss and the gradients).
    struct RowArray {
      size_t arg;
      int64_t width;
      bool input;
    };
    std::vector<RowArray> arrays;
    const size_t n_inputs = loss_.inputs.size();
    for (size_t i = 0; i < n_inputs; ++i) arrays.push_back({i, values_per_row(loss_.inputs[i].type), true});
    arrays.push_back({n_inputs, 1, false});
    for (size_t g = 0; g < kernel_.gradients.size(); ++g)
      arrays.push_back({n_inputs + 1 + g, values_per_row(loss_.inputs[kernel_.gradients[g].input].type), false});
    std::vector<llvm::Value*> padded_args = args;
    for (const RowArray& a : arrays)
      padded_args[a.arg] = create_entry_alloca(f, a.width * w);
    // Row `from_row` of array `from` to row `to_row` of `to`.
    auto copy_row = [&](const RowArray& a, llvm::Value* from, llvm::Value* from_row, llvm::Value* to, llvm::Value* to_row) {
      for (int64_t part = 0; part < a.width; ++part) {
        auto at = [&](llvm::Value* array, llvm::Value* row) {
          return b_.CreateInBoundsGEP(t_, array, b_.CreateAdd(b_.CreateMul(row, index(a.width)), index(part)));
        };
        b_.CreateStore(b_.CreateLoad(t_, at(from, from_row)), at(to, to_row));
      }
    };
    llvm::Value* last = b_.CreateSub(count, index(1));
    loop(
        index(0), index(w), {},
        [&](llvm::Value* j, const std::vector<llvm::Value*>&) {
          llvm::Value* source = b_.CreateAdd(begin, b_.CreateSelect(b_.CreateICmpSLT(j, last), j, last));
          for (const RowArray& a : arrays)
            if (a.input) copy_row(a, args[a.arg], source, padded_args[a.arg], j);
          return std::vector<llvm::Value*>{};
        },
        "pad", Vectorise::Never);
    const size_t begin_arg = args.size() - 3, end_arg = args.size() - 2;  // (..., begin, end, scratch)
    padded_args[begin_arg] = index(0);
    padded_args[end_arg] = index(w);
    b_.CreateCall(rows, padded_args);
    loop(
        index(0), count, {},
        [&](llvm::Value* j, const std::vector<llvm::Value*>&) {
          for (const RowArray& a : arrays)
            if (!a.input) copy_row(a, padded_args[a.arg], j, args[a.arg], b_.CreateAdd(begin, j));
          return std::vector<llvm::Value*>{};
        },
        "unpad", Vectorise::Never);
    b_.CreateBr(done);
    b_.SetInsertPoint(done);
    b_.CreateRetVoid();
  }

  // `values` of T in f's entry block.
  llvm::Value* create_entry_alloca(llvm::Function* f, int64_t values) {
    llvm::IRBuilder<> entry(&f->getEntryBlock(), f->getEntryBlock().begin());
    return entry.CreateAlloca(t_, index(values));
  }

  // A scratch row's length: its width rounded up to whole blocks of element-wise code (store_block).
  llvm::Value* padded(llvm::Value* width) {
    const int64_t lanes = vector_width();
    return b_.CreateAnd(b_.CreateAdd(width, index(lanes - 1)), index(-lanes));
  }

  // int64_t lossforge_scratch_size(const int64_t* widths)
  void build_scratch_size() {
    llvm::Function* f = llvm::Function::Create(llvm::FunctionType::get(i64_, {ptr_}, false),
                                               llvm::Function::ExternalLinkage, kScratchSymbol, module_);
    f->addFnAttr(llvm::Attribute::NoUnwind);
    b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", f));
    llvm::Value* total = index(0);
    for (size_t input : scratch_inputs_)
      total = b_.CreateAdd(total, padded(b_.CreateLoad(i64_, b_.CreateInBoundsGEP(i64_, f->getArg(0), index(int64_t(input))))));
    b_.CreateRet(total);
  }

  llvm::LLVMContext& ctx_;
  llvm::Module& module_;
  const Kernel& kernel_;
  const Loss& loss_;
  llvm::IRBuilder<> b_;
  llvm::Type* t_;  // T, as stored
  bool f32_;
  int32_t element_vectors_;  // vectors per iteration of element-wise rows (loop_hints)
  const BoxLanes* boxes_;  // rows of boxes: a block of rows per vector, transposed so (else null)
  llvm::Type* v_;          // the type of a value: T, or a vector of T, one row per lane, for rows of boxes
  llvm::IntegerType* i64_;
  llvm::PointerType* ptr_;

  std::vector<Expr> roots_;
  std::vector<const Node*> order_;
  std::unordered_map<const Node*, NodePlan> plan_;
  std::unordered_set<const Node*> root_set_;
  std::vector<size_t> scratch_inputs_;  // per scratch row: the input whose width it has

  std::vector<llvm::Value*> inputs_, row_widths_, widths_, scratch_rows_;
  llvm::Value* row_index_ = nullptr;
  std::unordered_map<const Node*, llvm::Value*> scalar_;  // real values (uniform, or of the current row)
  std::unordered_map<const Node*, llvm::Value*> row_;     // real[C] and box values: T* to the row
  std::unordered_map<const Node*, llvm::Value*> logsumexp_row_;
  std::unordered_map<const Node*, std::array<llvm::Value*, 4>> box_;
  std::unordered_map<size_t, std::vector<const Node*>> pending_;  // element-wise real[C] nodes by width input
  std::unordered_set<const Node*> pending_set_;
  std::set<size_t> exponent_params_;  // params below a uniform pow exponent
  std::unordered_map<const Node*, const Node*> softmax_of_;  // row x -> softmax(x)
  std::unordered_map<const Node*, RowExps> row_exps_;      // of the current row
  std::unordered_map<const Node*, llvm::Value*> early_sums_;  // sum/mean nodes summed ahead, current row
  std::unordered_map<const Node*, std::vector<llvm::Value*>> folded_sums_;  // folded dots summed ahead, current row
  size_t current_position_ = 0;  // in order_, of the node being emitted
  std::unordered_map<const Node*, llvm::Value*> softmax_total_;  // softmax(x) -> Σ e^(x - m), current row
  RangeAnalysis ranges_;  // of nodes, for guarded products
  std::unordered_set<const Node*> dot_only_;  // log_softmax nodes read by dots alone
  struct LogSoftmaxParts {
    llvm::Value* max;
    llvm::Value* log_total;  // ln Σ e^(x - max)
  };
  std::unordered_map<const Node*, LogSoftmaxParts> log_softmax_parts_;  // of dot_only_ nodes, current row
};

// ---- module, optimisation, emission ------------------------------------------

struct Generated {
  std::unique_ptr<llvm::LLVMContext> context;
  std::unique_ptr<llvm::Module> module;
  llvm::TargetMachine* machine = nullptr;  // host_machine's, of this thread
  bool vector_code = false;                // rows in blocks of vector code: nothing for the vectoriser
};

Generated generate(const Kernel& kernel, DType dtype, OptLevel level = OptLevel::Full) {
  initialize_llvm();
  Generated g;
  g.context = std::make_unique<llvm::LLVMContext>();
  g.module = std::make_unique<llvm::Module>("lossforge." + kernel.loss.name, *g.context);
  g.machine = &host_machine(codegen_effort(kernel, level));
  g.vector_code = rows_layout(kernel.loss) == Rows::Blocks;
  g.module->setTargetTriple(g.machine->getTargetTriple().str());
  g.module->setDataLayout(g.machine->createDataLayout());
  KernelBuilder(*g.module, kernel, dtype, level).build();
  std::string problems;
  llvm::raw_string_ostream os(problems);
  if (llvm::verifyModule(*g.module, &os))
    throw std::logic_error("codegen produced invalid LLVM IR for '" + kernel.loss.name + "': " + os.str());
  return g;
}

// The libm functions the vectoriser may replace by libmvec's vector variants.
// LLVM 16's LIBMVEC-X86 table lists the AVX2 ones only (_ZGVdN8v_expf);
// glibc also has AVX-512 variants, added here where the kernels use 512-bit
// vectors (vector_lanes). glibc documents both to at most 4 ulp.
llvm::TargetLibraryInfoImpl make_vector_math_library(const llvm::Triple& triple) {
  llvm::TargetLibraryInfoImpl library(triple);
  if (!host_target().libmvec) return library;
  library.addVectorizableFunctionsFromVecLib(llvm::TargetLibraryInfoImpl::LIBMVEC_X86, triple);
  if (host_target().vector_bits == 512) {
    static const llvm::VecDesc avx512[] = {
        {"llvm.exp.f32", "_ZGVeN16v_expf", llvm::ElementCount::getFixed(16)},
        {"llvm.log.f32", "_ZGVeN16v_logf", llvm::ElementCount::getFixed(16)},
        {"llvm.sin.f32", "_ZGVeN16v_sinf", llvm::ElementCount::getFixed(16)},
        {"llvm.cos.f32", "_ZGVeN16v_cosf", llvm::ElementCount::getFixed(16)},
        {"llvm.pow.f32", "_ZGVeN16vv_powf", llvm::ElementCount::getFixed(16)},
        {"llvm.exp.f64", "_ZGVeN8v_exp", llvm::ElementCount::getFixed(8)},
        {"llvm.log.f64", "_ZGVeN8v_log", llvm::ElementCount::getFixed(8)},
        {"llvm.sin.f64", "_ZGVeN8v_sin", llvm::ElementCount::getFixed(8)},
        {"llvm.cos.f64", "_ZGVeN8v_cos", llvm::ElementCount::getFixed(8)},
        {"llvm.pow.f64", "_ZGVeN8vv_pow", llvm::ElementCount::getFixed(8)},
    };
    library.addVectorizableFunctions(avx512);
  }
  return library;
}
// Built once (its tables are sorted as they are added); each compile's
// TargetLibraryAnalysis copies it.
const llvm::TargetLibraryInfoImpl& vector_math_library() {
  static const llvm::TargetLibraryInfoImpl library =
      make_vector_math_library(llvm::Triple(host_target().triple));
  return library;
}

// The passes these kernels need, with the host's TargetMachine (cost model
// and vector width) and libmvec as the vector math library: inline the row
// function (its noalias arguments become alias scopes), clean up and hoist
// what is uniform over rows, map libm calls to their vector variants,
// vectorise (not box rows: vector code already), clean up after the
// vectoriser and hoist its trip-count checks, map the vector intrinsics that
// remain (box rows' math) to libmvec.
// Both tiers run it; they differ in the code generator (host_machine).
void optimize(Generated& g) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder builder(g.machine);
  fam.registerPass([&] { return llvm::TargetLibraryAnalysis(vector_math_library()); });
  builder.registerModuleAnalyses(mam);
  builder.registerCGSCCAnalyses(cgam);
  builder.registerFunctionAnalyses(fam);
  builder.registerLoopAnalyses(lam);
  builder.crossRegisterProxies(lam, fam, cgam, mam);

  llvm::FunctionPassManager function;
  function.addPass(llvm::EarlyCSEPass(/*UseMemorySSA=*/true));
  function.addPass(llvm::InstCombinePass());
  function.addPass(llvm::SimplifyCFGPass());
  function.addPass(llvm::createFunctionToLoopPassAdaptor(llvm::LICMPass(llvm::LICMOptions()), /*UseMemorySSA=*/true));
  if (!g.vector_code) {  // (10% of a box candidate's compile, for nothing)
    function.addPass(llvm::InjectTLIMappings());
    function.addPass(llvm::LoopSimplifyPass());
    function.addPass(llvm::LCSSAPass());
    function.addPass(llvm::LoopVectorizePass());
    function.addPass(llvm::InstCombinePass());
    function.addPass(llvm::SimplifyCFGPass());
    // The vectoriser's trip-count checks of column loops are uniform over rows.
    function.addPass(llvm::createFunctionToLoopPassAdaptor(llvm::LICMPass(llvm::LICMOptions()), /*UseMemorySSA=*/true));
  }
  // The vector code of box rows calls llvm.exp.v8f32 and the like: libmvec's too.
  function.addPass(llvm::ReplaceWithVeclib());
  llvm::ModulePassManager passes;
  passes.addPass(llvm::AlwaysInlinerPass());
  passes.addPass(llvm::createModuleToFunctionPassAdaptor(std::move(function)));
  passes.addPass(llvm::GlobalDCEPass());  // the inlined row function
  passes.run(*g.module, mam);
}

std::string emit_file(Generated& g, llvm::CodeGenFileType type) {
  llvm::SmallVector<char, 0> buffer;
  llvm::raw_svector_ostream os(buffer);
  llvm::legacy::PassManager passes;
  if (g.machine->addPassesToEmitFile(passes, os, nullptr, type))
    throw UnavailableError("LLVM cannot emit code for " + g.machine->getTargetTriple().str());
  passes.run(*g.module);
  return std::string(buffer.data(), buffer.size());
}

}  // namespace

std::string emit_ir(const Kernel& kernel, DType dtype, bool optimized) {
  Generated g = generate(kernel, dtype);
  if (optimized) optimize(g);
  std::string text;
  llvm::raw_string_ostream os(text);
  g.module->print(os, nullptr);
  return os.str();
}

std::string emit_assembly(const Kernel& kernel, DType dtype) {
  Generated g = generate(kernel, dtype);
  optimize(g);
  return emit_file(g, llvm::CGFT_AssemblyFile);
}

std::string emit_object(const Kernel& kernel, DType dtype, OptLevel level) {
  Generated g = generate(kernel, dtype, level);
  optimize(g);
  return emit_file(g, llvm::CGFT_ObjectFile);
}

std::string host_target_description() {
  const HostTarget& host = host_target();
  return host.triple + " " + host.cpu + " " + host.features;
}

int64_t vector_lanes(DType dtype) {
  return host_target().vector_bits / (dtype == DType::F32 ? 32 : 64);
}

// Bumped whenever the code generated for the same kernel changes, so that
// kernel caches written by an older lossforge of the same version rebuild.
// 6: 512-bit vectors with AVX-512F. 7: box kernels' fast code generator.
// 8: the kernel realigns its stack. 9: exp(-|-x|) is exp(-|x|), shared.
// 10: dot(a, log_softmax(x)) folded into one loop without the row.
// 11: sum(-a) and mean(-a) reduce a, negated; softmax divides where read;
//     folded dots sum in the loop of their row's exponentials; element-wise
//     rows without AVX-512 leave their tail to a scalar loop.
// 12: rows of boxes emitted as vector code, their boxes transposed by shuffles.
// 13: sgdf's tanh shares the exponential of sgdf's derivative.
// 14: element-wise rows four vectors per iteration.
// 15: column loops of real[C] rows emitted as vector code to the last column;
//     scratch rows padded to whole vectors; guarded products; arguments
//     without row reductions emitted first; a folded dot's Σ a serves the
//     sums of a and -a.
// 16: guarded products also guard factors that are products of non-negative
//     factors that are never -0 (0.5 * |sin z|).
constexpr int kCodegenRevision = 16;

std::string compiler_version() {
  return std::string("LLVM ") + LLVM_VERSION_STRING + (host_target().libmvec ? " libmvec" : "") + " codegen " +
         std::to_string(kCodegenRevision);
}

}  // namespace lossforge::llvm_codegen
