#include "compiler/format.hpp"

#include "compiler/ast.hpp"
#include "compiler/lower.hpp"
#include "compiler/print.hpp"

namespace lossforge {
namespace {

void emit_comments(std::string& out, const AstComments& comments, std::string_view indent, bool first) {
  if (comments.blank_line_before && !first) out += "\n";
  for (const std::string& c : comments.before) out += std::string(indent) + c + "\n";
}

void end_line(std::string& out, const AstComments& comments) {
  if (!comments.after.empty()) out += "  " + comments.after;
  out += "\n";
}

}  // namespace

std::string format_source(const SourcePtr& source) {
  AstFile file = parse_file(source);
  Module module = lower_file(file);
  std::string out;
  for (size_t i = 0; i < file.losses.size(); ++i) {
    const AstLoss& ast = file.losses[i];
    const Loss& loss = module.losses[i];
    if (i > 0) out += "\n";  // one blank line between losses
    emit_comments(out, {ast.comments.before, "", false}, "", true);
    NameMap names;
    if (ast.one_line) {
      out += "loss " + signature(loss) + " = " + to_infix(loss.body, names);
      end_line(out, ast.comments);
      continue;
    }
    out += "loss " + signature(loss) + " {";
    end_line(out, ast.comments);
    size_t next_param = 0, next_let = 0;
    bool first = true;
    for (const AstStmt& s : ast.stmts) {
      emit_comments(out, s.comments, "  ", first);
      first = false;
      if (s.kind == AstStmt::Kind::Param) {
        out += "  param " + s.name + " = " + format_number(loss.params[next_param++].value);
      } else {
        const NamedExpr& let = loss.lets[next_let++];
        out += "  let " + s.name + " = " + to_infix(let.expr, names);
        if (!let.expr->is_leaf()) names.emplace(let.expr.get(), let.name);
      }
      end_line(out, s.comments);
    }
    emit_comments(out, ast.result_comments, "  ", first);
    out += "  " + to_infix(loss.body, names);
    end_line(out, ast.result_comments);
    for (const std::string& c : ast.closing_comments) out += "  " + c + "\n";
    out += "}\n";
  }
  if (!file.trailing_comments.empty()) {
    if (!out.empty()) out += "\n";
    for (const std::string& c : file.trailing_comments) out += c + "\n";
  }
  return out;
}

}  // namespace lossforge
