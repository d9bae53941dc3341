// The syntax tree: the program as written, with source ranges, before names and
// types are resolved. Expression nodes live in one arena per file and refer to
// each other by index, so no part of the tree is destroyed recursively.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/source.hpp"

namespace lossforge {

using AstId = uint32_t;

struct AstExpr {
  enum class Kind : uint8_t {
    Number,  // text: the literal as written; number: its value
    Name,    // text: the identifier
    Call,    // text: the function; args: arguments
    Unary,   // text: "-"; args: [operand]
    Binary,  // text: "+", "-", "*", "/" or "^"; args: [lhs, rhs]
    Field,   // text: the field name; args: [object]
  };
  Kind kind = Kind::Number;
  SourceRange range;       // the whole expression
  SourceRange name_range;  // the function name, field name or operator token
  std::string text;
  double number = 0;
  std::vector<AstId> args;
  uint32_t depth = 1;  // operators on the longest path down, as written
};

// Comments are kept so that `lossforge fmt` never loses them.
struct AstComments {
  std::vector<std::string> before;  // whole-line comments above, in order
  std::string after;                // a comment at the end of the line
  bool blank_line_before = false;   // the author separated this item by a blank line
};

struct AstInput {
  bool pred = false;
  std::string name;
  SourceRange range;       // the whole declaration
  SourceRange name_range;
  std::string type_name;   // as written: "real", "box", or anything (checked later)
  std::string width;       // the C of real[C]; empty if none
  SourceRange type_range;
};

struct AstStmt {
  enum class Kind : uint8_t { Let, Param };
  Kind kind = Kind::Let;
  std::string name;
  SourceRange name_range;
  SourceRange range;
  AstId expr = 0;          // Let
  double value = 0;        // Param
  std::string value_text;  // Param, as written (with its sign)
  AstComments comments;
};

struct AstLoss {
  std::string name;
  SourceRange name_range;
  SourceRange range;
  std::vector<AstInput> inputs;
  std::vector<AstStmt> stmts;
  AstId result = 0;
  bool one_line = false;   // `loss f(...) = expr`
  AstComments comments;    // before the definition / after its header line
  AstComments result_comments;
  std::vector<std::string> closing_comments;  // inside the block, after the result
};

struct AstFile {
  SourcePtr source;
  std::vector<AstExpr> exprs;
  std::vector<AstLoss> losses;
  std::vector<std::string> trailing_comments;  // after the last loss

  const AstExpr& at(AstId id) const { return exprs[id]; }
};

// A bare formula: `Neg(Log(Sig(X)))`.
struct AstFormula {
  SourcePtr source;
  std::vector<AstExpr> exprs;
  AstId root = 0;

  const AstExpr& at(AstId id) const { return exprs[id]; }
};

// Parsing (compiler/parse.cpp). Throws CompileError with every syntax error found.
AstFile parse_file(const SourcePtr& source);
AstFormula parse_formula(const SourcePtr& source);

}  // namespace lossforge
