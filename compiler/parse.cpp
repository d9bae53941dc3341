// Text -> AST through the ANTLR4 parser generated from grammar/LossDSL.g4.
//
// Before ANTLR sees the text it is checked for size, UTF-8 and bracket nesting,
// so that neither the runtime's UTF-8 decoder nor its recursive-descent parser
// can be driven into an exception or a stack overflow. Syntax errors are
// collected (the parser recovers and goes on) and thrown together.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <optional>

#include "LossDSLLexer.h"
#include "LossDSLParser.h"
#include "antlr4-runtime.h"
#include "compiler/ast.hpp"
#include "compiler/diagnostics.hpp"
#include "compiler/frontend.hpp"

namespace lossforge {
namespace {

using lossforge_grammar::LossDSLLexer;
using lossforge_grammar::LossDSLParser;
using P = LossDSLParser;

// Thrown to abandon a parse that has produced enough errors.
struct TooManyErrors {};

uint32_t code_points(std::string_view text) {
  uint32_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

SourceLoc begin_of(const antlr4::Token* t) {
  return {static_cast<uint32_t>(t->getLine()), static_cast<uint32_t>(t->getCharPositionInLine() + 1)};
}
SourceLoc end_of(const antlr4::Token* t) {
  SourceLoc at = begin_of(t);
  if (t->getType() == antlr4::Token::EOF) return at;
  return {at.line, at.col + code_points(t->getText())};
}
SourceRange range_of(const antlr4::Token* t) { return {begin_of(t), end_of(t)}; }
SourceRange range_of(antlr4::ParserRuleContext* ctx) {
  const antlr4::Token* stop = ctx->getStop();
  if (!stop || stop->getTokenIndex() < ctx->getStart()->getTokenIndex()) stop = ctx->getStart();
  return {begin_of(ctx->getStart()), end_of(stop)};
}

// ---- checks before ANTLR ------------------------------------------------------

void check_size(const SourceFile& file, DiagnosticSink& sink) {
  if (file.text().size() > limits::kMaxSourceBytes)
    sink.error({{1, 1}, {1, 1}},
               "file is " + std::to_string(file.text().size()) + " bytes; the limit is " +
                   std::to_string(limits::kMaxSourceBytes >> 20) + " MiB");
}

// Finds the first byte that is not well-formed UTF-8 (overlong forms, surrogates included).
void check_utf8(const SourceFile& file, DiagnosticSink& sink) {
  const std::string& s = file.text();
  uint32_t line = 1, col = 1;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; ok && k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (ok && ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
               (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF))
      ok = false;
    if (!ok) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", c);
      sink.error({{line, col}, {line, col + 1}},
                 std::string("invalid UTF-8 byte ") + hex + "; is this a binary file?");
      return;
    }
    if (c == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
    i += len;
  }
}

// ---- the token filter -----------------------------------------------------------

// Drops the newlines that cannot end a statement: inside ( ) or [ ], after a
// token that needs more to follow, and repeats. Checks bracket nesting as it goes.
class NewlineFilter : public antlr4::TokenSource {
 public:
  NewlineFilter(LossDSLLexer& lexer, DiagnosticSink& sink) : lexer_(lexer), sink_(sink) {}

  std::unique_ptr<antlr4::Token> nextToken() override {
    while (true) {
      std::unique_ptr<antlr4::Token> t = pending_ ? std::move(pending_) : lexer_.nextToken();
      if (t->getChannel() != antlr4::Token::DEFAULT_CHANNEL) return t;
      size_t type = t->getType();
      if (type == LossDSLLexer::NL) {
        if (parens_ > 0 || continues_after(previous_)) {
          if (!dropped_) dropped_ = std::move(t);
          continue;
        }
        dropped_.reset();
        previous_ = type;
        return t;
      }
      // `loss` only ever starts a definition. After a missing ')' or operand, the
      // newline dropped before it (or before the end) comes back and bracket
      // counting restarts: the error is reported at the end of the line where
      // the text stopped making sense, and the parser resumes at the next loss.
      if (type == LossDSLLexer::LOSS) parens_ = 0;
      if ((type == LossDSLLexer::LOSS || type == antlr4::Token::EOF) && dropped_ &&
          previous_ != LossDSLLexer::NL && previous_ != antlr4::Token::INVALID_TYPE) {
        pending_ = std::move(t);
        previous_ = LossDSLLexer::NL;
        return std::move(dropped_);
      }
      dropped_.reset();
      track_nesting(*t);
      previous_ = type;
      return t;
    }
  }
  size_t getLine() const override { return lexer_.getLine(); }
  size_t getCharPositionInLine() override { return lexer_.getCharPositionInLine(); }
  antlr4::CharStream* getInputStream() override { return lexer_.getInputStream(); }
  std::string getSourceName() override { return lexer_.getSourceName(); }
  antlr4::TokenFactory<antlr4::CommonToken>* getTokenFactory() override { return lexer_.getTokenFactory(); }
  bool too_deep() const { return too_deep_; }

 private:
  // Tokens after which a line cannot end: binary operators, separators, openers.
  bool continues_after(size_t type) const {
    const std::string text = literal(type);
    return type == LossDSLLexer::NL || type == antlr4::Token::INVALID_TYPE || type == LossDSLLexer::PLUS ||
           type == LossDSLLexer::MINUS || type == LossDSLLexer::STAR || type == LossDSLLexer::SLASH ||
           type == LossDSLLexer::CARET || type == LossDSLLexer::DOT || text == "'='" || text == "','" ||
           text == "':'" || text == "'{'" || text == "'('" || text == "'['";
  }
  std::string literal(size_t type) const { return lexer_.getVocabulary().getLiteralName(type); }
  void track_nesting(const antlr4::Token& t) {
    const std::string text = literal(t.getType());
    if (text == "'('" || text == "'['" || text == "'{'") {
      if (text != "'{'") ++parens_;
      if (++depth_ > limits::kMaxNesting && !too_deep_) {
        too_deep_ = true;
        sink_.error(range_of(&t), "brackets nest more than " + std::to_string(limits::kMaxNesting) +
                                      " deep here; split the expression with let");
      }
    } else if (text == "')'" || text == "']'" || text == "'}'") {
      if (text != "'}'" && parens_ > 0) --parens_;
      if (depth_ > 0) --depth_;
    }
  }

  LossDSLLexer& lexer_;
  DiagnosticSink& sink_;
  size_t previous_ = antlr4::Token::INVALID_TYPE;  // start of input: leading newlines go
  std::unique_ptr<antlr4::Token> dropped_;           // the first newline dropped since the last token
  std::unique_ptr<antlr4::Token> pending_;           // a `loss` held back behind that newline
  int parens_ = 0;
  int depth_ = 0;
  bool too_deep_ = false;
};

// ---- syntax errors --------------------------------------------------------------

std::string describe_token(size_t type, const antlr4::dfa::Vocabulary& vocabulary) {
  switch (type) {
    case antlr4::Token::EOF: return "end of input";
    case LossDSLLexer::NL: return "end of line";
    case LossDSLLexer::IDENT: return "a name";
    case LossDSLLexer::NUMBER: return "a number";
    case LossDSLLexer::ERROR_CHAR: return "a character";
  }
  std::string literal = vocabulary.getLiteralName(type);
  return literal.empty() ? vocabulary.getDisplayName(type) : literal;
}

std::string describe_found(const antlr4::Token* t) {
  switch (t->getType()) {
    case antlr4::Token::EOF: return "end of input";
    case LossDSLLexer::NL: return "end of line";
    default: return quote_token(t->getText());
  }
}

std::string describe_expected(const antlr4::misc::IntervalSet& set, const antlr4::dfa::Vocabulary& vocabulary) {
  std::vector<size_t> types;
  for (const auto& interval : set.getIntervals())
    for (ssize_t t = interval.a; t <= interval.b && types.size() < 64; ++t) types.push_back(static_cast<size_t>(t));
  auto has = [&](size_t t) { return std::find(types.begin(), types.end(), t) != types.end(); };
  std::vector<std::string> words;
  // Everything that can start an expression reads better as one word.
  bool expression = has(LossDSLLexer::NUMBER) && has(LossDSLLexer::IDENT) && has(LossDSLLexer::MINUS);
  if (expression) words.push_back("an expression");
  for (size_t t : types) {
    if (expression && (t == LossDSLLexer::NUMBER || t == LossDSLLexer::IDENT || t == LossDSLLexer::MINUS ||
                       describe_token(t, vocabulary) == "'('"))
      continue;
    if (t == LossDSLLexer::NL && has(antlr4::Token::EOF)) continue;
    words.push_back(describe_token(t, vocabulary));
  }
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += i + 1 == words.size() ? " or " : ", ";
    out += words[i];
  }
  return out;
}

class SyntaxErrorListener : public antlr4::BaseErrorListener {
 public:
  explicit SyntaxErrorListener(DiagnosticSink& sink) : sink_(sink) {}

  void syntaxError(antlr4::Recognizer* recognizer, antlr4::Token* offending, size_t line, size_t col,
                   const std::string& msg, std::exception_ptr) override {
    SourceRange where{{uint32_t(line), uint32_t(col + 1)}, {uint32_t(line), uint32_t(col + 2)}};
    std::string message;
    auto* parser = dynamic_cast<antlr4::Parser*>(recognizer);
    if (!offending || !parser) {
      message = "invalid text: " + msg;
    } else {
      where = range_of(offending);
      std::string expected = describe_expected(parser->getExpectedTokens(), parser->getVocabulary());
      if (offending->getType() == LossDSLLexer::ERROR_CHAR)
        message = "unexpected character " + quote_token(offending->getText());
      else if (msg.rfind("missing ", 0) == 0)  // ANTLR recovered by inserting a token
        message = "expected " + expected + " before " + describe_found(offending);
      else
        message = "unexpected " + describe_found(offending) + (expected.empty() ? "" : "; expected " + expected);
    }
    sink_.error(where, std::move(message));
    if (sink_.full()) throw TooManyErrors{};
  }

 private:
  DiagnosticSink& sink_;
};

// ---- parse tree -> AST ----------------------------------------------------------

AstExpr make_expr(AstExpr::Kind kind, SourceRange range, SourceRange name_range, std::string text) {
  AstExpr e;
  e.kind = kind;
  e.range = range;
  e.name_range = name_range;
  e.text = std::move(text);
  return e;
}

class AstBuilder {
 public:
  AstBuilder(std::vector<AstExpr>& exprs, DiagnosticSink& sink) : exprs_(exprs), sink_(sink) {}

  AstId expr(P::ExprContext* ctx) {
    return fold_left(ctx->term(), ctx->op, [&](P::TermContext* t) { return term(t); });
  }

  // The whole expression may nest at most kMaxExprDepth operators deep.
  void check_depth(AstId id) {
    const AstExpr& e = exprs_[id];
    if (e.depth > limits::kMaxExprDepth)
      sink_.error(e.range, "expression nests " + std::to_string(e.depth) + " operators deep; the limit is " +
                               std::to_string(limits::kMaxExprDepth) + " (split it with let)");
  }

  double number(antlr4::Token* token, bool negative) {
    std::string text;
    for (char c : token->getText())
      if (c != '_') text += c;
    double value = 0;
    std::from_chars_result r;
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
      r = std::from_chars(text.data() + 2, text.data() + text.size(), value, std::chars_format::hex);
    else
      r = std::from_chars(text.data(), text.data() + text.size(), value);
    if (r.ec == std::errc::result_out_of_range)
      sink_.error(range_of(token), "number " + quote_token(token->getText()) + " is out of range for a double");
    else if (r.ec != std::errc() || r.ptr != text.data() + text.size())
      sink_.error(range_of(token), "malformed number " + quote_token(token->getText()));
    return negative ? -value : value;
  }

 private:
  template <class Ctx, class Build>
  AstId fold_left(const std::vector<Ctx*>& operands, const std::vector<antlr4::Token*>& ops, Build build) {
    AstId lhs = build(operands.at(0));
    for (size_t i = 0; i < ops.size() && i + 1 < operands.size(); ++i)
      lhs = binary(ops[i], lhs, build(operands[i + 1]));
    return lhs;
  }

  AstId term(P::TermContext* ctx) {
    return fold_left(ctx->unary(), ctx->op, [&](P::UnaryContext* u) { return unary(u); });
  }

  AstId unary(P::UnaryContext* ctx) { return negate(ctx->MINUS(), power(ctx->power())); }

  AstId negate(const std::vector<antlr4::tree::TerminalNode*>& minus, AstId operand) {
    for (size_t i = minus.size(); i-- > 0;) {
      antlr4::Token* t = minus[i]->getSymbol();
      AstExpr e = make_expr(AstExpr::Kind::Unary, {begin_of(t), exprs_[operand].range.end}, range_of(t), "-");
      e.args = {operand};
      operand = add(std::move(e));
    }
    return operand;
  }

  // a ^ b ^ c is a ^ (b ^ c).
  AstId power(P::PowerContext* ctx) {
    std::vector<AstId> operands{postfix(ctx->postfix())};
    for (P::ExponentContext* e : ctx->exponent()) operands.push_back(negate(e->MINUS(), postfix(e->postfix())));
    auto carets = ctx->CARET();
    AstId rhs = operands.back();
    for (size_t i = operands.size() - 1; i-- > 0;) rhs = binary(carets[i]->getSymbol(), operands[i], rhs);
    return rhs;
  }

  AstId postfix(P::PostfixContext* ctx) {
    AstId object = primary(ctx->primary());
    for (auto* name : ctx->IDENT()) {
      antlr4::Token* t = name->getSymbol();
      AstExpr e = make_expr(AstExpr::Kind::Field, {exprs_[object].range.begin, end_of(t)}, range_of(t), t->getText());
      e.args = {object};
      object = add(std::move(e));
    }
    return object;
  }

  AstId primary(P::PrimaryContext* ctx) {
    if (auto* n = dynamic_cast<P::NumberContext*>(ctx)) {
      antlr4::Token* t = n->NUMBER()->getSymbol();
      AstExpr e = make_expr(AstExpr::Kind::Number, range_of(t), range_of(t), t->getText());
      e.number = number(t, false);
      return add(std::move(e));
    }
    if (auto* n = dynamic_cast<P::NameContext*>(ctx)) {
      antlr4::Token* t = n->IDENT()->getSymbol();
      return add(make_expr(AstExpr::Kind::Name, range_of(t), range_of(t), t->getText()));
    }
    if (auto* c = dynamic_cast<P::CallContext*>(ctx)) {
      AstExpr e = make_expr(AstExpr::Kind::Call, range_of(c), range_of(c->fn), c->fn->getText());
      for (auto* arg : c->expr()) e.args.push_back(expr(arg));
      return add(std::move(e));
    }
    auto* parens = dynamic_cast<P::ParensContext*>(ctx);
    AstId inner = expr(parens->expr());
    exprs_[inner].range = range_of(parens);  // the parentheses belong to the expression's extent
    return inner;
  }

  AstId binary(antlr4::Token* op, AstId lhs, AstId rhs) {
    AstExpr e = make_expr(AstExpr::Kind::Binary, {exprs_[lhs].range.begin, exprs_[rhs].range.end}, range_of(op), op->getText());
    e.args = {lhs, rhs};
    return add(std::move(e));
  }

  AstId add(AstExpr e) {
    uint32_t depth = 0;
    for (AstId a : e.args) depth = std::max(depth, exprs_[a].depth);
    e.depth = depth + 1;
    exprs_.push_back(std::move(e));
    return static_cast<AstId>(exprs_.size() - 1);
  }

  std::vector<AstExpr>& exprs_;
  DiagnosticSink& sink_;
};

// ---- comments ----------------------------------------------------------------

struct Comment {
  SourceLoc at;
  std::string text;
};

// Hands out the file's comments, in order, to the items they belong to.
class CommentAttacher {
 public:
  CommentAttacher(const SourceFile& file, std::vector<Comment> comments) : file_(file), comments_(std::move(comments)) {}

  // An item spanning `range`: earlier comments go before it, one on its last line after it.
  void attach(AstComments& out, SourceRange range) {
    uint32_t first_line = range.begin.line;
    while (next_ < comments_.size() && comments_[next_].at.line < range.end.line) {
      first_line = std::min(first_line, comments_[next_].at.line);
      out.before.push_back(comments_[next_++].text);
    }
    if (next_ < comments_.size() && comments_[next_].at.line == range.end.line &&
        comments_[next_].at.col >= range.end.col)
      out.after = comments_[next_++].text;
    else if (next_ < comments_.size() && comments_[next_].at.line == range.end.line)
      out.before.push_back(comments_[next_++].text);
    out.blank_line_before = blank_between(last_line_, first_line);
    last_line_ = range.end.line;
  }
  // Comments before `line` that belong to no item of their own.
  std::vector<std::string> take_until(uint32_t line) {
    std::vector<std::string> out;
    while (next_ < comments_.size() && comments_[next_].at.line <= line) out.push_back(comments_[next_++].text);
    return out;
  }
  void set_last_line(uint32_t line) { last_line_ = line; }

 private:
  bool blank_between(uint32_t after, uint32_t before) const {
    if (after == 0) return false;
    for (uint32_t l = after + 1; l < before; ++l)
      if (file_.line(l).find_first_not_of(" \t\r") == std::string_view::npos) return true;
    return false;
  }

  const SourceFile& file_;
  std::vector<Comment> comments_;
  size_t next_ = 0;
  uint32_t last_line_ = 0;
};

// ---- driver ---------------------------------------------------------------------

// Runs the checks, the lexer and the parser; calls `build` on the tree when the
// text is free of syntax errors. Throws CompileError otherwise.
template <class Entry, class Build>
void parse(const SourcePtr& source, Entry entry, Build build) {
  DiagnosticSink sink(source);
  check_size(*source, sink);
  if (sink.empty()) check_utf8(*source, sink);
  sink.throw_if_errors();

  antlr4::ANTLRInputStream input(source->text());
  input.name = source->name();
  LossDSLLexer lexer(&input);
  lexer.removeErrorListeners();
  NewlineFilter filter(lexer, sink);
  antlr4::CommonTokenStream tokens(&filter);
  tokens.fill();
  sink.throw_if_errors();  // nesting too deep: do not let the parser recurse into it

  LossDSLParser parser(&tokens);
  parser.removeErrorListeners();
  // Fast SLL prediction first; the full LL algorithm only for text that needs it.
  parser.setErrorHandler(std::make_shared<antlr4::BailErrorStrategy>());
  parser.getInterpreter<antlr4::atn::ParserATNSimulator>()->setPredictionMode(antlr4::atn::PredictionMode::SLL);
  typename std::invoke_result_t<Entry, LossDSLParser&> tree = nullptr;
  try {
    tree = entry(parser);
  } catch (const antlr4::ParseCancellationException&) {
    tokens.seek(0);
    parser.reset();
    SyntaxErrorListener listener(sink);
    parser.addErrorListener(&listener);
    parser.setErrorHandler(std::make_shared<antlr4::DefaultErrorStrategy>());
    parser.getInterpreter<antlr4::atn::ParserATNSimulator>()->setPredictionMode(antlr4::atn::PredictionMode::LL);
    try {
      tree = entry(parser);
    } catch (const TooManyErrors&) {
    }
    parser.removeErrorListeners();
    if (sink.empty()) sink.error({{1, 1}, {1, 1}}, "syntax error");
  }
  sink.throw_if_errors();

  std::vector<Comment> comments;
  for (antlr4::Token* t : tokens.getTokens())
    if (t->getType() == LossDSLLexer::COMMENT) comments.push_back({begin_of(t), t->getText()});
  build(tree, sink, std::move(comments));
  sink.throw_if_errors();
}

AstInput build_input(P::InputDeclContext* ctx) {
  AstInput in;
  in.pred = ctx->PRED() != nullptr;
  in.name = ctx->name->getText();
  in.range = range_of(ctx);
  in.name_range = range_of(ctx->name);
  P::TypeSpecContext* type = ctx->typeSpec();
  in.type_name = type->kind->getText();
  if (type->dim) in.width = type->dim->getText();
  in.type_range = range_of(type);
  return in;
}

}  // namespace

AstFile parse_file(const SourcePtr& source) {
  AstFile file;
  file.source = source;
  parse(source, [](LossDSLParser& p) { return p.file(); },
        [&](P::FileContext* tree, DiagnosticSink& sink, std::vector<Comment> comments) {
          AstBuilder build(file.exprs, sink);
          CommentAttacher attach(*source, std::move(comments));
          for (P::LossDefContext* def : tree->lossDef()) {
            AstLoss loss;
            loss.name = def->name->getText();
            loss.name_range = range_of(def->name);
            loss.range = range_of(def);
            for (P::InputDeclContext* in : def->inputDecl()) loss.inputs.push_back(build_input(in));
            if (P::ExprContext* e = def->expr()) {
              loss.one_line = true;
              attach.attach(loss.comments, loss.range);
              loss.result = build.expr(e);
              build.check_depth(loss.result);
              file.losses.push_back(std::move(loss));
              continue;
            }
            P::BlockContext* block = def->block();
            attach.attach(loss.comments, {loss.range.begin, end_of(block->getStart())});
            for (P::StmtContext* s : block->stmt()) {
              AstStmt stmt;
              stmt.range = range_of(s);
              attach.attach(stmt.comments, stmt.range);
              if (auto* let = dynamic_cast<P::LetStmtContext*>(s)) {
                stmt.kind = AstStmt::Kind::Let;
                stmt.name = let->name->getText();
                stmt.name_range = range_of(let->name);
                stmt.expr = build.expr(let->expr());
                build.check_depth(stmt.expr);
              } else {
                auto* param = dynamic_cast<P::ParamStmtContext*>(s);
                P::SignedNumberContext* value = param->signedNumber();
                stmt.kind = AstStmt::Kind::Param;
                stmt.name = param->name->getText();
                stmt.name_range = range_of(param->name);
                stmt.value = build.number(value->NUMBER()->getSymbol(), value->MINUS() != nullptr);
                stmt.value_text = value->getText();
              }
              loss.stmts.push_back(std::move(stmt));
            }
            P::ExprContext* result = block->expr();
            attach.attach(loss.result_comments, range_of(result));
            loss.result = build.expr(result);
            build.check_depth(loss.result);
            uint32_t close_line = end_of(block->getStop()).line;
            loss.closing_comments = attach.take_until(close_line);
            attach.set_last_line(close_line);
            file.losses.push_back(std::move(loss));
          }
          file.trailing_comments = attach.take_until(UINT32_MAX);
        });
  return file;
}

AstFormula parse_formula(const SourcePtr& source) {
  AstFormula formula;
  formula.source = source;
  parse(source, [](LossDSLParser& p) { return p.expression(); },
        [&](P::ExpressionContext* tree, DiagnosticSink& sink, std::vector<Comment>) {
          AstBuilder build(formula.exprs, sink);
          formula.root = build.expr(tree->expr());
          build.check_depth(formula.root);
        });
  return formula;
}

}  // namespace lossforge
