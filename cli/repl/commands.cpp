// The command table, :help, and the commands about definitions and files.
#include "cli/repl/commands.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <ostream>

#include "cli/repl/words.hpp"
#include "compiler/diagnostics.hpp"
#include "compiler/frontend.hpp"
#include "compiler/print.hpp"
#include "runtime/files.hpp"

namespace lossforge::repl {
namespace {

void command_help(Session& session, const Words& words);
void command_list(Session& session, const Words& words);
void command_show(Session& session, const Words& words);
void command_pset(Session& session, const Words& words);
void command_load(Session& session, const Words& words);
void command_save(Session& session, const Words& words);
void command_quit(Session&, const Words&) { throw QuitRequest{}; }

constexpr CommandSpec kCommands[] = {
    {"help", ":help [COMMAND]", "this list, or the details of one command", "", command_help},
    {"pset", ":pset [PRESET]", "choose the preset whose inputs bare formulas use (no name: list them)",
     "A bare formula typed at the prompt (e.g. Neg(Log(Sig(X)))) is named f1, f2, ... in order;\n"
     "'g = FORMULA' names it g. The preset stays until the next :pset.",
     command_pset},
    {"list", ":list", "the losses defined so far, with their signatures", "", command_list},
    {"show", ":show [LOSS]", "a loss's definition as typed, and as the DSL prints it", "", command_show},
    {"eval", ":eval [LOSS] NAME=VALUE...", "the loss and its gradient at the given inputs",
     "Values: x=0.3 (a real), x=[1,2,3] (three rows of a real, or one row of a real[C]),\n"
     "p=[0,0,10,10] (a box), p=[[0,0,2,2],[1,1,3,3]] (two rows). An input given one row is repeated\n"
     "to the row count of the others. NAME may also be a param (gamma=1.5). Computed in f64 by the\n"
     "reference interpreter; the gradient is by each pred input.",
     command_eval},
    {"grad", ":grad [LOSS]", "the derivative by each pred input, as DSL text", "", command_grad},
    {"simplify", ":simplify [LOSS]", "the loss simplified, with node counts before and after", "", command_simplify},
    {"emit", ":emit [LOSS] llvm|cuda|cpp", "the code a back end generates for the loss and its gradient",
     "llvm: LLVM IR as generated (before optimisation); cuda: the CUDA C++ source for NVRTC;\n"
     "cpp: the same row code for the host CPU.",
     command_emit},
    {"time", ":time [LOSS] [rows=N]", "compile and evaluation time per back end (random inputs)",
     "Evaluates loss and gradients in f32 on N rows (default 100000) of random inputs: reals in\n"
     "[-3, 3], real[C] rows of 8, boxes of sides 1 to 50. Prints the compile time and the time per\n"
     "element (per row) of the best of several runs for each back end this build has.",
     command_time},
    {"check", ":check [LOSS]", "the search's convergence-property checks, one line each",
     "Works on losses with a preset's signature (a formula, or inputs typed like one): each property\n"
     "is checked on simulated inputs and reported as ok or FAIL with the witness input.",
     command_check},
    {"plot", ":plot LOSS[,LOSS...] NAME in [LO, HI] [NAME=VALUE...] [--png FILE] [--size WxH] [--points N]",
     "the loss and its gradient against one input, in the terminal or as a PNG",
     "The other inputs are fixed by NAME=VALUE words. A box coordinate can be the variable:\n"
     ":plot P.x2 in [0, 20] P=[0,0,10,10] G=[2,2,12,12]. --png FILE writes a chart (default\n"
     "800x500) instead of drawing in the terminal; several losses share one chart.",
     command_plot},
    {"load", ":load FILE", "define the losses of a .loss file", "", command_load},
    {"save", ":save FILE", "write every loss of the session as a .loss file (atomically)",
     "Losses typed as DSL are written as typed; a bare formula is written as the equivalent\n"
     "'loss' definition, with the formula and its preset in a comment above it.",
     command_save},
    {"quit", ":quit", "leave (Ctrl-D does the same)", "", command_quit},
};

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void command_help(Session& session, const Words& words) {
  std::ostream& out = session.out();
  if (!words.empty()) {
    std::string name = words[0];
    if (name.starts_with(":")) name.erase(0, 1);
    const CommandSpec* command = find_command(name);
    if (!command) throw InputError("no command " + quote_token(words[0]) + " (see :help)");
    out << command->usage << "\n  " << command->summary << '\n';
    if (!command->details.empty()) out << command->details << '\n';
    return;
  }
  out << "Type a loss definition, a formula, or a command. Commands (any unique prefix works):\n";
  size_t width = 0;
  for (const CommandSpec& c : kCommands) width = std::max(width, c.usage.size());
  width = std::min<size_t>(width, 34);
  for (const CommandSpec& c : kCommands) {
    std::string usage(c.usage);
    if (usage.size() > width) usage = ":" + std::string(c.name) + " ...";
    out << "  " << usage << std::string(width + 2 - std::min(width, usage.size()), ' ') << c.summary << '\n';
  }
  out << "Definitions:\n"
         "  loss f(pred x: real, y: real) = ...   a loss in the DSL (blocks { ... } continue over lines)\n"
         "  Neg(Log(Sig(X)))                      after :pset, a formula; named f1, f2, ... in order\n"
         "  g = Neg(Log(Sig(X)))                  a formula named g\n"
         "Defining a name again replaces it. [LOSS] defaults to the latest loss defined.\n"
         "Tab completes commands, functions, losses, inputs and presets; Ctrl-C cancels, Ctrl-D leaves.\n";
}

void command_list(Session& session, const Words&) {
  if (session.definitions().empty()) {
    session.out() << "no losses yet\n";
    return;
  }
  for (const Definition& d : session.definitions()) {
    session.out() << signature(d.loss);
    if (d.formula) session.out() << "  = " << d.text << "  [" << d.loss.preset << "]";
    session.out() << '\n';
  }
}

void command_show(Session& session, const Words& words) {
  bool used = false;
  const Definition& d = loss_argument(session, words, used);
  if (d.formula) {
    session.out() << d.loss.name << " = " << d.text << "   # preset " << d.loss.preset << "\n" << to_text(d.loss);
    return;
  }
  session.out() << d.text << '\n';
}

void command_pset(Session& session, const Words& words) {
  if (words.empty()) {
    for (const Preset& p : all_presets()) {
      std::string inputs;
      for (const NamedExpr& t : p.terminals) inputs += (inputs.empty() ? "" : ", ") + t.name;
      session.out() << (session.preset() == &p ? "* " : "  ") << p.name << "  (" << inputs << ")  " << p.description
                    << '\n';
    }
    return;
  }
  const Preset* preset = find_preset(words[0]);
  if (!preset) throw InputError("unknown preset " + quote_token(words[0]) + " (presets: " + preset_names() + ")");
  session.set_preset(preset);
  std::string inputs;
  for (const NamedExpr& t : preset->terminals) inputs += (inputs.empty() ? "" : ", ") + t.name;
  if (session.interactive) session.out() << "formulas now read " << inputs << '\n';
}

void command_load(Session& session, const Words& words) {
  if (words.size() != 1) throw InputError("usage: :load FILE");
  const SourcePtr source = SourceFile::read(words[0], limits::kMaxSourceBytes);
  const std::vector<std::string> names = session.define(source->text(), 1, words[0]);
  std::string list;
  for (const std::string& name : names) list += (list.empty() ? "" : ", ") + name;
  session.out() << "loaded " << names.size() << (names.size() == 1 ? " loss" : " losses")
                << (list.empty() ? "" : ": " + list) << '\n';
}

void command_save(Session& session, const Words& words) {
  if (words.size() != 1) throw InputError("usage: :save FILE");
  std::string text = "# Losses saved from a lossforge repl session.\n";
  for (const Definition& d : session.definitions()) {
    text += '\n';
    if (d.formula) {
      text += "# " + d.loss.name + " = " + d.text + "   (preset " + d.loss.preset + ")\n" + to_text(d.loss);
    } else {
      text += d.text + '\n';
    }
  }
  write_file_atomic(words[0], text);
  session.out() << "saved " << session.definitions().size() << " losses to " << words[0] << '\n';
}

}  // namespace

std::span<const CommandSpec> repl_commands() { return kCommands; }

const CommandSpec* find_command(std::string_view name) {
  const std::string wanted = lowercase(std::string(name));
  const CommandSpec* prefix_match = nullptr;
  int prefix_matches = 0;
  for (const CommandSpec& c : kCommands) {
    if (c.name == wanted) return &c;
    if (!wanted.empty() && c.name.starts_with(wanted)) {
      prefix_match = &c;
      ++prefix_matches;
    }
  }
  if (wanted == "q" || wanted == "exit") return find_command("quit");
  return prefix_matches == 1 ? prefix_match : nullptr;
}

const Definition& loss_argument(Session& session, const Words& words, bool& used) {
  used = false;
  if (!words.empty()) {
    const std::string& first = words[0];
    if (const Definition* d = session.try_find(first)) {
      used = true;
      return *d;
    }
    const bool looks_like_name = !first.empty() && (std::isalpha(static_cast<unsigned char>(first[0])) || first[0] == '_') &&
                                 first.find_first_of("=.[,") == std::string::npos;
    // A word that can only be a loss name but names none is a mistake, not the latest loss.
    if (looks_like_name && find_preset(first) == nullptr && first != "llvm" && first != "cuda" && first != "cpp")
      return session.find(first);  // throws, listing the names
  }
  return session.latest();
}

Outcome run_input(Session& session, const std::string& input, uint32_t first_line) {
  std::string_view text = input;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  if (text.empty() || text.starts_with("#")) {
    // A comment alone, or nothing: but a comment may precede a definition.
    if (text.empty() || input.find('\n') == std::string::npos) return Outcome::ok;
  }
  try {
    if (text.starts_with(":")) {
      Words words = split_words(text.substr(1));
      if (words.empty()) throw InputError("a command name goes after ':' (see :help)");
      const CommandSpec* command = find_command(words[0]);
      if (!command) {
        std::string close;
        for (const CommandSpec& c : kCommands)
          if (!words[0].empty() && c.name.starts_with(lowercase(words[0].substr(0, 1)))) close += " :" + std::string(c.name);
        throw InputError("unknown command :" + words[0] + (close.empty() ? " (see :help)" : "; did you mean" + close + "?"));
      }
      words.erase(words.begin());
      command->run(session, words);
    } else {
      const std::vector<std::string> names = session.define(input, first_line);
      if (session.interactive)
        for (const std::string& name : names) session.out() << "defined " << signature(session.find(name).loss) << '\n';
    }
    session.out().flush();
    return Outcome::ok;
  } catch (const QuitRequest&) {
    return Outcome::quit;
  } catch (const Interrupted&) {
    session.out().flush();
    session.err() << "interrupted\n";
  } catch (const CompileError& e) {
    session.out().flush();
    session.err() << e.what() << '\n';
  } catch (const Error& e) {
    session.out().flush();
    session.err() << "error: " << e.what() << '\n';
  } catch (const std::bad_alloc&) {
    session.out().flush();
    session.err() << "error: out of memory\n";
  } catch (const std::exception& e) {
    session.out().flush();
    session.err() << "internal error (please report it): " << e.what() << '\n';
  }
  session.err().flush();
  return Outcome::failed;
}

}  // namespace lossforge::repl
