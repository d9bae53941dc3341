// :eval, :time and :check: a loss's values, speed, and convergence properties.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <ostream>

#include "cli/numbers.hpp"
#include "cli/repl/commands.hpp"
#include "cli/repl/literals.hpp"
#include "cli/table.hpp"
#include "compiler/diagnostics.hpp"
#include "compiler/simplify.hpp"
#include "runtime/benchmark_inputs.hpp"
#include "runtime/interpreter.hpp"
#include "search/convergence.hpp"
#if LOSSFORGE_HAVE_LLVM
#include "runtime/llvm_engine.hpp"
#endif

namespace lossforge::repl {
namespace {

using cli::shortest;

std::string row_text(const double* values, size_t width, bool as_array) {
  if (!as_array) return shortest(values[0]);
  std::string text = "[";
  for (size_t i = 0; i < width; ++i) text += (i ? ", " : "") + shortest(values[i]);
  return text + "]";
}

}  // namespace

void command_eval(Session& session, const Words& words) {
  bool used = false;
  const Definition& d = loss_argument(session, words, used);
  const Loss& loss = d.loss;
  Assignments values;
  for (size_t i = used ? 1 : 0; i < words.size(); ++i) add_assignment(words[i], values);
  const LossArguments args = loss_arguments(loss, values);
  EvalOptions options;
  options.gradients = true;
  options.params = args.params;
  const Evaluation<double> result = interpret<double>(loss, args.inputs, options);
  const std::vector<size_t> preds = loss.pred_inputs();
  std::ostream& out = session.out();
  if (args.rows == 1) {
    out << loss.name << " = " << shortest(result.loss[0]) << '\n';
    for (size_t g = 0; g < result.grads.size(); ++g) {
      const LossInput& input = loss.inputs[preds[g]];
      out << "  d/d" << input.name << " = " << row_text(result.grads[g].row(0), result.grads[g].width, !input.type.is_real())
          << '\n';
    }
    return;
  }
  cli::TableRow header = {"row", loss.name};
  for (size_t g = 0; g < result.grads.size(); ++g) header.push_back("d/d" + loss.inputs[preds[g]].name);
  std::vector<cli::TableRow> rows;
  for (size_t r = 0; r < args.rows; ++r) {
    cli::TableRow row = {std::to_string(r), shortest(result.loss[r])};
    for (size_t g = 0; g < result.grads.size(); ++g)
      row.push_back(row_text(result.grads[g].row(r), result.grads[g].width, !loss.inputs[preds[g]].type.is_real()));
    rows.push_back(std::move(row));
  }
  out << cli::render_table(header, rows);
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// The best time of several runs of `run`, at least 3 and until ~0.2 s have passed.
template <class F>
double best_time(F&& run) {
  double best = INFINITY;
  const auto start = Clock::now();
  for (int i = 0; i < 100 && (i < 3 || seconds_since(start) < 0.2); ++i) {
    check_interrupt();
    const auto t0 = Clock::now();
    run();
    best = std::min(best, seconds_since(t0));
  }
  return best;
}

std::string per_element(double seconds, size_t rows) {
  const double ns = seconds * 1e9 / double(rows);
  char text[64];
  std::snprintf(text, sizeof text, ns < 10 ? "%.2f ns/row" : ns < 1000 ? "%.1f ns/row" : "%.0f ns/row", ns);
  return text;
}

[[maybe_unused]] std::string milliseconds(double seconds) {  // unused in a build without LLVM
  char text[64];
  std::snprintf(text, sizeof text, "%.1f ms", seconds * 1e3);
  return text;
}

}  // namespace

void command_time(Session& session, const Words& words) {
  bool used = false;
  const Definition& d = loss_argument(session, words, used);
  size_t rows = 100000;
  for (size_t i = used ? 1 : 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    const auto n = w.starts_with("rows=") ? cli::parse_finite(w.substr(5)) : std::nullopt;
    if (!n || *n < 1 || *n > 1e8 || *n != std::floor(*n))
      throw InputError("usage: :time [LOSS] [rows=N] with N a whole number from 1 to 1e8, not " + quote_token(w));
    rows = static_cast<size_t>(*n);
  }
  const std::vector<Array<float>> inputs = benchmark_inputs<float>(d.loss, rows, 8, 42);
  EvalOptions options;
  options.gradients = true;
  std::ostream& out = session.out();
  out << d.loss.name << ": loss and gradients, f32, " << rows << " rows of random inputs, one thread\n";
  const double interp = best_time([&] { interpret<float>(d.loss, inputs, options); });
  out << "  interp  compile       -    eval " << per_element(interp, rows) << '\n';
#if LOSSFORGE_HAVE_LLVM
  LlvmOptions llvm;
  llvm.threads = 1;
  const auto t0 = Clock::now();
  // Simplified, as the engines compile it (eval --backend llvm).
  const CompiledLoss compiled = CompiledLoss::compile(simplify(d.loss), llvm);
  const double compile = seconds_since(t0);
  const double jit = best_time([&] { compiled.evaluate<float>(inputs, options); });
  char compile_text[32];
  std::snprintf(compile_text, sizeof compile_text, "%8s", milliseconds(compile).c_str());
  out << "  llvm    compile " << compile_text << "    eval " << per_element(jit, rows) << '\n';
#else
  out << "  llvm    not built into this lossforge (it was built without LLVM 16)\n";
#endif
}

void command_check(Session& session, const Words& words) {
  bool used = false;
  const Definition& d = loss_argument(session, words, used);
  if (words.size() > (used ? 1u : 0u)) throw InputError("usage: :check [LOSS]");
  const Preset* preset = !d.loss.preset.empty() ? find_preset(d.loss.preset) : matching_preset(d.loss);
  if (!preset)
    throw InputError("'" + d.loss.name + "' (" + input_list(d.loss) +
                     ") has no preset's signature, so there is nothing to simulate it on (see :pset for the signatures)");
  const ConvergenceReport report = verify_convergence(d.loss, *preset);
  size_t width = 0;
  for (const PropertyCheck& c : report.checks) width = std::max(width, c.property.size());
  for (const PropertyCheck& c : report.checks)
    session.out() << (c.passed ? "  ok    " : "  FAIL  ") << c.property << std::string(width - c.property.size(), ' ')
                  << "  " << c.detail << '\n';
  session.out() << d.loss.name << (report.passed ? ": all properties hold" : ": fails " + report.first_failure()) << " ("
                << preset->name << ")\n";
}

}  // namespace lossforge::repl
