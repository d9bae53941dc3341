#include "cli/repl/completion.hpp"

#include <algorithm>
#include <set>

#include "cli/repl/commands.hpp"
#include "cli/repl/words.hpp"
#include "compiler/ops.hpp"

namespace lossforge::repl {
namespace {

void add_loss_names(const Session& session, std::set<std::string>& out) {
  for (const Definition& d : session.definitions()) out.insert(d.loss.name);
}

// NAME= for the inputs and params of the loss the command names (or the latest).
void add_arguments(const Session& session, const std::vector<std::string>& words, bool plot, std::set<std::string>& out) {
  std::vector<const Definition*> losses;
  if (words.size() >= 2)
    for (size_t start = 0;;) {
      const size_t comma = words[1].find(',', start);
      if (const Definition* d = session.try_find(words[1].substr(start, comma - start))) losses.push_back(d);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  if (losses.empty() && !session.definitions().empty()) {
    try {
      losses.push_back(&session.latest());
    } catch (const Error&) {
    }
  }
  for (const Definition* d : losses) {
    for (const LossInput& input : d->loss.inputs) {
      out.insert(input.name + "=");
      if (plot) out.insert(input.name);
    }
    for (const LossParam& param : d->loss.params) out.insert(param.name + "=");
  }
  if (plot) out.insert({"--png", "--size", "--points", "in"});
}

}  // namespace

std::optional<std::vector<std::string>> completions(const Session& session, std::string_view before, std::string_view word) {
  std::set<std::string> candidates;
  const std::vector<std::string> words = split_words(before);
  const bool first_word = words.empty();
  const bool command_line = !before.empty() ? before.find_first_not_of(" \t") != std::string_view::npos &&
                                                  before[before.find_first_not_of(" \t")] == ':'
                                            : false;
  if (first_word && word.starts_with(":")) {
    for (const CommandSpec& c : repl_commands()) candidates.insert(":" + std::string(c.name));
  } else if (command_line) {
    const CommandSpec* command = find_command(words[0].substr(1));
    const std::string name = command ? std::string(command->name) : "";
    if (name == "load" || name == "save") return std::nullopt;
    if (name == "pset")
      for (const Preset& p : all_presets()) candidates.insert(p.name);
    if (name == "help")
      for (const CommandSpec& c : repl_commands()) candidates.insert(std::string(c.name));
    if (name == "emit") candidates.insert({"llvm", "cuda", "cpp"});
    if (words.size() == 1 && name != "pset" && name != "help" && name != "load" && name != "save" && name != "quit")
      add_loss_names(session, candidates);
    if (name == "eval" || name == "plot") add_arguments(session, words, name == "plot", candidates);
  } else {
    for (std::string_view f : function_spellings()) candidates.insert(std::string(f));
    candidates.insert({"loss", "pred", "real", "box", "let", "param"});
    add_loss_names(session, candidates);
    if (const Preset* p = session.preset())
      for (const NamedExpr& t : p->terminals) candidates.insert(t.name);
  }
  std::vector<std::string> out;
  for (const std::string& c : candidates)
    if (c.starts_with(word)) out.push_back(c);
  return out;
}

}  // namespace lossforge::repl
