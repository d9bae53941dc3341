// The state of one REPL session: the losses defined so far (in definition
// order, a redefinition replacing the old one in place), the current preset for
// bare formulas, and where output goes.
//
// Text typed at the prompt is read as one of
//   loss f(pred x: real, y: real) = ...     DSL definitions (blocks too), any number
//   g = Neg(Log(Sig(X)))                    a bare formula named g, over the preset's inputs
//   Neg(Log(Sig(X)))                        a bare formula named f1, f2, ... (the next free)
// Diagnostics point into the session: the source of text typed at line N of
// the session is named "<repl>" and numbered from N, so errors read <repl>:N:COL.
#pragma once

#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "compiler/error.hpp"
#include "compiler/loss.hpp"
#include "compiler/presets.hpp"

namespace lossforge::repl {

struct Definition {
  Loss loss;
  std::string text;    // as typed (a formula: the expression alone)
  bool formula = false;  // a bare formula over loss.preset's inputs
};

// Set by the SIGINT handler of an interactive session; long computations poll
// it through check_interrupt(), which throws Interrupted.
extern std::atomic<bool> g_interrupt_requested;

class Interrupted : public Error {
 public:
  Interrupted() : Error("interrupted") {}
};

inline void check_interrupt() {
  if (g_interrupt_requested.exchange(false)) throw Interrupted();
}

class Session {
 public:
  Session(std::ostream& out, std::ostream& err) : out_(out), err_(err) {}

  // Defines the losses in `text`, typed starting at session line `first_line`
  // (used in diagnostics; `source_name` names it). Returns the names defined.
  // Throws CompileError for bad text, InputError for a bare formula without a
  // preset.
  std::vector<std::string> define(const std::string& text, uint32_t first_line,
                                  const std::string& source_name = "<repl>");
  // Adds or replaces a definition by name.
  void put(Definition definition);

  // The definition called `name`; throws InputError listing the names when there is none.
  const Definition& find(const std::string& name) const;
  const Definition* try_find(const std::string& name) const;
  // The most recently defined loss; throws InputError when nothing is defined yet.
  const Definition& latest() const;
  const std::vector<Definition>& definitions() const { return definitions_; }

  const Preset* preset() const { return preset_; }
  void set_preset(const Preset* preset) { preset_ = preset; }

  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }

  // Output shaping: colour escapes allowed, width of the terminal in columns.
  bool colour = false;
  int columns = 80;
  bool interactive = false;

 private:
  std::string next_formula_name() const;

  std::ostream& out_;
  std::ostream& err_;
  std::vector<Definition> definitions_;
  size_t latest_ = SIZE_MAX;  // index into definitions_
  const Preset* preset_ = nullptr;
};

}  // namespace lossforge::repl
