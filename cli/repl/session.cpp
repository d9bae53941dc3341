#include "cli/repl/session.hpp"

#include <cctype>
#include <cstdint>
#include <ostream>

#include "compiler/diagnostics.hpp"
#include "compiler/frontend.hpp"

namespace lossforge::repl {

std::atomic<bool> g_interrupt_requested{false};

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool is_identifier(std::string_view s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

// Whether the text starts with the keyword `loss` (a DSL definition), comments skipped.
bool starts_with_loss_keyword(std::string_view text) {
  for (;;) {
    text = trim(text);
    if (!text.starts_with("#")) break;
    const size_t end = text.find('\n');
    if (end == std::string_view::npos) return false;
    text.remove_prefix(end + 1);
  }
  return text.starts_with("loss") && (text.size() == 4 || !(std::isalnum(static_cast<unsigned char>(text[4])) || text[4] == '_'));
}

// The source of text typed at session line `first_line`: blank lines in front
// make diagnostics count lines (and show source lines) as the session does.
SourcePtr session_source(const std::string& name, const std::string& text, uint32_t first_line) {
  return SourceFile::from_text(name, std::string(first_line > 1 ? first_line - 1 : 0, '\n') + text);
}

}  // namespace

std::vector<std::string> Session::define(const std::string& text, uint32_t first_line, const std::string& source_name) {
  std::vector<std::string> names;
  if (starts_with_loss_keyword(text)) {
    const Module module = load_module(session_source(source_name, text, first_line));
    // One text may define several losses: keep each one's own lines as its text.
    std::vector<std::string> lines;
    {
      size_t start = 0;
      while (start <= text.size()) {
        const size_t end = text.find('\n', start);
        lines.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
        if (end == std::string::npos) break;
        start = end + 1;
      }
    }
    for (size_t i = 0; i < module.losses.size(); ++i) {
      const Loss& loss = module.losses[i];
      const size_t from = loss.loc.line >= first_line ? loss.loc.line - first_line : 0;
      const size_t to = i + 1 < module.losses.size() && module.losses[i + 1].loc.line >= first_line
                            ? module.losses[i + 1].loc.line - first_line
                            : lines.size();
      std::string own;
      for (size_t l = from; l < to && l < lines.size(); ++l) own += lines[l] + "\n";
      if (module.losses.size() == 1) own = text;
      put({loss, std::string(trim(own)), false});
      names.push_back(loss.name);
    }
    return names;
  }

  // `name = formula` or a bare formula.
  std::string name;
  std::string formula = text;
  const size_t equals = text.find('=');
  if (equals != std::string::npos && is_identifier(trim(std::string_view(text).substr(0, equals)))) {
    name = std::string(trim(std::string_view(text).substr(0, equals)));
    formula = std::string(equals + 1, ' ') + text.substr(equals + 1);  // columns stay those typed
  }
  if (!preset_)
    throw InputError("a bare formula needs a preset for its inputs: first ':pset NAME' (presets: " + preset_names() +
                     "), or define it with 'loss NAME(...) = ...'");
  if (name.empty()) name = next_formula_name();
  Loss loss = load_formula(session_source(source_name, formula, first_line), *preset_, name);
  put({std::move(loss), std::string(trim(formula)), true});
  names.push_back(name);
  return names;
}

void Session::put(Definition definition) {
  for (size_t i = 0; i < definitions_.size(); ++i)
    if (definitions_[i].loss.name == definition.loss.name) {
      definitions_[i] = std::move(definition);
      latest_ = i;
      return;
    }
  definitions_.push_back(std::move(definition));
  latest_ = definitions_.size() - 1;
}

const Definition* Session::try_find(const std::string& name) const {
  for (const Definition& d : definitions_)
    if (d.loss.name == name) return &d;
  return nullptr;
}

const Definition& Session::find(const std::string& name) const {
  if (const Definition* d = try_find(name)) return *d;
  if (definitions_.empty()) throw InputError("no loss named " + quote_token(name) + ": nothing is defined yet");
  std::string names;
  for (const Definition& d : definitions_) names += (names.empty() ? "" : ", ") + d.loss.name;
  throw InputError("no loss named " + quote_token(name) + " (defined: " + names + ")");
}

const Definition& Session::latest() const {
  if (latest_ >= definitions_.size())
    throw InputError("no loss is defined yet: type 'loss f(pred x: real, y: real) = ...', or ':pset' and a formula");
  return definitions_[latest_];
}

std::string Session::next_formula_name() const {
  for (size_t n = 1;; ++n) {
    std::string name = "f" + std::to_string(n);
    if (!try_find(name)) return name;
  }
}

}  // namespace lossforge::repl
