#include "compiler/presets.hpp"

#include <stdexcept>

#include "compiler/frontend.hpp"

namespace lossforge {
namespace {

// The presets, written in the DSL itself: a signature plus named values. The
// bodies are unused; each preset's lets are the values its formulas may name.
constexpr std::string_view kPresetSource = R"(
loss multi_cls(pred X: real[C], Y: real[C], Z: real[C]) = 0
loss binary_cls(pred X: real, Q: real, PY: real, NY: real) = 0
loss reg(pred P: box, G: box) {
  let I = inter(P, G)
  let U = area(P) + area(G) - I + 1e-7
  let E = enclose(P, G) + 1e-7
  0
}
)";

struct PresetText {
  std::string_view description;
  std::vector<std::string> search_terminals;
};

std::vector<Preset> build_presets() {
  const std::unordered_map<std::string, PresetText> about = {
      {"multi_cls",
       {"softmax classification: X logits (pred), Y one-hot incl. background, Z IoU map, all real[C]", {"X", "Y", "Z"}}},
      {"binary_cls",
       {"sigmoid classification: X logit (pred), Q IoU at the GT class, PY one-hot label, NY = 1 - PY",
        {"X", "Q", "PY", "NY"}}},
      {"reg", {"box regression: boxes P (pred) and G; formulas see I, U, E (overlap, union, enclosing area)",
               {"U", "I", "E"}}},
  };
  Module module = load_module(SourceFile::from_text("<presets>", std::string(kPresetSource)));
  std::vector<Preset> presets;
  for (const Loss& loss : module.losses) {
    Preset p;
    p.name = loss.name;
    p.description = about.at(loss.name).description;
    p.search_terminals = about.at(loss.name).search_terminals;
    p.inputs = loss.inputs;
    for (size_t i = 0; i < loss.inputs.size(); ++i)
      p.terminals.push_back({loss.inputs[i].name, input(int(i), loss.inputs[i].name, loss.inputs[i].type)});
    for (const NamedExpr& let : loss.lets) p.terminals.push_back(let);
    presets.push_back(std::move(p));
  }
  return presets;
}

}  // namespace

std::span<const Preset> all_presets() {
  static const std::vector<Preset>* presets = new std::vector<Preset>(build_presets());
  return *presets;
}

const Preset* find_preset(std::string_view name) {
  for (const Preset& p : all_presets())
    if (p.name == name) return &p;
  return nullptr;
}

std::string preset_names() {
  std::string out;
  for (const Preset& p : all_presets()) out += (out.empty() ? "" : ", ") + p.name;
  return out;
}

std::unordered_map<const Node*, std::string> terminal_names(const Preset& preset) {
  std::unordered_map<const Node*, std::string> names;
  for (const NamedExpr& t : preset.terminals) names.emplace(t.expr.get(), t.name);
  return names;
}

const Expr& terminal(const Preset& preset, std::string_view name) {
  for (const NamedExpr& t : preset.terminals)
    if (t.name == name) return t.expr;
  throw std::out_of_range("preset " + preset.name + " has no name " + std::string(name));
}

}  // namespace lossforge
