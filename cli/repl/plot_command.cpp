// :plot: losses and their gradients against one input, drawn in the terminal or
// written as a PNG chart (charts/chart.hpp).
#include <cmath>
#include <ostream>
#include <set>

#include "charts/chart.hpp"
#include "cli/numbers.hpp"
#include "cli/repl/commands.hpp"
#include "cli/repl/literals.hpp"
#include "cli/repl/words.hpp"
#include "compiler/diagnostics.hpp"
#include "runtime/interpreter.hpp"

namespace lossforge::repl {
namespace {

constexpr const char* kUsage =
    ":plot LOSS[,LOSS...] NAME in [LO, HI] [NAME=VALUE...] [--png FILE] [--size WxH] [--points N]";

struct PlotRequest {
  std::vector<const Definition*> losses;
  std::string variable;  // an input name, or INPUT.x1 ... INPUT.y2 for a box coordinate
  double lo = 0, hi = 1;
  Assignments fixed;
  std::string png;
  int width = 800, height = 500;
  int points = 0;  // 0: chosen for the output
};

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    parts.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return parts;
    start = comma + 1;
  }
}

int whole_number(const std::string& text, const char* what, int lo, int hi) {
  const auto n = cli::parse_finite(text);
  if (!n || *n != std::floor(*n) || *n < lo || *n > hi)
    throw InputError(std::string(what) + " takes a whole number from " + std::to_string(lo) + " to " +
                     std::to_string(hi) + ", not " + quote_token(text));
  return static_cast<int>(*n);
}

PlotRequest parse_request(Session& session, const Words& words) {
  PlotRequest request;
  size_t i = 0;
  if (words.size() >= 2 && words[1] == "in") {
    request.losses.push_back(&session.latest());
  } else {
    if (words.empty()) throw InputError(std::string("usage: ") + kUsage);
    for (const std::string& name : split_commas(words[0]))
      if (!name.empty()) request.losses.push_back(&session.find(name));
    i = 1;
  }
  if (words.size() < i + 3 || words[i + 1] != "in") throw InputError(std::string("usage: ") + kUsage);
  request.variable = words[i];
  const Literal range = parse_literal(words[i + 2], "the range of " + request.variable);
  if (!range.is_list || range.items.size() != 2 || range.items[0].is_list || range.items[1].is_list ||
      !(range.items[0].number < range.items[1].number))
    throw InputError("the range of " + request.variable + " is [LO, HI] with LO < HI, not " + quote_token(words[i + 2]));
  request.lo = range.items[0].number;
  request.hi = range.items[1].number;
  for (i += 3; i < words.size(); ++i) {
    const std::string& w = words[i];
    auto value = [&](const char* option) -> const std::string& {
      if (i + 1 >= words.size()) throw InputError(std::string(option) + " needs a value");
      return words[++i];
    };
    if (w == "--png") {
      request.png = value("--png");
    } else if (w == "--size") {
      const std::string& size = value("--size");
      const size_t x = size.find('x');
      if (x == std::string::npos) throw InputError("--size takes WIDTHxHEIGHT, e.g. 800x500");
      request.width = whole_number(size.substr(0, x), "--size width", 64, 8192);
      request.height = whole_number(size.substr(x + 1), "--size height", 48, 8192);
    } else if (w == "--points") {
      request.points = whole_number(value("--points"), "--points", 2, 100000);
    } else {
      add_assignment(w, request.fixed);
    }
  }
  return request;
}

struct Variable {
  size_t input = 0;
  int field = -1;  // the box coordinate, -1 for a real input
};

Variable find_variable(const Loss& loss, const std::string& variable) {
  const size_t dot = variable.find('.');
  const std::string name = variable.substr(0, dot);
  const auto index = loss.find_input(name);
  if (!index) throw InputError("'" + loss.name + "' has no input " + quote_token(name) + " (inputs: " + input_list(loss) + ")");
  const LossInput& input = loss.inputs[*index];
  if (dot == std::string::npos) {
    if (!input.type.is_real())
      throw InputError("'" + name + "' is a " + input.type.str() + (input.type.is_box() ? "; plot one coordinate, e.g. " + name + ".x2" : "; only real inputs and box coordinates can be plotted against"));
    return {*index, -1};
  }
  const auto field = find_box_field(variable.substr(dot + 1));
  if (!input.type.is_box() || !field)
    throw InputError(quote_token(variable) + " is not a box coordinate (x1, y1, x2 or y2 of a box input)");
  return {*index, *field};
}

// The sample values as the literal the variable's input takes.
Literal samples(const Loss& loss, const Variable& v, const std::vector<double>& xs, const Assignments& fixed) {
  Literal list;
  list.is_list = true;
  const LossInput& input = loss.inputs[v.input];
  Literal box;
  if (v.field >= 0) {
    const auto it = fixed.find(input.name);
    if (it == fixed.end() || !it->second.is_list || it->second.items.size() != 4)
      throw InputError("plotting " + input.name + "." + std::string(box_field_name(v.field)) + " needs the rest of the box: " +
                       input.name + "=[x1, y1, x2, y2]");
    box = it->second;
  }
  for (double x : xs) {
    Literal item;
    if (v.field < 0) {
      item.number = x;
    } else {
      item = box;
      item.items[size_t(v.field)].number = x;
    }
    list.items.push_back(std::move(item));
  }
  return list;
}

// The session's terminal: a chart fitted to its width, colour when it has colour.
std::string terminal_chart(const Session& session, const charts::Chart& chart) {
  const int columns = std::clamp(session.columns, 20, 400);
  return charts::render_terminal(chart, columns, 20, session.colour ? charts::Colour::on : charts::Colour::off);
}

}  // namespace

void command_plot(Session& session, const Words& words) {
  const PlotRequest request = parse_request(session, words);
  const int points = request.points ? request.points : request.png.empty() ? std::clamp(session.columns * 2, 40, 800) : 400;
  std::vector<double> xs(static_cast<size_t>(points));
  for (int k = 0; k < points; ++k) xs[size_t(k)] = request.lo + (request.hi - request.lo) * k / (points - 1);

  // Names fixed for some loss but known to none are mistakes.
  std::set<std::string> known = {request.variable.substr(0, request.variable.find('.'))};
  for (const Definition* d : request.losses) {
    for (const LossInput& input : d->loss.inputs) known.insert(input.name);
    for (const LossParam& param : d->loss.params) known.insert(param.name);
  }
  for (const auto& [name, value] : request.fixed)
    if (!known.contains(name)) throw InputError("no loss being plotted has an input or param named " + quote_token(name));

  charts::Chart chart;
  chart.x_label = request.variable;
  chart.x_range = {request.lo, request.hi};  // the range asked for, not widened to round ticks
  std::string fixed_text;
  for (const std::string& w : words)  // the fixed inputs as typed, in order
    if (is_assignment(w)) fixed_text += (fixed_text.empty() ? "" : " ") + w;
  for (const Definition* d : request.losses) {
    check_interrupt();
    const Loss& loss = d->loss;
    const Variable v = find_variable(loss, request.variable);
    Assignments values;
    for (const auto& [name, value] : request.fixed)
      if (loss.find_input(name) || loss.find_param(name)) values[name] = value;
    values[loss.inputs[v.input].name] = samples(loss, v, xs, request.fixed);
    const LossArguments args = loss_arguments(loss, values);
    EvalOptions options;
    options.gradients = loss.inputs[v.input].pred;
    options.params = args.params;
    const Evaluation<double> result = interpret<double>(loss, args.inputs, options);
    chart.lines.push_back({loss.name, xs, result.loss});
    if (options.gradients) {
      const std::vector<size_t> preds = loss.pred_inputs();
      const size_t g = size_t(std::find(preds.begin(), preds.end(), v.input) - preds.begin());
      std::vector<double> slope(xs.size());
      for (size_t r = 0; r < xs.size(); ++r) slope[r] = result.grads[g].row(r)[v.field < 0 ? 0 : v.field];
      chart.lines.push_back({"d" + loss.name + "/d" + request.variable, xs, std::move(slope)});
    }
  }
  std::string names;
  for (const Definition* d : request.losses) names += (names.empty() ? "" : ", ") + d->loss.name;
  chart.title = names + " against " + request.variable + (fixed_text.empty() ? "" : " (" + fixed_text + ")");

  if (!request.png.empty()) {
    charts::render_png(chart, request.png, request.width, request.height);
    session.out() << "wrote " << request.png << " (" << request.width << "x" << request.height << ")\n";
    return;
  }
  session.out() << terminal_chart(session, chart);
}

}  // namespace lossforge::repl
