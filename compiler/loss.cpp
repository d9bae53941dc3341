#include "compiler/loss.hpp"

namespace lossforge {

std::optional<size_t> Loss::find_input(std::string_view name) const {
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].name == name) return i;
  return std::nullopt;
}

std::optional<size_t> Loss::find_param(std::string_view name) const {
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].name == name) return i;
  return std::nullopt;
}

std::vector<size_t> Loss::pred_inputs() const {
  std::vector<size_t> out;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].pred) out.push_back(i);
  return out;
}

const Loss* Module::find(std::string_view name) const {
  for (const Loss& loss : losses)
    if (loss.name == name) return &loss;
  return nullptr;
}

}  // namespace lossforge
