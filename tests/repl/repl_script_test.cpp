// Scripted `lossforge repl` sessions through standard input and -e: results,
// errors with their diagnostics, and recovery after them.
#include <gtest/gtest.h>

#if LOSSFORGE_HAVE_CAIRO
#include <cairo.h>
#endif

#include <cmath>
#include <cstdint>
#include <regex>
#include <string>

#include "cli/numbers.hpp"
#include "compiler/frontend.hpp"
#include "compiler/simplify.hpp"
#include "tests/repl/repl_support.hpp"
#include "runtime/interpreter.hpp"
#include "search/convergence.hpp"

namespace lossforge::repl_test {
namespace {

using cli::shortest;

const Preset& binary_cls() { return *find_preset("binary_cls"); }

Loss formula(const std::string& text, const std::string& name) {
  return load_formula(SourceFile::from_text("<test>", text), binary_cls(), name);
}

// The loss and the gradient of its first pred input at one row, in f64.
Evaluation<double> evaluate_row(const Loss& loss, const std::vector<std::vector<double>>& row) {
  std::vector<Array<double>> inputs;
  for (const std::vector<double>& values : row) inputs.emplace_back(1, values.size(), values);
  EvalOptions options;
  options.gradients = true;
  return interpret<double>(loss, inputs, options);
}

TEST(ReplScript, EvaluatesFormulasAndDslLossesWithTheirGradients) {
  const ReplRun run = run_repl(
      ":pset binary_cls\n"
      "Neg(Log(Sig(X)))\n"
      ":eval f1 X=0.5 Q=1 PY=1 NY=0\n"
      "loss focal(pred x: real, y: real) {\n"
      "  param gamma = 2\n"
      "  let p = sigmoid(x)\n"
      "  let pt = p * y + (1 - p) * (1 - y)\n"
      "  -(1 - pt)^gamma * log(pt)\n"
      "}\n"
      ":eval focal x=0.3 y=1 gamma=1.5\n"
      ":eval X=[0,1,2] Q=1 PY=1 NY=0\n");  // the latest loss: focal, but X is not its input
  const Evaluation<double> f1 = evaluate_row(formula("Neg(Log(Sig(X)))", "f1"), {{0.5}, {1}, {1}, {0}});
  EXPECT_NE(run.out.find("f1 = " + shortest(f1.loss[0]) + "\n  d/dX = " + shortest(f1.grads[0].data[0]) + "\n"),
            std::string::npos)
      << run;
  const Module focal = load_module(SourceFile::from_text("<test>",
                                                         "loss focal(pred x: real, y: real) {\n"
                                                         "  param gamma = 2\n"
                                                         "  let p = sigmoid(x)\n"
                                                         "  let pt = p * y + (1 - p) * (1 - y)\n"
                                                         "  -(1 - pt)^gamma * log(pt)\n"
                                                         "}\n"));
  std::vector<Array<double>> inputs = {Array<double>(1, 1, {0.3}), Array<double>(1, 1, {1})};
  EvalOptions options;
  options.gradients = true;
  options.params = {1.5};
  const Evaluation<double> expected = interpret<double>(focal.losses[0], inputs, options);
  EXPECT_NE(run.out.find("focal = " + shortest(expected.loss[0]) + "\n  d/dx = " + shortest(expected.grads[0].data[0])),
            std::string::npos)
      << run;
  EXPECT_NE(run.err.find("'focal' has no input or param named"), std::string::npos) << run;
  EXPECT_NE(run.err.find("(inputs: x: real, y: real; params: gamma)"), std::string::npos) << run;
  EXPECT_EQ(run.status, 1) << "a failed line makes a non-interactive session fail";
}

TEST(ReplScript, RowsVectorsAndBoxes) {
  const ReplRun run = run_repl(
      ":pset binary_cls\n"
      "g = Neg(Mul(Q, Log(Sig(X))))\n"
      ":eval g X=[-1,0,2] Q=0.5 PY=1 NY=0\n"
      "loss ce(pred x: real[C], y: real[C]) = -dot(y, log(softmax(x)))\n"
      ":eval ce x=[1,2,3] y=[0,0,1]\n"
      "loss giou(pred p: box, g: box) = 1 - iou(p, g)\n"
      ":eval giou p=[0,0,10,10] g=[2,2,12,12]\n");
  ASSERT_EQ(run.status, 0) << run;
  // Three rows: a table with one line per row.
  const Loss g = formula("Neg(Mul(Q, Log(Sig(X))))", "g");
  for (double x : {-1.0, 0.0, 2.0}) {
    const Evaluation<double> e = evaluate_row(g, {{x}, {0.5}, {1}, {0}});
    EXPECT_NE(run.out.find(shortest(e.loss[0])), std::string::npos) << x << "\n" << run;
    EXPECT_NE(run.out.find(shortest(e.grads[0].data[0])), std::string::npos) << x << "\n" << run;
  }
  EXPECT_NE(run.out.find("row"), std::string::npos);
  const Module m = load_module(SourceFile::from_text(
      "<test>", "loss ce(pred x: real[C], y: real[C]) = -dot(y, log(softmax(x)))\nloss giou(pred p: box, g: box) = 1 - iou(p, g)\n"));
  const Evaluation<double> ce = evaluate_row(m.losses[0], {{1, 2, 3}, {0, 0, 1}});
  EXPECT_NE(run.out.find("ce = " + shortest(ce.loss[0]) + "\n  d/dx = [" + shortest(ce.grads[0].data[0]) + ", "),
            std::string::npos)
      << run;
  const Evaluation<double> giou = evaluate_row(m.losses[1], {{0, 0, 10, 10}, {2, 2, 12, 12}});
  std::string box_grad = "[";
  for (int i = 0; i < 4; ++i) box_grad += (i ? ", " : "") + shortest(giou.grads[0].data[size_t(i)]);
  EXPECT_NE(run.out.find("giou = " + shortest(giou.loss[0]) + "\n  d/dp = " + box_grad + "]"), std::string::npos) << run;
}

TEST(ReplScript, ErrorsPrintDiagnosticsAndTheSessionGoesOn) {
  const ReplRun run = run_repl(
      "Neg(Log(Sig(X)))\n"              // line 1: no preset yet
      ":pset binary_cls\n"              // 2
      "loss bad(pred x: real) {\n"      // 3
      "  let p = sigmod(x)\n"           // 4: the typo
      "  p\n"                           // 5
      "}\n"                             // 6
      ":eval nothere x=1\n"             // 7
      ":frobnicate\n"                   // 8
      "loss ok(pred x: real) = x * x\n" // 9
      ":eval ok x=[1, 2\n"              // 10: continues on the next line
      ", 3]\n"                          // 11
      ":eval ok x=[1,oops]\n");         // 12
  EXPECT_NE(run.err.find("a bare formula needs a preset"), std::string::npos) << run;
  // The same diagnostic as `lossforge check`: file:line:col, the line, a caret.
  EXPECT_NE(run.err.find("<repl>:4:11: error: unknown function 'sigmod'; did you mean 'sigmoid'?"), std::string::npos)
      << run;
  EXPECT_NE(run.err.find("  let p = sigmod(x)"), std::string::npos) << run;
  EXPECT_NE(run.err.find("^~~~~~"), std::string::npos) << run;
  EXPECT_NE(run.err.find("no loss named 'nothere'"), std::string::npos) << run;
  EXPECT_NE(run.err.find("unknown command :frobnicate"), std::string::npos) << run;
  EXPECT_NE(run.err.find("'oops' is not a finite number"), std::string::npos) << run;
  // After all that, the good loss still evaluates: three rows of x * x.
  EXPECT_TRUE(std::regex_search(run.out, std::regex("\n +2 +9 +6\n"))) << run;
  EXPECT_EQ(run.status, 1);
  EXPECT_EQ(run.out.find("error"), std::string::npos) << "errors go to standard error";
}

TEST(ReplScript, RedefinitionReplacesAndListShowsTheSession) {
  const ReplRun run = run_repl(
      "loss f(pred x: real) = x * 2\n"
      "loss f(pred x: real, y: real) = x * y\n"
      ":pset reg\n"
      "Add(1, Neg(Div(I, U)))\n"
      ":list\n"
      ":show f\n"
      ":eval f x=3 y=4\n");
  ASSERT_EQ(run.status, 0) << run;
  // :list: the replaced f once, then the formula.
  EXPECT_TRUE(run.out.starts_with("f(pred x: real, y: real)\nf1(pred P: box, G: box)  = Add(1, Neg(Div(I, U)))  [reg]\n"))
      << run;
  EXPECT_NE(run.out.find("loss f(pred x: real, y: real) = x * y\n"), std::string::npos) << run;
  EXPECT_NE(run.out.find("f = 12\n  d/dx = 4\n"), std::string::npos) << run;
}

TEST(ReplScript, GradSimplifyAndEmit) {
  const ReplRun run = run_repl(
      ":pset binary_cls\n"
      "Neg(Log(Sig(X)))\n"
      ":grad\n"
      ":simplify\n"
      "loss sq(pred x: real, y: real) = (x - y) ^ 2\n"
      ":grad sq\n"
      ":emit f1 llvm\n"
      ":emit f1 cuda\n"
      ":emit f1 cpp\n"
      ":emit f1 fortran\n");
  const Loss f1 = formula("Neg(Log(Sig(X)))", "f1");
  EXPECT_NE(run.out.find("df1/dX = "), std::string::npos) << run;
  const Loss simplified = simplify(f1);
  EXPECT_NE(run.out.find("DAG nodes " + std::to_string(dag_size(f1.body)) + " -> " +
                         std::to_string(dag_size(simplified.body))),
            std::string::npos)
      << run;
  EXPECT_NE(run.out.find("loss d_sq_dx(pred x: real, y: real)"), std::string::npos) << run;
#if LOSSFORGE_HAVE_LLVM
  EXPECT_NE(run.out.find("define void @lossforge_kernel"), std::string::npos) << run;
#endif
  EXPECT_NE(run.out.find("__global__"), std::string::npos) << run;
  EXPECT_NE(run.out.find("extern \"C\" double"), std::string::npos) << run;
  EXPECT_NE(run.err.find("usage: :emit [LOSS] llvm|cuda|cpp"), std::string::npos) << run;
}

TEST(ReplScript, CheckPrintsOneLinePerConvergenceProperty) {
  const std::string text = "Neg(Log(Sig(X)))";
  const ReplRun run = run_repl(":pset binary_cls\n" + text + "\n:check\n");
  const ConvergenceReport report = verify_convergence(formula(text, "f1"), binary_cls());
  ASSERT_FALSE(report.checks.empty());
  for (const PropertyCheck& check : report.checks)
    EXPECT_NE(run.out.find(std::string(check.passed ? "  ok    " : "  FAIL  ") + check.property), std::string::npos)
        << check.property << "\n" << run;
}

TEST(ReplScript, HelpListsEveryCommand) {
  const ReplRun run = run_repl(":help\n:help plot\n:help nonsense\n");
  for (const char* command : {":pset", ":list", ":show", ":eval", ":grad", ":simplify", ":emit", ":time", ":check",
                              ":plot", ":load", ":save", ":help", ":quit"})
    EXPECT_NE(run.out.find("\n  " + std::string(command)), std::string::npos) << command << "\n" << run;
  EXPECT_NE(run.out.find(":plot LOSS[,LOSS...] NAME in [LO, HI]"), std::string::npos) << run;
  EXPECT_NE(run.out.find("--png FILE writes a chart"), std::string::npos) << run;
  EXPECT_NE(run.err.find("no command 'nonsense'"), std::string::npos) << run;
}

TEST(ReplScript, TimeNamesEveryBackEnd) {
  const ReplRun run = run_repl("loss sq(pred x: real, y: real) = (x - y) ^ 2\n:time sq rows=2000\n");
  ASSERT_EQ(run.status, 0) << run;
  EXPECT_NE(run.out.find("2000 rows"), std::string::npos) << run;
  EXPECT_NE(run.out.find("interp  compile       -    eval "), std::string::npos) << run;
#if LOSSFORGE_HAVE_LLVM
  EXPECT_NE(run.out.find("llvm    compile "), std::string::npos) << run;
  EXPECT_NE(run.out.find(" ms    eval "), std::string::npos) << run;
#endif
}

TEST(ReplScript, SaveThenLoadGivesTheSameLosses) {
  TempDir dir;
  const std::string file = (dir.path() / "session.loss").string();
  const std::string evals = ":eval f1 X=0.3 Q=0.8 PY=1 NY=0\n:eval sq x=2 y=0.5\n";
  const ReplRun first = run_repl(":pset binary_cls\nNeg(Mul(Q, Log(Sig(X))))\nloss sq(pred x: real, y: real) = (x - y) ^ 2\n" +
                             evals + ":save " + file + "\n");
  ASSERT_EQ(first.status, 0) << first;
  const ReplRun second = run_repl(":load " + file + "\n" + evals);
  ASSERT_EQ(second.status, 0) << second;
  EXPECT_NE(second.out.find("loaded 2 losses: f1, sq"), std::string::npos) << second;
  const std::string results = first.out.substr(0, first.out.find("saved"));
  EXPECT_NE(second.out.find(results), std::string::npos) << first << second;
}

TEST(ReplScript, TerminalPlotFitsTheWidth) {
  const ReplRun run = run_repl(":pset binary_cls\nNeg(Log(Sig(X)))\n:plot f1 X in [-6, 6] Q=1 PY=1 NY=0\n", {}, 64);
  ASSERT_EQ(run.status, 0) << run;
  EXPECT_NE(run.out.find("⠉ f1  • df1/dX"), std::string::npos) << run;
  EXPECT_EQ(run.out.find("\x1b["), std::string::npos) << "no colour when not on a terminal";
  std::istringstream lines(run.out);
  size_t braille_lines = 0;
  for (std::string line; std::getline(lines, line);) {
    size_t cells = 0;
    for (unsigned char c : line) cells += (c & 0xC0) != 0x80;
    EXPECT_LE(cells, 64u) << line;
    braille_lines += line.find("\xe2\xa0") != std::string::npos || line.find("\xe2\xa1") != std::string::npos ||
                     line.find("\xe2\xa2") != std::string::npos || line.find("\xe2\xa3") != std::string::npos;
  }
  EXPECT_GE(braille_lines, 8u) << run;
  EXPECT_NE(run.out.find("-6"), std::string::npos);
}

#if LOSSFORGE_HAVE_CAIRO
TEST(ReplScript, PngPlotOfTwoLossesIsAValidChart) {
  TempDir dir;
  const std::filesystem::path png = dir.path() / "plot.png";
  const ReplRun run = run_repl("", {"-e", ":pset binary_cls", "-e", "Neg(Log(Sig(X)))", "-e", "g = Neg(Mul(Q, Log(Sig(X))))",
                                "-e", ":plot f1,g X in [-6, 6] Q=0.5 PY=1 NY=0 --png " + png.string() + " --size 640x400"});
  ASSERT_EQ(run.status, 0) << run;
  EXPECT_EQ(run.out, "wrote " + png.string() + " (640x400)\n");
  const std::string bytes = read_file(png);
  ASSERT_GT(bytes.size(), 33u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(bytes.substr(12, 4), "IHDR");
  auto be32 = [&](size_t at) {
    return (uint32_t(uint8_t(bytes[at])) << 24) | (uint32_t(uint8_t(bytes[at + 1])) << 16) |
           (uint32_t(uint8_t(bytes[at + 2])) << 8) | uint32_t(uint8_t(bytes[at + 3]));
  };
  EXPECT_EQ(be32(16), 640u);
  EXPECT_EQ(be32(20), 400u);
  cairo_surface_t* image = cairo_image_surface_create_from_png(png.c_str());
  ASSERT_EQ(cairo_surface_status(image), CAIRO_STATUS_SUCCESS);
  const unsigned char* data = cairo_image_surface_get_data(image);
  const int stride = cairo_image_surface_get_stride(image);
  // Coloured (not white, not grey) pixels in the plot area: the curves.
  int coloured = 0;
  for (int y = 60; y < 340; ++y)
    for (int x = 80; x < 600; ++x) {
      const uint32_t p = *reinterpret_cast<const uint32_t*>(data + y * stride + x * 4);
      const int r = (p >> 16) & 0xFF, g = (p >> 8) & 0xFF, b = p & 0xFF;
      coloured += std::max({r, g, b}) - std::min({r, g, b}) > 60;
    }
  cairo_surface_destroy(image);
  EXPECT_GT(coloured, 500);
}

#endif  // LOSSFORGE_HAVE_CAIRO

}  // namespace
}  // namespace lossforge::repl_test
