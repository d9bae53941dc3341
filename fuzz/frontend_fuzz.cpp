// libFuzzer target over the front end and the reference interpreter.
//
// Input: one mode byte, then the text. Mode (byte % 4): 0 a .loss file,
// 1 multi_cls, 2 binary_cls, 3 reg (a bare formula over that preset). Seeds
// spell the mode as an ASCII digit: "0loss f(x: real) = x", "2Neg(Log(Sig(X)))".
//
// Text that fails to parse or check must do so with a lossforge::Error; any
// other exception escapes and libFuzzer reports it. Text that checks must
// satisfy the properties below, or the target traps:
//   * to_text of the module (or the formula's loss) parses back to the same
//     losses: names, inputs, params, and the same body node (Expr equality is
//     node identity in the hash-consed IR);
//   * format_source is idempotent and keeps every body node;
//   * formulas: to_infix and to_deap with the preset's terminal names parse back
//     to the same node (to_deap only where its nesting fits the bracket limit);
//   * interpret<float> and <double> with gradients give one loss per row,
//     gradients shaped like the pred inputs and the same losses as without
//     gradients; rows are independent: each row evaluated alone gives bit for
//     bit what it gave in the batch (batches of 1-3 rows, and now and then one
//     just over the interpreter's chunk size);
//   * no interned node outlives the input (reference counts balance).
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "compiler/error.hpp"
#include "compiler/format.hpp"
#include "compiler/frontend.hpp"
#include "compiler/print.hpp"
#include "runtime/interpreter.hpp"

namespace {

using namespace lossforge;

[[noreturn]] void fail(const char* property, const std::string& detail) {
  std::fprintf(stderr, "frontend_fuzz: property violated: %s\n%s\n", property, detail.c_str());
  std::fflush(stderr);
  __builtin_trap();
}

void require(bool ok, const char* property, const std::string& detail = {}) {
  if (!ok) fail(property, detail);
}

// Deterministic values from the input bytes (splitmix64 over an FNV-1a seed).
class Values {
 public:
  explicit Values(std::span<const uint8_t> bytes) {
    state_ = 0xCBF29CE484222325ull;
    for (uint8_t b : bytes) state_ = (state_ ^ b) * 0x100000001B3ull;
  }
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform(double lo, double hi) { return lo + (hi - lo) * double(next() >> 11) * 0x1p-53; }
  // Mostly ordinary numbers; now and then a value at an edge of some operator.
  double number() {
    static constexpr double kEdges[] = {0.0,    -0.0, 1.0,   -1.0,     1e-30,     -1e-7, 88.5,
                                        -100.0, 1e30, -1e38, INFINITY, -INFINITY, NAN};
    if (next() % 16 == 0) return kEdges[next() % std::size(kEdges)];
    return uniform(-4, 4);
  }

 private:
  uint64_t state_;
};

// Values per row of each input: real 1, box 4, real[N] N, real[C] a small
// width per distinct name. Empty when a fixed width is too large to try.
std::optional<std::vector<size_t>> input_widths(const Loss& loss) {
  std::vector<std::pair<Symbol, size_t>> named;
  std::vector<size_t> widths;
  for (const LossInput& in : loss.inputs) {
    if (in.type.is_real()) {
      widths.push_back(1);
    } else if (in.type.is_box()) {
      widths.push_back(4);
    } else {
      std::string_view text = in.type.width().str();
      size_t fixed = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), fixed);
      if (ec == std::errc() && end == text.data() + text.size()) {
        if (fixed > 16) return std::nullopt;
        widths.push_back(fixed);
        continue;
      }
      size_t width = 0;
      for (const auto& [symbol, w] : named)
        if (symbol == in.type.width()) width = w;
      if (width == 0) {
        width = 3 - named.size() % 3 + named.size() / 3;  // 3, 2, 1, 4, 3, ...
        named.emplace_back(in.type.width(), width);
      }
      widths.push_back(width);
    }
  }
  return widths;
}

bool same_bits(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
}

template <class T>
void check_evaluation(const Loss& loss, const std::vector<Array<double>>& batch, const std::vector<double>& params) {
  std::vector<Array<T>> inputs;
  for (const Array<double>& a : batch)
    inputs.emplace_back(a.rows, a.width, std::vector<T>(a.data.begin(), a.data.end()));
  EvalOptions options;
  options.gradients = true;
  options.params = params;
  const size_t rows = batch.front().rows;
  Evaluation<T> all = interpret<T>(loss, std::span<const Array<T>>(inputs), options);
  std::vector<size_t> preds = loss.pred_inputs();
  require(all.loss.size() == rows, "one loss value per row", loss.name);
  require(all.grads.size() == preds.size(), "one gradient per pred input", loss.name);
  for (size_t k = 0; k < preds.size(); ++k)
    require(all.grads[k].rows == rows && all.grads[k].width == inputs[preds[k]].width &&
                all.grads[k].data.size() == rows * inputs[preds[k]].width,
            "gradient shaped like its input", loss.name);
  // Gradients never change the values.
  EvalOptions forward_only = options;
  forward_only.gradients = false;
  Evaluation<T> values = interpret<T>(loss, std::span<const Array<T>>(inputs), forward_only);
  require(values.grads.empty(), "no gradients unless asked for", loss.name);
  for (size_t r = 0; r < rows; ++r)
    require(same_bits(values.loss[r], all.loss[r]), "the loss does not depend on computing gradients",
            loss.name + " row " + std::to_string(r));
  if (rows == 1) return;
  // Small batches: every row. Large ones: rows on both sides of the interpreter's chunk boundary.
  std::vector<size_t> check_rows;
  if (rows <= 3)
    for (size_t r = 0; r < rows; ++r) check_rows.push_back(r);
  else
    check_rows = {0, 1023, 1024, rows - 1};
  for (size_t r : check_rows) {
    std::vector<Array<T>> one;
    for (const Array<T>& a : inputs) one.emplace_back(1, a.width, std::vector<T>(a.row(r), a.row(r) + a.width));
    Evaluation<T> single = interpret<T>(loss, std::span<const Array<T>>(one), options);
    require(same_bits(single.loss[0], all.loss[r]), "rows are independent (loss)",
            loss.name + " row " + std::to_string(r));
    for (size_t k = 0; k < preds.size(); ++k)
      for (size_t c = 0; c < single.grads[k].width; ++c)
        require(same_bits(single.grads[k].data[c], all.grads[k].row(r)[c]), "rows are independent (gradient)",
                loss.name + " row " + std::to_string(r));
  }
}

void evaluate(const Loss& loss, Values& values) {
  std::optional<std::vector<size_t>> widths = input_widths(loss);
  if (!widths) return;
  // Mostly 1 to 3 rows; now and then more than one interpreter chunk (1024 rows).
  const size_t rows = values.next() % 32 == 0 ? 1025 + values.next() % 8 : 1 + values.next() % 3;
  std::vector<Array<double>> batch;
  for (size_t i = 0; i < loss.inputs.size(); ++i) {
    Array<double> a(rows, (*widths)[i]);
    for (double& v : a.data) v = values.number();
    if (loss.inputs[i].type.is_box() && values.next() % 4 != 0)
      for (size_t r = 0; r < rows; ++r) {  // usually a proper box: x1 <= x2, y1 <= y2
        double* b = a.row(r);
        if (b[0] > b[2]) std::swap(b[0], b[2]);
        if (b[1] > b[3]) std::swap(b[1], b[3]);
      }
    batch.push_back(std::move(a));
  }
  // The params' defaults, or (half the time) values given at run time.
  std::vector<double> params;
  if (values.next() % 2 == 0)
    for (size_t i = 0; i < loss.params.size(); ++i) params.push_back(values.number());
  check_evaluation<float>(loss, batch, params);
  check_evaluation<double>(loss, batch, params);
}

bool same_signature(const Loss& a, const Loss& b) {
  if (a.name != b.name || a.inputs.size() != b.inputs.size() || a.params.size() != b.params.size()) return false;
  for (size_t i = 0; i < a.inputs.size(); ++i)
    if (a.inputs[i].name != b.inputs[i].name || !(a.inputs[i].type == b.inputs[i].type) ||
        a.inputs[i].pred != b.inputs[i].pred)
      return false;
  for (size_t i = 0; i < a.params.size(); ++i)
    if (a.params[i].name != b.params[i].name || !same_bits(a.params[i].value, b.params[i].value)) return false;
  return true;
}

// Parses text the printers wrote; a lossforge::Error here is a printer bug.
template <class Load>
auto reparse(const char* property, const std::string& text, Load load) {
  try {
    return load(SourceFile::from_text("<printed>", text));
  } catch (const Error& e) {
    fail(property, "the printed text does not load:\n" + text + "\n" + e.what());
  }
}

void check_module(const SourcePtr& source, const Module& module, Values& values) {
  const std::string printed = to_text(module);
  Module again = reparse("to_text parses back", printed, [](const SourcePtr& s) { return load_module(s); });
  require(again.losses.size() == module.losses.size(), "to_text keeps every loss", printed);
  for (size_t i = 0; i < module.losses.size(); ++i) {
    require(same_signature(again.losses[i], module.losses[i]), "to_text keeps the signature", printed);
    require(again.losses[i].body == module.losses[i].body, "to_text parses back to the same body node", printed);
  }

  const std::string formatted = format_source(source);
  Module reformatted =
      reparse("format_source output loads", formatted, [](const SourcePtr& s) { return load_module(s); });
  require(reformatted.losses.size() == module.losses.size(), "format_source keeps every loss", formatted);
  for (size_t i = 0; i < module.losses.size(); ++i) {
    require(same_signature(reformatted.losses[i], module.losses[i]), "format_source keeps the signature", formatted);
    require(reformatted.losses[i].body == module.losses[i].body, "format_source keeps the body node", formatted);
  }
  const std::string twice =
      reparse("format_source is idempotent", formatted, [](const SourcePtr& s) { return format_source(s); });
  require(twice == formatted, "format_source is idempotent", "first:\n" + formatted + "\nsecond:\n" + twice);

  for (const Loss& loss : module.losses) evaluate(loss, values);
}

void check_formula(const Loss& loss, const Preset& preset, Values& values) {
  const NameMap names = terminal_names(preset);
  auto load = [&](const SourcePtr& s) { return load_formula(s, preset, loss.name); };

  const std::string infix = to_infix(loss.body, names);
  require(reparse("to_infix parses back", infix, load).body == loss.body, "to_infix parses back to the same node",
          infix);
  // Every DEAP operator is a call: one bracket per level, bounded by the nesting limit.
  if (loss.body->depth() <= uint32_t(limits::kMaxNesting)) {
    const std::string deap = to_deap(loss.body, names);
    require(reparse("to_deap parses back", deap, load).body == loss.body, "to_deap parses back to the same node", deap);
  }
  const std::string text = to_text(loss);
  Module again = reparse("to_text parses back", text, [](const SourcePtr& s) { return load_module(s); });
  require(again.losses.size() == 1 && again.losses[0].body == loss.body, "to_text parses back to the same body node",
          text);
  require(same_signature(again.losses[0], loss), "to_text keeps the signature", text);

  evaluate(loss, values);
}

void run(const uint8_t* data, size_t size) {
  if (size == 0) return;
  const int mode = data[0] % 4;
  SourcePtr source = SourceFile::from_text("<fuzz>", std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  Values values(std::span(data, size));
  if (mode == 0) {
    std::optional<Module> module;
    try {
      module = load_module(source);
    } catch (const Error&) {
      return;  // rejected cleanly
    }
    check_module(source, *module, values);
  } else {
    const Preset& preset = all_presets()[size_t(mode - 1)];
    std::optional<Loss> loss;
    try {
      loss = load_formula(source, preset);
    } catch (const Error&) {
      return;
    }
    check_formula(*loss, preset, values);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)lossforge::all_presets();  // built once; its nodes stay alive for the whole run
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const size_t live_before = lossforge::live_node_count();
  run(data, size);
  const size_t live_after = lossforge::live_node_count();
  require(live_after == live_before, "every IR node is released",
          std::to_string(live_after - live_before) + " nodes outlive the input");
  return 0;
}
