// `lossforge eval`: a loss's value per row (and its gradients) on inputs from JSON.
#include <CLI/CLI.hpp>
#include <cmath>
#include <iostream>
#include <memory>
#include <optional>
#include <type_traits>

#include "cli/backend.hpp"
#include "cli/command.hpp"
#include "cli/inputs_json.hpp"
#include "cli/loss_source.hpp"
#include "cli/numbers.hpp"
#include "cli/table.hpp"
#include "compiler/diagnostics.hpp"
#include "compiler/presets.hpp"

namespace lossforge::cli {
namespace {

struct EvalArgs {
  LossArgs loss;
  std::string inputs_path;
  std::vector<std::string> param_overrides;  // NAME=VALUE
  bool gradients = false;
  std::string backend = "interp";
  std::string dtype = "f32";
  bool json = false;
};

constexpr const char* kFooter = R"(IN.json maps each input of the loss to an array with one entry per row:
  a number for `real`, an array of C numbers for `real[C]`, [x1, y1, x2, y2] for `box`.
  {"x": [0.5, -2], "y": [1, 0]}        ("-" reads it from standard input)
With --json the result is {"loss": [one number per row], "grad": {"<pred input>": [shaped like the input]}}
(grad only with --grad), numbers in shortest round-trip form for the dtype. With --dtype f16 or bf16 the
inputs are rounded to that type, the arithmetic is float and the gradients are rounded to the type, as the
CUDA back end's 16-bit kernels do (the loss stays float). The value is the formula's
own, per row: alpha_t factors, weights and reductions belong to the training wiring.
Exit status: 0 ok, 1 bad input or loss, 2 bad command line, 3 a loss or gradient is NaN or infinite
(printed as null; rows count from 0). A formula that starts with '-' goes after "--".
)";

std::string param_names(const Loss& loss) {
  if (loss.params.empty()) return "it has no params";
  std::string names = "params: ";
  for (size_t i = 0; i < loss.params.size(); ++i) names += (i ? ", " : "") + loss.params[i].name;
  return names;
}

// The loss's param defaults with each --param NAME=VALUE applied in order.
std::vector<double> param_values(const Loss& loss, const std::vector<std::string>& overrides) {
  std::vector<double> values;
  for (const LossParam& param : loss.params) values.push_back(param.value);
  for (const std::string& text : overrides) {
    const size_t equals = text.find('=');
    if (equals == std::string::npos)
      throw UsageError("--param " + quote_token(text) + ": expected NAME=VALUE, e.g. --param gamma=1.5");
    const std::string name = text.substr(0, equals);
    const std::string value_text = text.substr(equals + 1);
    const auto index = loss.find_param(name);
    if (!index)
      throw UsageError("--param: the loss '" + loss.name + "' has no param " + quote_token(name) + " (" +
                       param_names(loss) + ")");
    const auto value = parse_finite(value_text);
    if (!value) throw UsageError("--param " + name + ": " + quote_token(value_text) + " is not a finite number");
    values[*index] = *value;
  }
  return values;
}

template <class T>
std::string describe_non_finite(T value) {
  return std::isnan(value) ? "NaN" : shortest(value);
}

// "loss is NaN at row 3" for the first value that is not finite, losses first.
template <class T>
std::optional<std::string> first_non_finite(const Loss& loss, const Evaluation<T>& result) {
  for (size_t r = 0; r < result.loss.size(); ++r)
    if (!std::isfinite(result.loss[r]))
      return "loss is " + describe_non_finite(result.loss[r]) + " at row " + std::to_string(r);
  const std::vector<size_t> preds = loss.pred_inputs();
  for (size_t g = 0; g < result.grads.size() && g < preds.size(); ++g) {
    const Array<T>& grad = result.grads[g];
    for (size_t i = 0; i < grad.data.size(); ++i)
      if (!std::isfinite(grad.data[i]))
        return "gradient of '" + loss.inputs[preds[g]].name + "' is " + describe_non_finite(grad.data[i]) +
               " at row " + std::to_string(i / std::max<size_t>(grad.width, 1));
  }
  return std::nullopt;
}

template <class T>
std::string row_text(const T* values, size_t width, bool as_array) {
  if (!as_array) return shortest(values[0]);
  std::string text = "[";
  for (size_t i = 0; i < width; ++i) text += (i ? ", " : "") + shortest(values[i]);
  return text + "]";
}

template <class T>
std::string evaluation_table(const Loss& loss, const Evaluation<T>& result) {
  const std::vector<size_t> preds = loss.pred_inputs();
  TableRow header = {"row", "loss"};
  for (size_t g = 0; g < result.grads.size(); ++g) header.push_back("grad " + loss.inputs[preds[g]].name);
  std::vector<TableRow> rows;
  rows.reserve(result.loss.size());
  for (size_t r = 0; r < result.loss.size(); ++r) {
    TableRow row = {std::to_string(r), shortest(result.loss[r])};
    for (size_t g = 0; g < result.grads.size(); ++g) {
      const Array<T>& grad = result.grads[g];
      row.push_back(row_text(grad.row(r), grad.width, !loss.inputs[preds[g]].type.is_real()));
    }
    rows.push_back(std::move(row));
  }
  return render_table(header, rows);
}

template <class T>
int evaluate_and_print(const EvalArgs& args, Backend backend, const Loss& loss, const EvalOptions& options) {
  const std::vector<Array<T>> inputs = read_inputs_json<T>(args.inputs_path, loss);
  const size_t rows = inputs.empty() ? 0 : inputs.front().rows;
  Evaluation<T> result;
  if (rows == 0) {
    // Nothing to evaluate: a real[C] width may not even be known.
    if (options.gradients)
      for (size_t index : loss.pred_inputs()) result.grads.emplace_back(0, inputs[index].width);
  } else if constexpr (std::is_same_v<T, float>) {
    const CudaDType dtype = *find_cuda_dtype(args.dtype);
    result = cuda_dtype_bytes(dtype) == 2 ? evaluate_stored(backend, loss, inputs, options, dtype)
                                          : evaluate<T>(backend, loss, inputs, options);
  } else {
    result = evaluate<T>(backend, loss, inputs, options);
  }

  std::cout << (args.json ? evaluation_json(loss, result, args.gradients) : evaluation_table(loss, result));
  if (auto problem = first_non_finite(loss, result)) {
    std::cout.flush();
    std::cerr << "lossforge: " << *problem << '\n';
    return exit_code::kNonFinite;
  }
  return exit_code::kOk;
}

int run_eval(const EvalArgs& args) {
  // An unavailable back end is reported before any work is done.
  const Backend backend = *find_backend(args.backend);
  require_backend(backend);
  const LossSet losses = load_losses(args.loss);
  const Loss& loss = select_loss(losses, args.loss.loss_name);
  EvalOptions options;
  options.gradients = args.gradients;
  options.params = param_values(loss, args.param_overrides);
  return args.dtype == "f64" ? evaluate_and_print<double>(args, backend, loss, options)
                             : evaluate_and_print<float>(args, backend, loss, options);
}

}  // namespace

Command add_eval_command(CLI::App& parent) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* app = parent.add_subcommand("eval", "Evaluate a loss (and its gradients) on inputs given as JSON");
  add_loss_options(*app, args->loss, "Which loss of the file (needed when it defines several)");
  app->add_option("--inputs", args->inputs_path, "JSON file with the rows of every input (see below)")
      ->type_name("IN.json")
      ->required();
  app->add_option("--param", args->param_overrides, "Override a param of the loss; repeatable")
      ->type_name("NAME=VALUE")
      ->allow_extra_args(false);
  app->add_flag("--grad", args->gradients, "Also compute the gradients for the pred inputs");
  app->add_option("--backend", args->backend, "Evaluation engine")
      ->check(CLI::IsMember(std::vector<std::string>(kBackendNames.begin(), kBackendNames.end())))
      ->capture_default_str();
  app->add_option("--dtype", args->dtype,
                  "Floating-point type of the evaluation; f16 and bf16 are storage around float arithmetic")
      ->check(CLI::IsMember({"f32", "f64", "f16", "bf16"}))
      ->capture_default_str();
  app->add_flag("--json", args->json, "Print JSON instead of a table");
  app->footer(kFooter);
  return {app, [args] { return run_eval(*args); }};
}

}  // namespace lossforge::cli
