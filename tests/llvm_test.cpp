// The LLVM ORC back end against the reference interpreter: every operator, the
// example losses, random candidates of every preset, float and double, batch
// sizes around the vector width, threads, object code round trips, vector code
// in the output, and the error paths.
//
// Agreement is within a tolerance, not bit for bit: the JIT's vectorised loops
// call glibc's libmvec (≤ 4 ulp) where the interpreter calls scalar libm
// (< 1 ulp), softplus computes log1p through log (a few ulp), and tanh, erf,
// erfc, atan and hypot are the code generator's own vectorisable routines (a
// few ulp, tests/llvm_math_test.cpp); see compiler/codegen_llvm.cpp.
// Everything else rounds exactly as the interpreter.
#include <gtest/gtest.h>

#if LOSSFORGE_HAVE_LLVM

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cmath>
#include <functional>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "compiler/codegen_llvm.hpp"
#include "compiler/error.hpp"
#include "compiler/frontend.hpp"
#include "compiler/presets.hpp"
#include "compiler/print.hpp"
#include "compiler/simplify.hpp"
#include "interpreter_support.hpp"
#include "llvm_ir_support.hpp"
#include "runtime/input_check.hpp"
#include "runtime/llvm_engine.hpp"
#include "search/generate.hpp"

namespace lossforge::testing {
namespace {

constexpr size_t kWidth = 5;  // real[C] in these tests unless they say: odd, narrower than a vector

// Random rows for each input of a loss: reals in [-3, 3] with some exact
// zeros and ties between inputs (the kinks), real[C] rows of `width`, proper
// boxes that mostly overlap, some touching or apart.
Batch<double> random_batch(const Loss& loss, size_t rows, Rng& rng, size_t width_of_vecs = kWidth) {
  Batch<double> batch;
  for (const LossInput& in : loss.inputs) {
    const size_t width = in.type.is_real() ? 1
                         : in.type.is_box() ? 4
                                            : numeric_width(in.type.width()).value_or(width_of_vecs);
    Array<double> a(rows, width);
    for (size_t r = 0; r < rows; ++r) {
      if (in.type.is_box()) {
        double x = uniform(rng, -2, 2), y = uniform(rng, -2, 2), w = uniform(rng, 0.1, 3), h = uniform(rng, 0.1, 3);
        double box[4] = {x, y, x + w, y + h};
        if (!batch.empty() && batch.back().width == 4 && r % 5 != 0) {  // near the previous box: overlap
          const double* g = batch.back().row(r);
          for (int c = 0; c < 4; ++c) box[c] = g[c] + uniform(rng, -0.5, 0.5);
          box[2] = std::max(box[2], box[0] + 0.05);
          box[3] = std::max(box[3], box[1] + 0.05);
          if (r % 7 == 0) std::copy(g, g + 4, box);  // identical boxes: every side ties
        }
        std::copy(box, box + 4, a.row(r));
        continue;
      }
      for (size_t c = 0; c < width; ++c) {
        double v = uniform(rng, -3, 3);
        if (r % 11 == 3) v = 0;
        if (r % 13 == 5 && !batch.empty() && batch.back().width == width) v = batch.back().row(r)[c];  // a tie
        a.row(r)[c] = v;
      }
    }
    batch.push_back(std::move(a));
  }
  return batch;
}

// Two real[C] inputs of `rows` rows of `width` values uniform in [-bound, bound].
Batch<double> two_random_rows(Rng& rng, size_t rows, size_t width, double bound) {
  Batch<double> batch;
  for (int input = 0; input < 2; ++input) {
    Array<double> a(rows, width);
    for (double& v : a.data) v = uniform(rng, -bound, bound);
    batch.push_back(std::move(a));
  }
  return batch;
}

template <class T>
Batch<T> as(const Batch<double>& batch) {
  if constexpr (std::is_same_v<T, double>)
    return batch;
  else
    return to_float(batch);
}

template <class T>
constexpr double tolerance() {
  return std::is_same_v<T, float> ? 2e-4 : 1e-10;
}

// |llvm - interp| <= tolerance * max(1, |interp|); NaN matches NaN, inf the same inf.
template <class T>
::testing::AssertionResult agree(const std::vector<T>& llvm, const std::vector<T>& interp, double tol,
                                 const std::string& what) {
  if (llvm.size() != interp.size())
    return ::testing::AssertionFailure() << what << ": size " << llvm.size() << " vs " << interp.size();
  for (size_t i = 0; i < llvm.size(); ++i) {
    const double a = llvm[i], e = interp[i];
    const bool ok = (std::isnan(a) && std::isnan(e)) || (std::isinf(e) && a == e) ||
                    std::fabs(a - e) <= tol * std::max(1.0, std::fabs(e));
    if (!ok)
      return ::testing::AssertionFailure() << what << " at " << i << ": llvm " << a << " vs interpreter " << e;
  }
  return ::testing::AssertionSuccess();
}

template <class T>
::testing::AssertionResult same_evaluation(const Evaluation<T>& llvm, const Evaluation<T>& interp,
                                           const std::string& what, double tol = tolerance<T>()) {
  if (auto r = agree(llvm.loss, interp.loss, tol, what + " loss"); !r) return r;
  if (llvm.grads.size() != interp.grads.size())
    return ::testing::AssertionFailure() << what << ": " << llvm.grads.size() << " gradients vs "
                                         << interp.grads.size();
  for (size_t g = 0; g < llvm.grads.size(); ++g) {
    if (llvm.grads[g].width != interp.grads[g].width || llvm.grads[g].rows != interp.grads[g].rows)
      return ::testing::AssertionFailure() << what << ": gradient " << g << " shaped differently";
    if (auto r = agree(llvm.grads[g].data, interp.grads[g].data, tol, what + " gradient " + std::to_string(g)); !r)
      return r;
  }
  return ::testing::AssertionSuccess();
}

template <class T>
LlvmOptions options_for(bool gradients, int threads = 1,
                        llvm_codegen::OptLevel level = llvm_codegen::OptLevel::Full) {
  LlvmOptions options;
  options.dtype = std::is_same_v<T, float> ? DType::F32 : DType::F64;
  options.gradients = gradients;
  options.threads = threads;
  options.opt_level = level;
  return options;
}

// Compiles `kernel` and compares it with the interpreter on `batch`.
template <class T>
::testing::AssertionResult matches_interpreter(const CompiledLoss& compiled, const Batch<double>& batch,
                                               const std::string& what) {
  const Batch<T> data = as<T>(batch);
  EvalOptions options;
  options.gradients = compiled.has_gradients();
  const Evaluation<T> expected = interpret<T>(compiled.loss(), std::span<const Array<T>>(data), options);
  const Evaluation<T> actual = compiled.evaluate<T>(std::span<const Array<T>>(data), options);
  return same_evaluation(actual, expected, what);
}

Loss example(const std::string& file, const std::string& name) {
  Module module = load_module(SourceFile::read(std::string(LOSSFORGE_SOURCE_DIR) + "/examples/losses/" + file));
  const Loss* loss = module.find(name);
  if (!loss) throw std::runtime_error(file + " has no loss " + name);
  return *loss;
}

std::vector<Loss> all_examples() {
  std::vector<Loss> out;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(LOSSFORGE_SOURCE_DIR) + "/examples/losses"))
    if (entry.path().extension() == ".loss")
      for (const Loss& loss : load_module(SourceFile::read(entry.path().string())).losses) out.push_back(loss);
  return out;
}

// ---- every operator ------------------------------------------------------------

// One loss per operator: its arguments are distinct pred inputs of the types
// its type rule accepts (real first, then real[C], then boxes); a real[C]
// result is summed. Adding an operator to ops.hpp adds it here.
std::vector<Loss> operator_losses() {
  std::vector<Loss> out;
  for (const OpInfo& info : all_ops()) {
    if (info.kind == OpKind::Leaf) continue;
    if (info.op == Op::Field) {
      for (int f = 0; f < 4; ++f) {
        LossBuilder b("field_" + std::string(box_field_name(f)));
        out.push_back(b.build(field(b.pred("p", box_type()), f)));
      }
      continue;
    }
    bool built = false;
    for (const Type& type : {real_type(), vec_type(), box_type()}) {
      std::vector<Type> types(size_t(info.arity), type);
      if (!check_types(info.op, types).type) continue;
      LossBuilder b(std::string(info.name) + "_" + (type.is_real() ? "real" : type.is_vec() ? "vec" : "box"));
      std::vector<Expr> args;
      for (int a = 0; a < info.arity; ++a) args.push_back(b.pred("a" + std::to_string(a), type));
      Expr body = make(info.op, args);
      if (body->type().is_vec()) body = make(Op::Sum, {body});
      out.push_back(b.build(body));
      built = true;
    }
    if (!built) ADD_FAILURE() << "no argument types found for operator " << info.name;
  }
  return out;
}

template <class T>
void check_operators_forward() {
  Rng rng(11);
  for (const Loss& loss : operator_losses()) {
    SCOPED_TRACE(loss.name);
    Batch<double> batch = random_batch(loss, 67, rng);
    // The exp clamp and its tie, signed zeros, large magnitudes, a NaN.
    if (batch[0].width == 1) {
      const double specials[] = {88, 88.5, -0.0, 0, 100, -100, 1e-30, std::numeric_limits<double>::quiet_NaN()};
      for (size_t i = 0; i < std::size(specials); ++i) batch[0].data[i] = specials[i];
    }
    CompiledLoss compiled = CompiledLoss::compile(forward_kernel(loss), options_for<T>(false));
    EXPECT_TRUE(matches_interpreter<T>(compiled, batch, loss.name));
  }
}

TEST(LlvmOperators, EveryOperatorForwardFloat) { check_operators_forward<float>(); }
TEST(LlvmOperators, EveryOperatorForwardDouble) { check_operators_forward<double>(); }

// ---- hand-made gradient roots: the multi-root machinery ------------------------

// Kernels whose "gradients" are any expressions of the right shapes: the JIT
// must store each root where the interpreter's gradient of the same shape goes.
// Here they are the true derivatives, written by hand, so the interpreter's
// tape checks them.
TEST(LlvmKernel, HandMadeGradientRoots) {
  Rng rng(5);
  {  // real: d/dx (x·x·y + exp(x)) = 2xy + exp(x) (with the clamp: x stays below 88)
    LossBuilder b("real");
    Expr x = b.pred("x"), y = b.data("y");
    Loss loss = b.build(call(Op::Add, {call(Op::Mul, {call(Op::Mul, {x, x}), y}), call(Op::Exp, {x})}));
    Gradients g{{{0, {call(Op::Add, {call(Op::Mul, {call(Op::Mul, {num(2), x}), y}), call(Op::Exp, {x})})}}}};
    CompiledLoss compiled = CompiledLoss::compile(gradient_kernel(loss, g), options_for<double>(true));
    EXPECT_TRUE(matches_interpreter<double>(compiled, random_batch(loss, 41, rng), "real"));
  }
  {  // real[C]: d/dx dot(x, y) = y (an input as a root), d/dy = x; d/dz sum(z) = 1 (broadcast constant)
    LossBuilder b("vec");
    Expr x = b.pred("x", vec_type()), y = b.pred("y", vec_type()), z = b.pred("z", vec_type());
    Loss loss = b.build(call(Op::Add, {call(Op::Dot, {x, y}), call(Op::Sum, {z})}));
    Gradients g{{{0, {y}}, {1, {x}}, {2, {num(1)}}}};
    CompiledLoss compiled = CompiledLoss::compile(gradient_kernel(loss, g), options_for<float>(true));
    EXPECT_TRUE(matches_interpreter<float>(compiled, random_batch(loss, 19, rng), "vec"));
  }
  {  // real[C], fused: d/dx sum(x·x·s) = 2·x·s with s = sum(x)... plus the sum's share: Σ x²
    LossBuilder b("fused");
    Expr x = b.pred("x", vec_type());
    Expr s = call(Op::Sum, {x});
    Expr xx = call(Op::Mul, {x, x});
    Loss loss = b.build(call(Op::Sum, {call(Op::Mul, {xx, s})}));
    Expr part = call(Op::Add, {call(Op::Mul, {call(Op::Mul, {num(2), x}), s}), call(Op::Sum, {xx})});
    Gradients g{{{0, {part}}}};
    CompiledLoss compiled = CompiledLoss::compile(gradient_kernel(loss, g), options_for<double>(true));
    EXPECT_TRUE(matches_interpreter<double>(compiled, random_batch(loss, 23, rng), "fused"));
  }
  {  // box: d/dp (p.x1 · g.y2 + area(g)) = (g.y2, 0, 0, 0); g is data
    LossBuilder b("box");
    Expr p = b.pred("p", box_type()), gbox = b.data("g", box_type());
    Loss loss = b.build(call(Op::Add, {call(Op::Mul, {field(p, 0), field(gbox, 3)}), call(Op::Area, {gbox})}));
    Gradients g{{{0, {field(gbox, 3), num(0), num(0), num(0)}}}};
    CompiledLoss compiled = CompiledLoss::compile(gradient_kernel(loss, g), options_for<float>(true));
    EXPECT_TRUE(matches_interpreter<float>(compiled, random_batch(loss, 9, rng), "box"));
  }
}

TEST(LlvmKernel, MalformedGradientShapesAreRejected) {
  LossBuilder b("shapes");
  Expr p = b.pred("p", box_type());
  Loss loss = b.build(call(Op::Area, {p}));
  EXPECT_THROW(gradient_kernel(loss, Gradients{{{0, {num(1)}}}}), std::invalid_argument);  // a box needs 4 parts
  EXPECT_THROW(gradient_kernel(loss, Gradients{}), std::invalid_argument);                 // p needs a gradient
}

// ---- the examples ----------------------------------------------------------------

template <class T>
void check_examples(bool gradients, llvm_codegen::OptLevel level = llvm_codegen::OptLevel::Full) {
  Rng rng(3);
  for (const Loss& loss : all_examples()) {
    SCOPED_TRACE(loss.name);
    CompiledLoss compiled = CompiledLoss::compile(loss, options_for<T>(gradients, 1, level));
    for (size_t rows : {size_t(0), size_t(1), size_t(7), size_t(16), size_t(33), size_t(1003)})
      EXPECT_TRUE(matches_interpreter<T>(compiled, random_batch(loss, rows, rng), loss.name + " N=" + std::to_string(rows)));
  }
}

TEST(LlvmExamples, ForwardFloat) { check_examples<float>(false); }
TEST(LlvmExamples, ForwardDouble) { check_examples<double>(false); }
TEST(LlvmExamples, LossAndGradientFloat) { check_examples<float>(true); }
TEST(LlvmExamples, LossAndGradientDouble) { check_examples<double>(true); }
// The Quick tier (fast instruction selection) computes the same.
TEST(LlvmExamples, QuickTierLossAndGradientFloat) { check_examples<float>(true, llvm_codegen::OptLevel::Quick); }
TEST(LlvmExamples, QuickTierLossAndGradientDouble) { check_examples<double>(true, llvm_codegen::OptLevel::Quick); }

// Box kernels get the fast code generator in both tiers (they run at their
// memory traffic either way): the Full tier's object code is the Quick
// tier's, byte for byte. Other kernels get the aggressive one in Full.
TEST(LlvmCodegen, BoxKernelsCompileWithTheFastCodeGeneratorInBothTiers) {
  const auto object = [](const Loss& loss, llvm_codegen::OptLevel level) {
    return llvm_codegen::emit_object(gradient_kernel(loss, differentiate(loss)), DType::F32, level);
  };
  const Loss giou = example("giou.loss", "giou");
  EXPECT_EQ(object(giou, llvm_codegen::OptLevel::Full), object(giou, llvm_codegen::OptLevel::Quick));
  const Loss focal = example("focal.loss", "sigmoid_focal");
  EXPECT_NE(object(focal, llvm_codegen::OptLevel::Full), object(focal, llvm_codegen::OptLevel::Quick));
  const Loss ce = example("cross_entropy.loss", "cross_entropy");
  EXPECT_NE(object(ce, llvm_codegen::OptLevel::Full), object(ce, llvm_codegen::OptLevel::Quick));
}

// Each thread keeps its TargetMachines for all its compiles: a kernel's
// object code is the same bytes compiled first or again, in any thread.
TEST(LlvmCodegen, ObjectCodeIsTheSameFromEveryCompileAndThread) {
  for (const Loss& loss : {example("focal.loss", "sigmoid_focal"), example("giou.loss", "giou")}) {
    const Kernel kernel = gradient_kernel(loss, differentiate(loss));
    const std::string first = llvm_codegen::emit_object(kernel, DType::F32);
    EXPECT_EQ(llvm_codegen::emit_object(kernel, DType::F32), first) << loss.name;
    std::string other_thread;
    std::thread([&] { other_thread = llvm_codegen::emit_object(kernel, DType::F32); }).join();
    EXPECT_EQ(other_thread, first) << loss.name;
  }
}

// The kernel realigns its stack to the vector size, so that the vector
// registers it spills around libmvec calls lie at one alignment whatever the
// caller's stack (bench/README.md, session 7: some alignments ran focal 1.6x
// slower).
TEST(LlvmCodegen, KernelsRealignTheirStackForVectorSpills) {
  const Kernel focal = gradient_kernel(example("focal.loss", "sigmoid_focal"),
                                       differentiate(example("focal.loss", "sigmoid_focal")));
  const std::string assembly = llvm_codegen::emit_assembly(focal, DType::F32);
  const std::string vector_bytes = std::to_string(llvm_codegen::vector_lanes(DType::F32) * 4);
  EXPECT_NE(assembly.find("andq\t$-" + vector_bytes + ", %rsp"), std::string::npos) << assembly;
  // ... and spills vector registers with aligned stores.
  const std::string reg = llvm_codegen::vector_lanes(DType::F32) == 16 ? "%zmm" : "%ymm";
  bool aligned_spill = false;
  std::istringstream lines(assembly);
  for (std::string line; std::getline(lines, line);)
    aligned_spill = aligned_spill || (line.find("vmovaps\t" + reg) != std::string::npos &&
                                      line.find("(%rsp)") != std::string::npos);
  EXPECT_TRUE(aligned_spill) << assembly;
}

// softplus(-x) and sigmoid(-x) share softplus(x)'s exp(-|x|): the kernel of
// all three makes as many exp calls as softplus(x)'s alone (the simplifier
// writes CSE-Autoloss-B cls's log(sigmoid(x)) and log(1 - sigmoid(x)) as
// softplus(-x) and softplus(x)).
TEST(LlvmCodegen, SoftplusAndSigmoidOfXAndMinusXShareOneExp) {
  const auto exp_calls = [](const std::string& text) {
    const Module module = load_module(SourceFile::from_text("<test>", text));
    const Loss& loss = module.losses.front();
    const std::string ir = llvm_codegen::emit_ir(gradient_kernel(loss, differentiate(loss)), DType::F32, true);
    return calls_in_ir(ir, {"llvm.exp.", "_expf"});  // llvm.exp.f32 or libmvec's expf
  };
  const size_t alone = exp_calls("loss a(pred x: real) = softplus(x)");
  EXPECT_GE(alone, 1u);
  EXPECT_EQ(exp_calls("loss b(pred x: real) = softplus(x) + softplus(-x) + sigmoid(-x) * sigmoid(x)"), alone);
}

// ---- random candidates of every preset --------------------------------------------

// What a kernel's roots evaluate to in the interpreter, run forward: the loss,
// and each gradient part as a loss of its own (column c of a real[C] part as
// sum(where(e_c, part, 0)) with a one-hot probe row e_c, which picks the
// column exactly, inf and NaN included). This is the oracle for the code
// generator alone: the expressions, not how they were derived.
template <class T>
Evaluation<T> interpret_roots(const Kernel& kernel, const Batch<T>& batch) {
  const Loss& loss = kernel.loss;
  Evaluation<T> out = interpret<T>(loss, std::span<const Array<T>>(batch));
  const size_t rows = out.loss.size();
  for (const InputGradient& g : kernel.gradients) {
    const Array<T>& input = batch[g.input];
    Array<T> grad(rows, input.width);
    for (size_t part = 0; part < g.parts.size(); ++part) {
      const Expr& root = g.parts[part];
      const bool vec = loss.inputs[g.input].type.is_vec();
      for (size_t col = 0; col < (vec ? input.width : 1); ++col) {
        Loss probe_loss = loss;
        Batch<T> probe_batch = batch;
        if (root->type().is_vec()) {
          const Expr probe = lossforge::input(int(loss.inputs.size()), "probe", root->type());
          probe_loss.inputs.push_back({"probe", root->type(), false});
          probe_loss.body = make(Op::Sum, {make(Op::Where, {probe, root, constant(0)})});
          Array<T> onehot(rows, input.width);
          for (size_t r = 0; r < rows; ++r) onehot.row(r)[col] = T(1);
          probe_batch.push_back(onehot);
        } else {
          probe_loss.body = root;
        }
        const std::vector<T> values = interpret<T>(probe_loss, std::span<const Array<T>>(probe_batch)).loss;
        for (size_t r = 0; r < rows; ++r) grad.row(r)[vec ? col : part] = values[r];
      }
    }
    out.grads.push_back(std::move(grad));
  }
  return out;
}

// Gradients are checked against the same expressions run by the interpreter
// (the code generator's job), not against the tape: where symbolic and tape
// gradients differ -- they do on candidates with flat operators over NaN
// slopes, see the report -- that is autodiff's business, tested in its own suite.
template <class T>
void check_random_candidates(bool gradients, llvm_codegen::OptLevel level = llvm_codegen::OptLevel::Full) {
  for (const Preset& preset : all_presets()) {
    SCOPED_TRACE(preset.name);
    Rng rng(std::hash<std::string>{}(preset.name));
    GenerateOptions generate;
    generate.extra_ops = true;
    generate.max_depth = 6;
    const std::vector<Expr> exprs = ramped_half_and_half(preset, rng, generate, 60);
    const auto names = terminal_names(preset);
    for (size_t i = 0; i < exprs.size(); ++i) {
      Loss loss;
      loss.name = preset.name + "_" + std::to_string(i);
      loss.inputs = preset.inputs;
      loss.body = exprs[i];
      loss.preset = preset.name;
      const Kernel kernel = gradients ? gradient_kernel(loss, differentiate(loss)) : forward_kernel(loss);
      const CompiledLoss compiled = CompiledLoss::compile(kernel, options_for<T>(gradients, 1, level));
      // 1 to 40 rows: short ranges (padded box blocks, a lone partial vector)
      // as well as whole and overlapped blocks. Rows of real[C] narrower than
      // a vector, of whole vectors, and of whole vectors and a part (the
      // column loops' masked, whole and moved-back last blocks).
      const size_t width = std::array<size_t, 4>{kWidth, 21, 16, 1}[i % 4];
      const Batch<T> batch = as<T>(random_batch(loss, 1 + (i * 7) % 40, rng, width));
      EvalOptions eval;
      eval.gradients = gradients;
      EXPECT_TRUE(same_evaluation(compiled.evaluate<T>(batch, eval), interpret_roots<T>(kernel, batch),
                                  to_infix(exprs[i], names)));
    }
  }
}

TEST(LlvmRandomCandidates, ForwardFloat) { check_random_candidates<float>(false); }
TEST(LlvmRandomCandidates, ForwardDouble) { check_random_candidates<double>(false); }
TEST(LlvmRandomCandidates, LossAndGradientFloat) { check_random_candidates<float>(true); }
TEST(LlvmRandomCandidates, LossAndGradientDouble) { check_random_candidates<double>(true); }
TEST(LlvmRandomCandidates, QuickTierLossAndGradientFloat) {
  check_random_candidates<float>(true, llvm_codegen::OptLevel::Quick);
}

// Row reductions add in sem::row_sum_of's lane order in both engines: sums,
// dots and means of rows of every width from 1 to 37 (full 8-lane blocks and
// every partial block) are the same bits, as are their gradients.
template <class T>
void check_row_reductions_bitwise() {
  const Module module = load_module(SourceFile::from_text(
      "<test>", "loss rows(pred x: real[C], y: real[C]) = sum(x) * mean(y) + dot(x, y) - mean(x * x)\n"));
  const Loss& loss = module.losses.at(0);
  CompiledLoss compiled = CompiledLoss::compile(loss, options_for<T>(false));
  Rng rng(5);
  for (size_t width = 1; width <= 37; ++width) {
    const Batch<T> typed = as<T>(two_random_rows(rng, 19, width, 3));
    const Evaluation<T> llvm = compiled.evaluate<T>(typed, {});
    const Evaluation<T> interp = interpret<T>(loss, typed, {});
    EXPECT_EQ(llvm.loss, interp.loss) << "width " << width;
  }
}
TEST(LlvmKernel, RowReductionsAreBitwiseTheInterpreters) {
  check_row_reductions_bitwise<float>();
  check_row_reductions_bitwise<double>();
}

// ---- threads, concurrency, object code --------------------------------------------

// Thread chunks start on multiples of the vector loop's step: the result is the
// same bits whatever the thread count.
TEST(LlvmEngine, ThreadsGiveTheSameBitsAsOneThread) {
  for (const Loss& loss : {example("focal.loss", "sigmoid_focal"), example("cross_entropy.loss", "cross_entropy"),
                           example("giou.loss", "giou")}) {
    SCOPED_TRACE(loss.name);
    Rng rng(17);
    const Batch<float> batch = to_float(random_batch(loss, 100003, rng));
    LlvmOptions one = options_for<float>(true, 1), four = options_for<float>(true, 4);
    four.min_rows_per_thread = 1000;
    EvalOptions eval;
    eval.gradients = true;
    const auto a = CompiledLoss::compile(loss, one).evaluate<float>(batch, eval);
    const auto b = CompiledLoss::compile(loss, four).evaluate<float>(batch, eval);
    EXPECT_EQ(a.loss, b.loss);
    ASSERT_EQ(a.grads.size(), b.grads.size());
    for (size_t g = 0; g < a.grads.size(); ++g) EXPECT_EQ(a.grads[g].data, b.grads[g].data);
    EXPECT_TRUE(same_evaluation(b, interpret<float>(loss, std::span<const Array<float>>(batch), eval), loss.name));
  }
}

TEST(LlvmEngine, OneKernelCalledFromManyThreadsAtOnce) {
  const Loss loss = example("cse_autoloss_b.loss", "cse_autoloss_b_cls");
  LlvmOptions options = options_for<double>(true, 2);
  options.min_rows_per_thread = 512;
  const CompiledLoss compiled = CompiledLoss::compile(loss, options);
  Rng rng(23);
  const Batch<double> batch = random_batch(loss, 5000, rng);
  EvalOptions eval;
  eval.gradients = true;
  const Evaluation<double> expected = compiled.evaluate<double>(batch, eval);
  std::vector<std::thread> callers;
  std::vector<int> ok(6, 0);
  for (size_t t = 0; t < ok.size(); ++t)
    callers.emplace_back([&, t] {
      bool same = true;
      for (int round = 0; round < 10; ++round) {
        const Evaluation<double> got = compiled.evaluate<double>(batch, eval);
        same = same && got.loss == expected.loss && got.grads[0].data == expected.grads[0].data;
      }
      ok[t] = same;
    });
  for (std::thread& t : callers) t.join();
  for (int v : ok) EXPECT_TRUE(v);
}

TEST(LlvmEngine, ObjectCodeLoadsAgain) {
  const Loss loss = example("giou.loss", "giou");
  const CompiledLoss compiled = CompiledLoss::compile(loss, options_for<double>(true));
  ASSERT_GT(compiled.object_code().size(), 100u);
  EXPECT_EQ(compiled.object_code().substr(0, 4), std::string_view("\x7f" "ELF", 4));
  const CompiledLoss loaded = CompiledLoss::load(loss, options_for<double>(true), compiled.object_code());
  Rng rng(29);
  const Batch<double> batch = random_batch(loss, 99, rng);
  EvalOptions eval;
  eval.gradients = true;
  const auto a = compiled.evaluate<double>(batch, eval);
  const auto b = loaded.evaluate<double>(batch, eval);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.grads[0].data, b.grads[0].data);
  EXPECT_THROW(CompiledLoss::load(loss, options_for<double>(true), "not an object file"), Error);
}

// ---- vector code ------------------------------------------------------------------

// One host vector register of the dtype as LLVM IR spells it: "<16 x float>".
std::string vector_type(DType dtype) {
  return "<" + std::to_string(llvm_codegen::vector_lanes(dtype)) + (dtype == DType::F32 ? " x float>" : " x double>");
}

// The focal loss's row loop vectorises, with libmvec's exp and log: vector
// types in the optimised IR, vector registers and libmvec calls in the
// assembly.
TEST(LlvmCodegen, RowLoopsVectorise) {
  const Kernel focal = gradient_kernel(example("focal.loss", "sigmoid_focal"),
                                       differentiate(example("focal.loss", "sigmoid_focal")));
  const std::string ir = llvm_codegen::emit_ir(focal, DType::F32, true);
  EXPECT_NE(ir.find(vector_type(DType::F32)), std::string::npos) << ir;
  const std::string assembly = llvm_codegen::emit_assembly(focal, DType::F32);
  // 512-bit registers and libmvec's AVX-512 variants where the kernels use
  // 512-bit vectors (vector_lanes), else 256-bit ones and the AVX2 variants.
  const bool avx512 = llvm_codegen::vector_lanes(DType::F32) == 16;
  EXPECT_NE(assembly.find(avx512 ? "zmm" : "ymm"), std::string::npos);
  const std::string mvec = avx512 ? "_ZGVeN16v_" : "_ZGVdN8v_";
  EXPECT_NE(assembly.find(mvec + "expf"), std::string::npos) << "exp not vectorised through libmvec";
  EXPECT_NE(assembly.find(mvec + "logf"), std::string::npos) << "log not vectorised through libmvec";

  const Kernel giou = forward_kernel(example("giou.loss", "giou"));
  EXPECT_NE(llvm_codegen::emit_ir(giou, DType::F64, true).find("x double>"), std::string::npos);

  // real[C]: the column loops of cross-entropy vectorise.
  const Kernel ce = forward_kernel(example("cross_entropy.loss", "cross_entropy"));
  EXPECT_NE(llvm_codegen::emit_ir(ce, DType::F32, true).find("x float>"), std::string::npos);
}

// Element-wise rows run four vectors per iteration in the Full tier, so one
// vector's chain of calls is not alone in the out-of-order window: abs(x)'s
// vector loop has four vector fabs for the scalar tail's one. With AVX-512
// the loop runs masked, no scalar tail, at the vectoriser's own interleave.
TEST(LlvmCodegen, ElementRowsRunFourVectorsPerIteration) {
  const bool avx512 = llvm_codegen::vector_lanes(DType::F32) == 16;
  const Module module = load_module(SourceFile::from_text("<test>", "loss a(pred x: real) = abs(x)\n"));
  for (DType dtype : {DType::F32, DType::F64}) {
    const std::string ir = llvm_codegen::emit_ir(forward_kernel(module.losses.at(0)), dtype, true);
    const size_t tail = calls_in_ir(ir, {std::string(dtype == DType::F32 ? "float" : "double") + " @llvm.fabs."});
    const size_t vector = calls_in_ir(ir, {vector_type(dtype) + " @llvm.fabs."});
    if (avx512) {
      EXPECT_EQ(tail, 0u) << ir;
      EXPECT_GE(vector, 1u) << ir;
    } else {
      EXPECT_EQ(tail, 1u) << ir;
      EXPECT_EQ(vector, 4 * tail) << ir;
    }
  }
}

// Rows of real[C] run their column loops as vector code to the last column:
// the columns past the whole vectors (81 classes: one) are one more vector,
// not a scalar remainder calling libm's scalar routines. CSE-Autoloss-A as
// written (log of softmax, the weights' sines) and cross-entropy call exp,
// log and sin as vector routines only; the scalar routine left is the log
// of each row's Σ e^(x - m), which log_softmax takes once per row.
TEST(LlvmCodegen, ColumnLoopsCallOnlyVectorMath) {
  const Loss cse = example("cse_autoloss_a.loss", "cse_autoloss_a_cls");
  const Loss ce = example("cross_entropy.loss", "cross_entropy");
  for (DType dtype : {DType::F32, DType::F64}) {
    const std::string scalar = dtype == DType::F32 ? "float @" : "double @";
    const auto scalar_calls = [&](const std::string& ir, std::initializer_list<const char*> routines) {
      size_t count = 0;
      for (std::string routine : routines)
        count += calls_in_ir(ir, {scalar + "llvm." + routine + ".", scalar + routine});
      return count;
    };
    for (const Loss* loss : {&cse, &ce}) {
      const std::string ir = llvm_codegen::emit_ir(gradient_kernel(*loss, differentiate(*loss)), dtype, true);
      EXPECT_EQ(scalar_calls(ir, {"exp", "sin"}), 0u) << ir;
      EXPECT_EQ(scalar_calls(ir, {"log"}), loss == &ce ? 1u : 0u) << ir;
      EXPECT_GE(calls_in_ir(ir, {"> @_ZGV", "> @llvm.exp.v", "> @llvm.sin.v"}), 2u) << ir;
    }
  }
}

TEST(LlvmCodegen, UnoptimisedIrIsReadable) {
  const std::string ir = llvm_codegen::emit_ir(forward_kernel(example("focal.loss", "sigmoid_focal")), DType::F64, false);
  EXPECT_NE(ir.find("define void @lossforge_kernel("), std::string::npos);
  EXPECT_NE(ir.find("define i64 @lossforge_scratch_size("), std::string::npos);
  EXPECT_NE(ir.find("llvm.exp.f64"), std::string::npos);
  EXPECT_FALSE(llvm_codegen::host_target_description().empty());
  EXPECT_NE(llvm_codegen::compiler_version().find("LLVM 16"), std::string::npos);
}

// ---- errors -----------------------------------------------------------------------

// The engine rejects exactly what the interpreter rejects, with its message.
TEST(LlvmEngine, InputErrorsMatchTheInterpreter) {
  const Loss ce = example("cross_entropy.loss", "cross_entropy");
  const CompiledLoss compiled = CompiledLoss::compile(ce, options_for<double>(true));
  Rng rng(31);
  const Batch<double> good = random_batch(ce, 4, rng);
  std::vector<Batch<double>> bad;
  bad.push_back({good[0]});                                       // too few arrays
  bad.push_back({good[0], Array<double>(4, 6)});                  // widths differ
  bad.push_back({good[0], Array<double>(3, kWidth)});             // rows differ
  bad.push_back({Array<double>(4, 0), Array<double>(4, 0)});      // no values per row
  bad.push_back({good[0], Array<double>(4, kWidth, {1.0, 2.0})});  // data too short
  for (const Batch<double>& batch : bad) {
    std::string interp_message, llvm_message;
    try {
      interpret<double>(ce, std::span<const Array<double>>(batch));
    } catch (const InputError& e) {
      interp_message = e.what();
    }
    try {
      compiled.evaluate<double>(batch);
    } catch (const InputError& e) {
      llvm_message = e.what();
    }
    EXPECT_FALSE(interp_message.empty());
    EXPECT_EQ(llvm_message, interp_message);
  }
  EvalOptions wrong_params;
  wrong_params.params = {1.0};
  EXPECT_THROW(compiled.evaluate<double>(good, wrong_params), InputError);
  EXPECT_THROW(compiled.evaluate<float>(to_float(good)), std::invalid_argument);  // compiled for f64
  const CompiledLoss forward = CompiledLoss::compile(ce, options_for<double>(false));
  EvalOptions gradients;
  gradients.gradients = true;
  EXPECT_THROW(forward.evaluate<double>(good, gradients), std::invalid_argument);
}

TEST(LlvmEngine, ParamsOverrideDefaults) {
  const Loss focal = example("focal.loss", "sigmoid_focal");
  const CompiledLoss compiled = CompiledLoss::compile(focal, options_for<float>(true));
  Rng rng(37);
  const Batch<float> batch = to_float(random_batch(focal, 50, rng));
  EvalOptions eval;
  eval.gradients = true;
  eval.params = {0.5, 1.5};
  EXPECT_TRUE(same_evaluation(compiled.evaluate<float>(batch, eval),
                              interpret<float>(focal, std::span<const Array<float>>(batch), eval), "focal"));
  // Rows of boxes compute in vectors: a param is one value in every lane,
  // its default specialised in a copy of the rows, another one a vector pow.
  const Module module = load_module(SourceFile::from_text("<test>", R"(
loss focal_iou(pred p: box, g: box) {
  param gamma = 2
  param scale = 0.5
  scale * (1.5 - iou(p, g))^gamma
}
)"));
  const Loss& boxes = module.losses.at(0);
  const std::string mvec = llvm_codegen::vector_lanes(DType::F32) == 16 ? "_ZGVeN16vv_powf" : "_ZGVdN8vv_powf";
  EXPECT_NE(llvm_codegen::emit_assembly(gradient_kernel(boxes, differentiate(boxes)), DType::F32).find(mvec),
            std::string::npos);
  const CompiledLoss compiled_boxes = CompiledLoss::compile(boxes, options_for<float>(true));
  const Batch<float> box_batch = to_float(random_batch(boxes, 37, rng));
  for (const std::vector<double>& params : {std::vector<double>{}, std::vector<double>{2.5, 3}}) {
    eval.params = params;
    EXPECT_TRUE(same_evaluation(compiled_boxes.evaluate<float>(box_batch, eval),
                                interpret<float>(boxes, std::span<const Array<float>>(box_batch), eval), "focal_iou"));
  }
}

// softmax, log_softmax and logsumexp of one row share its maximum and
// exponentials (made once, in softmax's row); with their gradients, which
// bring in softmax(x) again, every width from 1 to 19 agrees with the
// interpreter, extreme logits included.
template <class T>
void check_shared_row_exponentials() {
  const Module module = load_module(SourceFile::from_text(
      "<test>", "loss rows(pred x: real[C], y: real[C]) = dot(y, log_softmax(x)) + logsumexp(x) * dot(y, softmax(x))\n"
                "loss lse(pred x: real[C], y: real[C]) = logsumexp(x) - dot(y, x)\n"));
  Rng rng(17);
  for (const Loss& loss : module.losses) {
    CompiledLoss compiled = CompiledLoss::compile(loss, options_for<T>(true));
    for (size_t width = 1; width <= 19; ++width) {
      Batch<double> batch = two_random_rows(rng, 13, width, 4);
      batch[0].data[0] = 80;  // exp's clamp would matter without the max shift
      batch[0].data[batch[0].data.size() - 1] = -200;
      EXPECT_TRUE(matches_interpreter<T>(compiled, batch, loss.name + " width " + std::to_string(width)));
    }
  }
}
TEST(LlvmKernel, RowExponentialsAreShared) {
  check_shared_row_exponentials<float>();
  check_shared_row_exponentials<double>();
}

// A log_softmax row read only by dots is folded into them: dot(a,
// log_softmax(x)) is Σ a (x - m) - ln Σ e^(x - m) · Σ a, no row (the
// cross-entropy of every two-stage detector), summed in the loop of the
// exponentials' sum when a is ready by then, else in a loop of its own.
// Either argument order, two dots sharing the row and weights computed
// later fold; a row that something else reads, or a dot of the row with
// itself, is still stored. Every width from 1 to 19, with infinite, NaN and
// extreme logits, agrees with the interpreter.
template <class T>
void check_folded_log_softmax() {
  struct Case {
    const char* text;
    bool folded;
  };
  const Case cases[] = {
      {"loss a(pred x: real[C], y: real[C]) = -dot(log_softmax(x), y)", true},
      {"loss b(pred x: real[C], y: real[C]) = dot(y, log_softmax(x)) + 2 * dot(x, log_softmax(x))", true},
      {"loss later(pred x: real[C], y: real[C]) = -dot(log_softmax(x), y * (1 + sin(y)))", true},
      {"loss c(pred x: real[C], y: real[C]) = dot(log_softmax(x), log_softmax(x))", false},
      {"loss d(pred x: real[C], y: real[C]) = sum(log_softmax(x)) - dot(y, log_softmax(x))", false},
  };
  Rng rng(23);
  for (const Case& c : cases) {
    const Loss loss = load_module(SourceFile::from_text("<test>", c.text)).losses.at(0);
    SCOPED_TRACE(c.text);
    const std::string ir = llvm_codegen::emit_ir(forward_kernel(loss), DType::F32, false);
    // A folded row's non-finite fallback is the only loop of that name.
    EXPECT_EQ(ir.find("dot_log_softmax_terms:") != std::string::npos, c.folded) << ir;
    for (bool gradients : {false, true}) {
      const CompiledLoss compiled = CompiledLoss::compile(loss, options_for<T>(gradients));
      for (size_t width = 1; width <= 19; ++width) {
        Batch<double> batch = two_random_rows(rng, 13, width, 4);
        Array<double>& x = batch[0];
        x.row(1)[0] = 80;
        x.row(2)[width - 1] = -200;
        x.row(3)[0] = std::numeric_limits<double>::infinity();
        x.row(4)[width / 2] = -std::numeric_limits<double>::infinity();
        x.row(5)[0] = std::numeric_limits<double>::quiet_NaN();
        std::fill(batch[1].row(6), batch[1].row(6) + width, 0.0);  // a row of zero weights
        EXPECT_TRUE(matches_interpreter<T>(compiled, batch, "width " + std::to_string(width)));
      }
    }
  }
}
TEST(LlvmKernel, LogSoftmaxReadByDotsIsFoldedIntoThem) {
  check_folded_log_softmax<float>();
  check_folded_log_softmax<double>();
}

// sum(-a) and mean(-a) reduce a's lanes negated instead of a stored row -a,
// and when a is a folded dot's weights they are summed in the dot's loop.
// Cross-entropy's gradient, -y - softmax(x) sum(-y), so makes one column loop
// and one sum loop (the softmax denominators) per row. The same bits as the
// interpreter's reductions (signed zeros included) on rows of every width,
// and the folded loss and gradients agree with it, special logits included.
int loops_named(const std::string& ir, const std::string& name) {
  int count = 0;
  std::istringstream lines(ir);
  for (std::string line; std::getline(lines, line);) {
    size_t digits = name.size();
    while (digits < line.size() && std::isdigit(static_cast<unsigned char>(line[digits]))) ++digits;
    count += line.rfind(name, 0) == 0 && digits < line.size() && line[digits] == ':';
  }
  return count;
}
// Random rows of logits x and labels y in [-4, 4], with a logit of 80 in
// row 1, -inf in row 2 and NaN in row 3.
Batch<double> rows_with_special_logits(Rng& rng, size_t rows, size_t width) {
  Batch<double> batch = two_random_rows(rng, rows, width, 4);
  Array<double>& x = batch[0];
  x.row(1)[0] = 80;
  x.row(2)[width - 1] = -std::numeric_limits<double>::infinity();
  x.row(3)[0] = std::numeric_limits<double>::quiet_NaN();
  return batch;
}
template <class T>
void check_sums_of_negations() {
  const Loss ce = example("cross_entropy.loss", "cross_entropy");
  const std::string ir = llvm_codegen::emit_ir(gradient_kernel(ce, differentiate(ce)), DType::F32, false);
  EXPECT_EQ(loops_named(ir, "cols"), 1) << ir;
  EXPECT_EQ(loops_named(ir, "sum"), 1) << ir;

  const Module module = load_module(SourceFile::from_text(
      "<test>", "loss bits(pred x: real[C], y: real[C]) = sum(-x) * mean(-y) - sum(-(x * y)) + dot(-x, y)\n"
                "loss folded(pred x: real[C], y: real[C]) = -dot(y, log_softmax(x)) + mean(-y) * sum(-x) * sum(y)\n"));
  Rng rng(29);
  const Loss& bits = module.losses.at(0);
  const CompiledLoss exact = CompiledLoss::compile(bits, options_for<T>(false));
  for (size_t width = 1; width <= 19; ++width) {
    Batch<double> batch = two_random_rows(rng, 7, width, 3);
    std::fill(batch[0].row(2), batch[0].row(2) + width, 0.0);   // sums of -0: +0, not -(+0)
    std::fill(batch[1].row(3), batch[1].row(3) + width, -0.0);
    const Batch<T> typed = as<T>(batch);
    const std::vector<T> llvm = exact.evaluate<T>(typed, {}).loss, interp = interpret<T>(bits, typed, {}).loss;
    for (size_t row = 0; row < llvm.size(); ++row) {
      EXPECT_EQ(llvm[row], interp[row]) << "width " << width << " row " << row;
      EXPECT_EQ(std::signbit(llvm[row]), std::signbit(interp[row])) << "width " << width << " row " << row;
    }
  }
  const Loss& folded = module.losses.at(1);
  const CompiledLoss compiled = CompiledLoss::compile(folded, options_for<T>(true));
  for (size_t width = 1; width <= 19; ++width) {
    Batch<double> batch = rows_with_special_logits(rng, 9, width);
    std::fill(batch[1].row(4), batch[1].row(4) + width, 0.0);
    EXPECT_TRUE(matches_interpreter<T>(compiled, batch, "width " + std::to_string(width)));
  }
}
TEST(LlvmKernel, SumsOfANegationReadTheRowItself) {
  check_sums_of_negations<float>();
  check_sums_of_negations<double>();
}

// Weights element-wise on inputs are emitted before the row's exponentials
// are summed, whatever side of the dot they are written on, so the dot sums
// in that loop: CSE-Autoloss-A as simplified, -dot(log_softmax(X), Y (1 +
// sin Z)), makes one sum loop per row and no dot loop of its own.
TEST(LlvmKernel, DotsOfWeightsFromInputsSumWithTheExponentials) {
  const Loss cse = simplify(example("cse_autoloss_a.loss", "cse_autoloss_a_cls"));
  const std::string ir = llvm_codegen::emit_ir(gradient_kernel(cse, differentiate(cse)), DType::F32, false);
  EXPECT_EQ(loops_named(ir, "sum"), 1) << ir;
  EXPECT_EQ(loops_named(ir, "dot_log_softmax"), 0) << ir;
  Rng rng(31);
  const CompiledLoss compiled = CompiledLoss::compile(cse, options_for<float>(true));
  EXPECT_TRUE(matches_interpreter<float>(compiled, random_batch(cse, 37, rng, 21), "cse_autoloss_a_cls"));
}

// softmax(x) has no loop of its own: its row holds the exponentials, and
// each reader divides by their sum as it reads (a column loop, a row
// reduction, a gradient row written out). Cross-entropy with its gradient
// makes 4 loops per row: max, exp, the exponentials' sum (with the folded
// dot's sums and sum(-y)), and one column loop. Loss and gradients agree
// with the interpreter for every reader kind, special logits included.
template <class T>
void check_softmax_divides_where_read() {
  const Module module = load_module(SourceFile::from_text(
      "<test>", "loss read(pred x: real[C], y: real[C]) = dot(y, softmax(x)) + sum(softmax(x) * y)\n"
                "loss written(pred x: real[C], y: real[C]) = logsumexp(x) + dot(y, x)\n"));
  Rng rng(31);
  for (const Loss& loss : module.losses) {
    const CompiledLoss compiled = CompiledLoss::compile(loss, options_for<T>(true));
    for (size_t width = 1; width <= 19; ++width) {
      const Batch<double> batch = rows_with_special_logits(rng, 7, width);
      EXPECT_TRUE(matches_interpreter<T>(compiled, batch, loss.name + " width " + std::to_string(width)));
    }
  }
}
TEST(LlvmKernel, SoftmaxDividesWhereItIsRead) {
  const Loss ce = example("cross_entropy.loss", "cross_entropy");
  const std::string ir = llvm_codegen::emit_ir(gradient_kernel(ce, differentiate(ce)), DType::F32, false);
  EXPECT_EQ(loops_named(ir, "softmax"), 0) << ir;
  int loops = 0;
  for (const char* name : {"max", "exp", "sum", "dot_log_softmax", "cols"}) loops += loops_named(ir, name);
  EXPECT_EQ(loops, 4) << ir;
  check_softmax_divides_where_read<float>();
  check_softmax_divides_where_read<double>();
}

// Constant integer exponents (up to 4 in size, here and in the gradient) are
// multiplications, not pow calls, and agree with the interpreter's libm pow,
// at zeros, infinities and NaN too.
template <class T>
void check_integer_powers(const std::string& text) {
  const Module module = load_module(SourceFile::from_text("<test>", text));
  const Loss& loss = module.losses.at(0);
  const DType dtype = std::is_same_v<T, float> ? DType::F32 : DType::F64;
  const std::string ir = llvm_codegen::emit_ir(gradient_kernel(loss, differentiate(loss)), dtype, false);
  EXPECT_EQ(ir.find("llvm.pow"), std::string::npos) << ir;
  EXPECT_EQ(ir.find("vv_pow"), std::string::npos) << ir;  // libmvec's, called directly for rows of boxes
  Rng rng(13);
  Batch<double> batch = random_batch(loss, 70, rng);
  const double inf = std::numeric_limits<double>::infinity();
  const double specials[] = {0, -0.0, 1, -1, inf, -inf, std::numeric_limits<double>::quiet_NaN(), 1e-3, -7.5};
  for (size_t i = 0; i < std::size(specials); ++i) batch[0].data[i] = specials[i];
  CompiledLoss compiled = CompiledLoss::compile(loss, options_for<T>(true));
  EXPECT_TRUE(matches_interpreter<T>(compiled, batch, "powers"));
}
TEST(LlvmKernel, IntegerPowersAreMultiplications) {
  const std::string powers = "x^0 + x^1 + x^2 + x^3 + x^4 + x^-1 + x^-2 + x^-3\n";
  // Rows of boxes compute in vectors: their exponents are vector constants.
  for (const std::string& text : {"loss powers(pred x: real) = " + powers,
                                  "loss powers(pred p: box, g: box) {\n  let x = p.x1 - g.y2\n  " + powers + "}\n"}) {
    check_integer_powers<float>(text);
    check_integer_powers<double>(text);
  }
}

// y * f(z), f = 1 + sin z, skips the sine in blocks where y is all ±0 and z
// finite (compiler/codegen_llvm.cpp, guarded products): the product is then
// y, bit for bit. The gradient of sum(x * w) by x is w itself, so its sign of
// zero and its NaN show. Where y is ±0, w must be IEEE's y * f(z) exactly
// (±0 with y's sign, NaN beside an infinite or NaN z, whatever sine routine
// computes it): in one-hot rows, a row of -0, and zeros beside a NaN, an
// infinity and a huge z (which the guard sends to the sine). 21 columns:
// whole vectors and a last block. The rest agrees with the interpreter.
template <class T>
void check_guarded_products(const Loss& loss, const std::function<T(T)>& factor) {
  const DType dtype = std::is_same_v<T, float> ? DType::F32 : DType::F64;
  const Kernel kernel = gradient_kernel(loss, differentiate(loss));
  EXPECT_NE(llvm_codegen::emit_ir(kernel, dtype, false).find("\nfactor:"), std::string::npos);
  constexpr size_t kRows = 6, kColumns = 21;
  Rng rng(29);
  Batch<double> batch = random_batch(loss, kRows, rng, kColumns);
  Array<double>& y = batch[1];
  Array<double>& z = batch[2];
  for (size_t r = 0; r < kRows; ++r)  // one-hot rows 0 and 5, a row of -0, zeros
    for (size_t c = 0; c < kColumns; ++c)
      y.row(r)[c] = r == 2 ? -0.0 : (r == 0 && c == 3) || (r == 5 && c == 20) ? 1 : 0;
  z.row(1)[2] = std::numeric_limits<double>::quiet_NaN();
  z.row(3)[10] = std::numeric_limits<double>::infinity();
  z.row(4)[17] = 1e20;
  const Batch<T> data = as<T>(batch);
  EvalOptions options;
  options.gradients = true;
  const CompiledLoss compiled = CompiledLoss::compile(kernel, options_for<T>(true));
  const Evaluation<T> actual = compiled.evaluate<T>(data, options);
  EXPECT_TRUE(same_evaluation(actual, interpret_roots<T>(kernel, data), loss.name));
  for (size_t i = 0; i < kRows * kColumns; ++i) {
    const T y_i = data[1].data[i], z_i = data[2].data[i];
    if (y_i != 0) continue;
    const T got = actual.grads[0].data[i], want = y_i * factor(z_i);
    using Bits = std::conditional_t<std::is_same_v<T, float>, uint32_t, uint64_t>;
    EXPECT_TRUE(std::isnan(want) ? std::isnan(got) : std::bit_cast<Bits>(got) == std::bit_cast<Bits>(want))
        << "row " << i / kColumns << " column " << i % kColumns << ": " << got << " vs " << want;
  }
  EXPECT_TRUE(std::isnan(actual.grads[0].row(1)[2]) && std::isnan(actual.grads[0].row(3)[10]));
}
TEST(LlvmKernel, ProductsSkipTheirFactorWhereTheWeightIsZero) {
  const Module module = load_module(SourceFile::from_text(
      "<test>", "loss weighted(pred x: real[C], y: real[C], z: real[C]) = sum(x * (y * (1 + sin(z))))\n"));
  check_guarded_products<float>(module.losses.at(0), [](float z) { return 1 + std::sin(z); });
  check_guarded_products<double>(module.losses.at(0), [](double z) { return 1 + std::sin(z); });
  // A factor that is a product (never_negative_zero follows products).
  const Module product = load_module(SourceFile::from_text(
      "<test>", "loss weighted(pred x: real[C], y: real[C], z: real[C]) = sum(x * (y * (0.5 * abs(sin(z)))))\n"));
  check_guarded_products<float>(product.losses.at(0), [](float z) { return 0.5f * std::fabs(std::sin(z)); });
  check_guarded_products<double>(product.losses.at(0), [](double z) { return 0.5 * std::fabs(std::sin(z)); });
  // CSE-Autoloss-A's weights, as the kernels compile it (simplified).
  const Loss cse = simplify(example("cse_autoloss_a.loss", "cse_autoloss_a_cls"));
  const std::string ir = llvm_codegen::emit_ir(forward_kernel(cse), DType::F32, false);
  EXPECT_NE(ir.find("\nfactor:"), std::string::npos) << ir;
}
// Which products are guarded. exp(z) is: the DSL's exp stops at e^88, so
// it is finite; so is 0.5 |sin z|, a product of factors that are never
// negative and never -0. Not where the factor can be negative (sin z: y *
// sin z is -0 for y = +0 and sin z < 0), overflow (z * z * z, up to 1e45
// for |z| <= 1e15, in float), be -0 as far as the code generator knows
// (max(sin z, 0) is never negative, but max(-0, 0) may be -0), divide, or
// calls no library routine (y * (1 + z * z): cheaper than the test).
TEST(LlvmKernel, ProductsGuardOnlyFactorsThatSkippingCannotChange) {
  struct Case {
    const char* weights;
    bool f32, f64;  // guarded
  };
  for (const Case& c : {Case{"y * exp(z)", true, true}, Case{"y * (1 + sin(z * z * z))", false, true},
                        Case{"y * (0.5 * abs(sin(z)))", true, true}, Case{"y * sin(z)", false, false},
                        Case{"y * (0.5 * max(sin(z), 0))", false, false},
                        Case{"y * (1 + sin(z) / (1 + z * z))", false, false}, Case{"y * (1 + z * z)", false, false}})
    for (DType dtype : {DType::F32, DType::F64}) {
      const Module module = load_module(SourceFile::from_text(
          "<test>", std::string("loss w(pred x: real[C], y: real[C], z: real[C]) = sum(x * (") + c.weights + "))\n"));
      const Loss& loss = module.losses.at(0);
      const std::string ir = llvm_codegen::emit_ir(gradient_kernel(loss, differentiate(loss)), dtype, false);
      EXPECT_EQ(ir.find("\nfactor:") != std::string::npos, dtype == DType::F32 ? c.f32 : c.f64)
          << c.weights << " " << (dtype == DType::F32 ? "f32" : "f64");
    }
}

// Box losses leave no scalar remainder loop: GIoU runs blocks of one vector,
// a range shorter than a block on a padded copy, a longer one with its last
// block overlapping the one before. Element-wise losses mask their last
// partial vector with AVX-512 and leave it to a scalar loop without (AVX2's
// masked stores are slow). Every length around the vector width agrees with
// the interpreter, and so do ranges that start inside the arrays (the second
// thread's chunk starts at row 256).
template <class T>
void check_row_blocks(const Loss& loss, bool scalar_tail) {
  const DType dtype = std::is_same_v<T, float> ? DType::F32 : DType::F64;
  const std::string ir = llvm_codegen::emit_ir(gradient_kernel(loss, differentiate(loss)), dtype, true);
  EXPECT_NE(ir.find(vector_type(dtype)), std::string::npos) << ir;
  EXPECT_EQ(ir.find("middle.block") != std::string::npos, scalar_tail) << ir;
  EXPECT_EQ(ir.find("llvm.masked.store") != std::string::npos, !scalar_tail && !loss.inputs[0].type.is_box()) << ir;
  Rng rng(43);
  CompiledLoss one_thread = CompiledLoss::compile(loss, options_for<T>(true));
  for (size_t rows = 0; rows <= 35; ++rows)
    EXPECT_TRUE(matches_interpreter<T>(one_thread, random_batch(loss, rows, rng), loss.name + " N=" + std::to_string(rows)));
  LlvmOptions split = options_for<T>(true, 2);
  split.min_rows_per_thread = 1;
  CompiledLoss two_threads = CompiledLoss::compile(loss, split);
  for (size_t rows : {size_t(257), size_t(263), size_t(271), size_t(273), size_t(290)})
    EXPECT_TRUE(matches_interpreter<T>(two_threads, random_batch(loss, rows, rng), loss.name + " N=" + std::to_string(rows)));
}
TEST(LlvmKernel, RowsRunInWholeVectors) {
  const bool avx512 = llvm_codegen::vector_lanes(DType::F32) == 16;
  const Loss focal = example("focal.loss", "sigmoid_focal"), giou = example("giou.loss", "giou");
  check_row_blocks<float>(focal, !avx512);
  check_row_blocks<double>(focal, !avx512);
  check_row_blocks<float>(giou, false);
  check_row_blocks<double>(giou, false);
}

// Rows of boxes are vector code as generated, a block of rows per vector,
// the boxes transposed by shuffles of whole vectors (compiler/box_lanes.hpp):
// no interleaved loads of 4 vectors' width. Reals read or written beside the
// boxes (a weight, the loss, a real's gradient) follow the boxes' order of
// rows in the lanes; the vector math calls are libmvec's.
TEST(LlvmKernel, BoxRowsAreVectorCodeOfTransposedBlocks) {
  const Module module = load_module(SourceFile::from_text("<test>", R"(
loss mixed(pred P: box, G: box, pred s: real, w: real) {
  let shape = log(1 + area(P) / (area(G) + 1)) + P.x1 * G.y2 - P.y1 / (2 + G.x2 * G.x2)
  w * (1 - iou(P, G)) + exp(-s * s) * shape + s * w
}
)"));
  const Loss& loss = module.losses.at(0);
  const Kernel kernel = gradient_kernel(loss, differentiate(loss));
  for (DType dtype : {DType::F32, DType::F64}) {
    const int64_t lanes = llvm_codegen::vector_lanes(dtype);
    const std::string element = dtype == DType::F32 ? " x float>" : " x double>";
    const std::string generated = llvm_codegen::emit_ir(kernel, dtype, false);
    EXPECT_NE(generated.find("<" + std::to_string(lanes) + element), std::string::npos) << generated;
    const std::string optimized = llvm_codegen::emit_ir(kernel, dtype, true);
    EXPECT_EQ(optimized.find("<" + std::to_string(4 * lanes) + element), std::string::npos) << optimized;
    EXPECT_EQ(optimized.find("<" + std::to_string(2 * lanes) + element), std::string::npos) << optimized;
  }
  const std::string assembly = llvm_codegen::emit_assembly(kernel, DType::F32);
  const std::string mvec = llvm_codegen::vector_lanes(DType::F32) == 16 ? "_ZGVeN16v_" : "_ZGVdN8v_";
  EXPECT_NE(assembly.find(mvec + "expf"), std::string::npos) << assembly;
  EXPECT_NE(assembly.find(mvec + "logf"), std::string::npos) << assembly;
  check_row_blocks<float>(loss, false);
  check_row_blocks<double>(loss, false);
}

// evaluate_into runs the kernel on the caller's memory: the same bits as
// evaluate, into buffers it does not allocate (here in the middle of larger
// ones, whose other values it must leave alone); the inputs are checked as
// evaluate checks its arrays.
template <class T>
void check_evaluate_into(const Loss& loss) {
  Rng rng(47);
  const Batch<T> batch = as<T>(random_batch(loss, 301, rng));
  LlvmOptions options = options_for<T>(true, 2);
  options.min_rows_per_thread = 1;
  const CompiledLoss compiled = CompiledLoss::compile(loss, options);
  EvalOptions eval;
  eval.gradients = true;
  const Evaluation<T> expected = compiled.evaluate<T>(std::span<const Array<T>>(batch), eval);

  const std::vector<ArrayView<T>> views = views_of(std::span<const Array<T>>(batch));
  const T guard = T(-12345);
  std::vector<T> loss_out(batch[0].rows + 2, guard);
  std::vector<std::vector<T>> grad_out;
  std::vector<T*> grads;
  for (size_t index : loss.pred_inputs()) grad_out.emplace_back(batch[index].data.size() + 2, guard);
  for (std::vector<T>& g : grad_out) grads.push_back(g.data() + 1);
  compiled.evaluate_into<T>(views, eval, loss_out.data() + 1, grads);

  EXPECT_EQ(loss_out.front(), guard);
  EXPECT_EQ(loss_out.back(), guard);
  EXPECT_EQ(std::vector<T>(loss_out.begin() + 1, loss_out.end() - 1), expected.loss);
  ASSERT_EQ(grad_out.size(), expected.grads.size());
  for (size_t g = 0; g < grad_out.size(); ++g) {
    EXPECT_EQ(grad_out[g].front(), guard);
    EXPECT_EQ(grad_out[g].back(), guard);
    EXPECT_EQ(std::vector<T>(grad_out[g].begin() + 1, grad_out[g].end() - 1), expected.grads[g].data) << g;
  }

  std::vector<ArrayView<T>> short_view = views;
  short_view[0].size -= 1;  // rows x width values, less one
  EXPECT_THROW(compiled.evaluate_into<T>(short_view, eval, loss_out.data(), grads), InputError);
  EXPECT_THROW(compiled.evaluate_into<T>(views, eval, loss_out.data(), std::span<T* const>{}), std::invalid_argument);
}
TEST(LlvmEngine, EvaluateIntoTheCallersBuffers) {
  for (const Loss& loss : {example("focal.loss", "sigmoid_focal"), example("giou.loss", "giou"),
                           example("cross_entropy.loss", "cross_entropy")}) {
    SCOPED_TRACE(loss.name);
    check_evaluate_into<float>(loss);
    check_evaluate_into<double>(loss);
  }
}

// A param in an exponent gets a second copy of the rows with the param
// constant: taken at the defaults, the general one for any other value.
TEST(LlvmKernel, ExponentParamsSpecialiseToTheirDefaults) {
  const Module module = load_module(SourceFile::from_text(
      "<test>", "loss focal_like(pred x: real, y: real) {\n  param a = 0.25\n  param g = 3\n"
                "  let p = sigmoid(x)\n  a * (1 - p)^g * y + (p + 1)^(g - 1) * (1 - y)\n}\n"));
  const Loss& loss = module.losses.at(0);
  const std::string ir = llvm_codegen::emit_ir(gradient_kernel(loss, differentiate(loss)), DType::F32, false);
  EXPECT_NE(ir.find("rows.defaults"), std::string::npos) << ir;
  EXPECT_NE(ir.find("rows.general"), std::string::npos) << ir;
  CompiledLoss compiled = CompiledLoss::compile(loss, options_for<float>(true));
  Rng rng(41);
  const Batch<float> batch = to_float(random_batch(loss, 45, rng));
  for (const std::vector<double>& params : {std::vector<double>{}, {0.5, 3.0}, {0.25, 2.5}, {0.25, -1.0}}) {
    EvalOptions eval;
    eval.gradients = true;
    eval.params = params;
    EXPECT_TRUE(same_evaluation(compiled.evaluate<float>(batch, eval),
                                interpret<float>(loss, std::span<const Array<float>>(batch), eval), "focal_like"))
        << (params.empty() ? "defaults" : "g = " + std::to_string(params[1]));
  }
}

// ---- the command line --------------------------------------------------------------

struct CliResult {
  int status = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs lossforge through the shell; arguments are single-quoted.
// A file name in the temp dir that no other test process uses: ctest runs the
// cases of this executable in parallel processes.
std::string private_temp(const std::string& name) {
  return ::testing::TempDir() + "llvm_test_" + std::to_string(::getpid()) + "_" + name;
}

// Runs the CLI with its kernel cache in `cache_dir`.
CliResult run_cli(const std::vector<std::string>& args, const std::string& cache_dir = private_temp("cache")) {
  std::string command = "LOSSFORGE_CACHE_DIR='" + cache_dir + "' '" LOSSFORGE_CLI "'";
  for (const std::string& a : args) command += " '" + a + "'";
  const std::string out = private_temp("cli.out"), err = private_temp("cli.err");
  command += " > '" + out + "' 2> '" + err + "'";
  const int raw = std::system(command.c_str());
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, slurp(out), slurp(err)};
}

// Every number in the text, in order.
std::vector<double> numbers_in(const std::string& text) {
  std::vector<double> out;
  const char* p = text.c_str();
  while (*p) {
    char* end = nullptr;
    const double v = std::strtod(p, &end);
    if (end != p && (std::isdigit(static_cast<unsigned char>(*p)) || *p == '-' || *p == '.')) {
      out.push_back(v);
      p = end;
    } else {
      ++p;
    }
  }
  return out;
}

TEST(LlvmCli, EmitPrintsTheKernel) {
  const std::string focal = std::string(LOSSFORGE_SOURCE_DIR) + "/examples/losses/focal.loss";
  CliResult run = run_cli({"emit", "--target", "llvm", focal, "--dtype", "f64"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_NE(run.out.find("define void @lossforge_kernel("), std::string::npos);
  EXPECT_NE(run.out.find("double"), std::string::npos);
  run = run_cli({"emit", "Neg(Log(Sig(X)))", "--pset", "binary_cls", "--optimized"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_NE(run.out.find("x float>"), std::string::npos) << "the optimised row loop is vectorised";
  // The source generators need no toolkit: cuda and cpp are always there.
  run = run_cli({"emit", "--target", "cuda", focal});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_NE(run.out.find("__global__"), std::string::npos);
  run = run_cli({"emit", "--target", "cpp", focal});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_NE(run.out.find("extern \"C\" double lossforge_sigmoid_focal_f32("), std::string::npos);
  run = run_cli({"emit", "--target", "tpu", focal});
  EXPECT_EQ(run.status, 2);
}

// emit prints the code every back end runs: the loss simplified, so that
// CSE-Autoloss-A's log(softmax(X)) is log_softmax(X), one log per row, not
// one per class. --as-written skips the simplifier.
TEST(LlvmCli, EmitPrintsTheSimplifiedLossUnlessAsWritten) {
  const std::string file = std::string(LOSSFORGE_SOURCE_DIR) + "/examples/losses/cse_autoloss_a.loss";
  // llvm: the non-finite fallback loop of dot(w, log_softmax(X)), which
  // folds the row in; cpp: its column function.
  for (const auto& [target, marker] :
       {std::pair{"llvm", "dot_log_softmax_terms:"}, std::pair{"cpp", "gen::log_softmax_column("}}) {
    SCOPED_TRACE(target);
    CliResult simplified = run_cli({"emit", "--target", target, file, "--loss", "cse_autoloss_a_cls"});
    ASSERT_EQ(simplified.status, 0) << simplified.err;
    CliResult as_written = run_cli({"emit", "--target", target, file, "--loss", "cse_autoloss_a_cls", "--as-written"});
    ASSERT_EQ(as_written.status, 0) << as_written.err;
    EXPECT_NE(simplified.out.find(marker), std::string::npos);
    EXPECT_EQ(as_written.out.find(marker), std::string::npos);
  }
}

TEST(LlvmCli, EvalWithTheLlvmBackendAgreesWithTheInterpreter) {
  const std::string inputs = private_temp("inputs.json");
  std::ofstream(inputs) << R"({"p": [[0, 0, 2, 2], [1, 1, 3, 4], [5, 5, 6, 6], [0, 0, 1, 1], [0, 0, 2, 2]],
                               "g": [[1, 1, 3, 3], [1, 1, 3, 4], [0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 2, 2]]})";
  const std::string giou = std::string(LOSSFORGE_SOURCE_DIR) + "/examples/losses/giou.loss";
  for (const std::string dtype : {"f32", "f64"}) {
    const CliResult interp = run_cli({"eval", giou, "--inputs", inputs, "--grad", "--json", "--dtype", dtype});
    const CliResult llvm =
        run_cli({"eval", giou, "--inputs", inputs, "--grad", "--json", "--dtype", dtype, "--backend", "llvm"});
    ASSERT_EQ(interp.status, 0) << interp.err;
    ASSERT_EQ(llvm.status, 0) << llvm.err;
    const std::vector<double> a = numbers_in(llvm.out), b = numbers_in(interp.out);
    EXPECT_TRUE(agree(a, b, dtype == "f32" ? 1e-6 : 1e-14, "eval --json " + dtype)) << llvm.out << interp.out;
    EXPECT_EQ(a.size(), 5u * 5u);  // 5 losses and 5 x 4 gradient values
  }
}

TEST(LlvmCli, EvalKeepsKernelsInTheCache) {
  const std::string cache = private_temp("cache_reuse");
  std::filesystem::remove_all(cache);
  const std::string inputs = private_temp("cache_inputs.json");
  std::ofstream(inputs) << R"({"x": [0.5, -2], "y": [1, 0]})";
  const std::string focal = std::string(LOSSFORGE_SOURCE_DIR) + "/examples/losses/focal.loss";
  const std::vector<std::string> args = {"eval", focal, "--inputs", inputs, "--grad", "--json", "--backend", "llvm"};
  const CliResult first = run_cli(args, cache);
  ASSERT_EQ(first.status, 0) << first.err;
  size_t entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(cache)) entries += entry.path().extension() == ".lfk";
  EXPECT_EQ(entries, 1u) << "the compiled kernel is stored";
  const CliResult second = run_cli(args, cache);  // loads the object code instead of compiling
  EXPECT_EQ(second.status, 0) << second.err;
  EXPECT_EQ(second.out, first.out);
  EXPECT_EQ(second.err, "");
}

}  // namespace
}  // namespace lossforge::testing

#else

TEST(Llvm, Skipped) { GTEST_SKIP() << "lossforge was built without LLVM 16 (LOSSFORGE_HAVE_LLVM is off)"; }

#endif
