// The front end: text -> parse -> check -> typed IR. Everything below it (printers,
// simplifier, autodiff, code generators, search) works on the IR and never
// re-parses text.
//
//   Module m = load_module(SourceFile::read("focal.loss"));
//   Loss f = load_formula(SourceFile::from_text("<arg>", "Neg(Log(Sig(X)))"), *find_preset("binary_cls"));
//
// Errors come out as one CompileError holding every diagnostic found.
#pragma once

#include <cstdint>
#include <string>

#include "compiler/diagnostics.hpp"
#include "compiler/loss.hpp"
#include "compiler/presets.hpp"
#include "compiler/source.hpp"

namespace lossforge {

// Limits that keep hostile or accidental input from exhausting the machine.
namespace limits {
inline constexpr size_t kMaxSourceBytes = 16u << 20;  // larger files are rejected up front
inline constexpr int kMaxNesting = 256;               // brackets inside brackets
inline constexpr uint32_t kMaxExprDepth = 1000;       // operators inside operators, as written
inline constexpr uint32_t kMaxIrDepth = 5000;         // after expanding lets
}  // namespace limits

// A file of `loss` definitions.
Module load_module(const SourcePtr& source);
// A bare formula (infix or DEAP prefix) whose names come from a preset.
Loss load_formula(const SourcePtr& source, const Preset& preset, std::string name = "formula");

// What a command-line argument names: a readable file, otherwise the text
// itself (a formula). Files are read; text is wrapped as a source named "<arg>".
SourcePtr source_from_argument(const std::string& argument);

}  // namespace lossforge
