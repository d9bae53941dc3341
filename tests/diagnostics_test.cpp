// The catalogue of front-end diagnostics: for each bad input, the message and
// the line:column of the first diagnostic (and of the others where one run
// reports several), then the rendered text: file:line:col: error: ..., the
// source line, and the caret under the right column, also after tabs and
// non-ASCII text.
#include "compiler/diagnostics.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "compiler/frontend.hpp"

namespace lossforge {
namespace {

struct Expected {
  std::string message;  // a substring of the diagnostic's message
  uint32_t line;
  uint32_t col;
};

struct Case {
  std::string name;
  std::string source;
  std::vector<Expected> diagnostics;  // the diagnostics the run reports, in order
  std::string preset = {};            // a bare formula over this preset; empty: a .loss file
  bool exhaustive = true;             // false: only the first ones are checked
};

// Most headers below, "loss f(pred x: real) = ", are 23 columns wide: the body starts in column 24.
std::vector<Case> catalogue() {
  return {
      // ---- syntax -------------------------------------------------------------
      {"MissingCloseParen",
       "loss f(pred x: real) = log(x + 1\n",
       {{"unexpected end of line; expected ',' or ')'", 1, 33}}},
      {"MissingCloseParenAtEnd", "loss f(pred x: real) = (x + 1", {{"expected ')' before end of input", 1, 30}}},
      {"MissingCloseParenBeforeNextLoss",
       "loss f(pred x: real) = log(x\nloss g(pred x: real) = x $ 2\n",
       {{"unexpected end of line; expected ',' or ')'", 1, 29}, {"unexpected character '$'", 2, 26}}},
      {"UnexpectedToken",
       "loss f(pred x: real) = x y\n",
       {{"unexpected 'y'; expected end of input, ';' or 'loss'", 1, 26}}},
      {"UnexpectedCloseParen", "loss f(pred x: real) = x )\n", {{"unexpected ')'", 1, 26}}},
      {"MissingExpression", "loss f(pred x: real) = \n", {{"unexpected end of line; expected an expression", 1, 24}}},
      {"MissingOperand", "loss f(pred x: real) = x + * 2\n", {{"unexpected '*'; expected an expression", 1, 28}}},
      {"MissingOperandAtEndOfLine",
       "loss f(pred x: real) = x +\nloss g(pred x: real) = x\n",
       {{"unexpected end of line; expected an expression", 1, 27}}},
      {"EmptyParentheses", "loss f(pred x: real) = ()\n", {{"unexpected ')'; expected an expression", 1, 25}}},
      {"MissingArgument", "loss f(pred x: real) = max(x,)\n", {{"unexpected ')'; expected an expression", 1, 30}}},
      {"MissingLossName", "loss (pred x: real) = x\n", {{"expected a name before '('", 1, 6}}},
      {"MissingColon", "loss f(pred x real) = x\n", {{"expected ':' before 'real'", 1, 15}}},
      {"MissingBody", "loss f(pred x: real)", {{"unexpected end of input; expected '=', '{' or end of line", 1, 21}}},
      {"MissingCloseBracket", "loss f(pred x: real[C) = sum(x)\n", {{"expected ']' before ')'", 1, 22}}},
      {"StatementOutsideLoss", "let a = 2\n", {{"unexpected 'let'", 1, 1}}},
      {"FieldNameMissing", "loss f(pred p: box) = p.\n", {{"expected a name before end of line", 1, 25}}},
      {"ParamNeedsNumber",
       "loss f(pred x: real) {\n  param k = x\n  k\n}\n",
       {{"unexpected 'x'; expected '-' or a number", 2, 13}}},
      // The parser then also reports the end of input inside the block (a follow-on error).
      {"BlockWithoutResult",
       "loss f(pred x: real) {\n  let a = x\n}\n",
       {{"unexpected '}'; expected an expression, 'let', 'param' or end of line", 3, 1}},
       "",
       false},
      {"BadCharacter", "loss f(pred x: real) = x $ 2\n", {{"unexpected character '$'", 1, 26}}},
      {"BadCharacterNonAscii", "loss f(pred x: real) = x \xC3\x97 2\n", {{"unexpected character '\xC3\x97'", 1, 26}}},
      {"ControlCharacter", "loss f(pred x: real) = x \x01 2\n", {{"unexpected character '\\x01'", 1, 26}}},
      {"UnterminatedBlock",
       "loss f(pred x: real) {\n  x\n",
       {{"unexpected end of input; expected ';', '}' or end of line", 3, 1}}},
      {"UnterminatedBlockBeforeNextLoss",
       "loss f(pred x: real) {\n  x\nloss g(pred x: real) = x\n",
       {{"unexpected 'loss'; expected ';', '}' or end of line", 3, 1}}},
      {"NumberTooLarge",
       "loss f(pred x: real) = x * 1e999\n",
       {{"number '1e999' is out of range for a double", 1, 28}}},
      {"NumberTooSmall",
       "loss f(pred x: real) = x * 1e-999\n",
       {{"number '1e-999' is out of range for a double", 1, 28}}},
      {"ParamTooLarge",
       "loss f(pred x: real) {\n  param k = -1e400\n  k * x\n}\n",
       {{"number '1e400' is out of range for a double", 2, 14}}},
      {"HexNumberTooLarge", "loss f(pred x: real) = 0x1p99999\n", {{"number '0x1p99999' is out of range", 1, 24}}},
      {"NumberFollowedByDot", "loss f(pred x: real) = 1.5.5\n", {{"unexpected '.5'", 1, 27}}},
      {"InvalidUtf8",
       "loss f(pred x: real) = x\n# caf\xC3\xA9 \xFF\n",
       {{"invalid UTF-8 byte 0xFF; is this a binary file?", 2, 8}}},
      {"OverlongUtf8", "loss f(pred x: real) = x \xC0\xAF\n", {{"invalid UTF-8 byte 0xC0", 1, 26}}},
      {"SurrogateUtf8", "# \xED\xA0\x80\n", {{"invalid UTF-8 byte 0xED", 1, 3}}},
      {"TruncatedUtf8", "loss f(pred x: real) = x # \xE2\x88", {{"invalid UTF-8 byte 0xE2", 1, 28}}},

      // ---- names ----------------------------------------------------------------
      {"UnknownNameDidYouMean",
       "loss f(pred x: real, y: real) {\n  let prob = sigmoid(x)\n  prb * y\n}\n",
       {{"unknown name 'prb'; did you mean 'prob'?", 3, 3}}},
      {"UnknownNameNoGuess", "loss f(pred x: real) = x * zzzzzz\n", {{"unknown name 'zzzzzz'", 1, 28}}},
      {"UnknownFunctionDidYouMean",
       "loss f(pred x: real) = sigmod(x)\n",
       {{"unknown function 'sigmod'; did you mean 'sigmoid'?", 1, 24}}},
      {"UnknownDeapFunctionDidYouMean",
       "Neg(Lg(Sig(X)))",
       {{"unknown function 'Lg'; did you mean 'log'?", 1, 5}},
       "binary_cls"},
      {"UnknownPresetName", "Neg(Log(Sig(W)))", {{"unknown name 'W'", 1, 13}}, "binary_cls"},
      {"WrongArityTooMany", "loss f(pred x: real, y: real) = log(x, y)\n", {{"'log' takes 1 argument, got 2", 1, 33}}},
      {"WrongArityTooFew", "loss f(pred x: real) = clamp(x, 1)\n", {{"'clamp' takes 3 arguments, got 2", 1, 24}}},
      {"WrongArityNone", "loss f(pred x: real) = log()\n", {{"'log' takes 1 argument, got 0", 1, 24}}},
      {"WrongArityDeap", "Add(X)", {{"'Add' takes 2 arguments, got 1", 1, 1}}, "binary_cls"},
      {"DuplicateLoss", "loss f(pred x: real) = x\nloss f(pred y: real) = y\n", {{"duplicate loss 'f'", 2, 6}}},
      {"DuplicateInput", "loss f(pred x: real, x: real) = x\n", {{"duplicate input 'x'", 1, 22}}},
      {"DuplicateLet",
       "loss f(pred x: real) {\n  let a = x\n  let a = 2 * x\n  a\n}\n",
       {{"'a' is already defined as a let on line 2", 3, 7}}},
      {"DuplicateParam",
       "loss f(pred x: real) {\n  param k = 1\n  param k = 2\n  k * x\n}\n",
       {{"'k' is already defined as a param on line 2", 3, 9}}},
      {"LetShadowsInput",
       "loss f(pred x: real) {\n  let x = 1\n  x\n}\n",
       {{"'x' is already defined as an input on line 1", 2, 7}}},
      {"ParamShadowsLet",
       "loss f(pred x: real) {\n  let a = x\n  param a = 1\n  a\n}\n",
       {{"'a' is already defined as a let on line 2", 3, 9}}},
      {"LetRefersToItself",
       "loss f(pred x: real) {\n  let a = a + 1\n  a * x\n}\n",
       {{"let 'a' refers to itself", 2, 11}}},
      {"UseBeforeLet",
       "loss f(pred x: real) {\n  let a = b\n  let b = x\n  a\n}\n",
       {{"'b' is used before its let on line 3", 2, 11}}},
      {"CallingAnInput", "loss f(pred x: real) = x(1)\n", {{"'x' is an input, not a function", 1, 24}}},
      {"CallingALet", "loss f(pred x: real) {\n  let a = x\n  a(x)\n}\n", {{"'a' is a let, not a function", 3, 3}}},
      {"CallingAParam",
       "loss f(pred x: real) {\n  param k = 2\n  k(x)\n}\n",
       {{"'k' is a param, not a function", 3, 3}}},
      {"CallingAPresetName", "X(1)", {{"'X' is a preset name, not a function", 1, 1}}, "binary_cls"},
      {"FunctionAsValue", "loss f(pred x: real) = log + x\n", {{"'log' is a function; call it as log(...)", 1, 24}}},
      {"DeapFunctionAsValue", "Add(Sig, X)", {{"'Sig' is a function; call it as Sig(...)", 1, 5}}, "binary_cls"},

      // ---- types ----------------------------------------------------------------
      {"SoftmaxOfReal",
       "loss f(pred x: real) = sum(softmax(x))\n",
       {{"'softmax' takes a real[C] row, got real", 1, 36}}},
      {"DotOfReal", "loss f(pred x: real, y: real) = dot(x, y)\n", {{"'dot' takes a real[C] row, got real", 1, 37}}},
      {"DotOfRowAndReal",
       "loss f(pred x: real[C], y: real) = dot(x, y)\n",
       {{"'dot' takes a real[C] row, got real", 1, 43}}},
      {"FieldOfReal", "loss f(pred x: real) = x.x1\n", {{"field .x1 of a real value; only boxes have fields", 1, 24}}},
      {"FieldOfRow",
       "loss f(pred x: real[C]) = sum(x.y2)\n",
       {{"field .y2 of a real[C] value; only boxes have fields", 1, 31}}},
      {"UnknownField", "loss f(pred p: box) = p.w\n", {{"unknown box field 'w'; a box has x1, y1, x2 and y2", 1, 25}}},
      {"RowAsResult",
       "loss f(pred x: real[C], y: real[C]) = x * y\n",
       {{"loss 'f' must give one real per element or row, got real[C]; reduce the row with sum, mean or dot", 1, 39}}},
      {"BoxAsResult",
       "loss f(pred p: box) = p\n",
       {{"loss 'f' must give one real per element or row, got box", 1, 23}}},
      {"RowAsFormulaResult",
       "Softmax(X)",
       {{"loss 'formula' must give one real per element or row, got real[C]", 1, 1}},
       "multi_cls"},
      {"RowWidthMismatch",
       "loss f(pred x: real[C], k: real[K]) = sum(x + k)\n",
       {{"'+' of real[C] and real[K]: row widths differ", 1, 47}}},
      {"RowWidthMismatchDot",
       "loss f(pred x: real[C], k: real[K]) = dot(x, k)\n",
       {{"'dot' of real[C] and real[K]: row widths differ", 1, 46}}},
      {"RowWidthNumberVersusName",
       "loss f(pred x: real[3], y: real[C]) = dot(x, y)\n",
       {{"'dot' of real[3] and real[C]: row widths differ", 1, 46}}},
      {"BoxInArithmetic",
       "loss f(pred p: box, g: box) = p - g\n",
       {{"'-' takes real or real[C] values, got box (use a field such as .x1, or area/inter/iou)", 1, 31}}},
      {"BoxNegated", "loss f(pred p: box) = -p\n", {{"'-' takes real or real[C] values, got box", 1, 24}}},
      {"BoxInFunction", "loss f(pred p: box) = log(p)\n", {{"'log' takes real or real[C] values, got box", 1, 27}}},
      {"RealInBoxFunction", "loss f(pred x: real, g: box) = iou(g, x)\n", {{"'iou' takes boxes, got real", 1, 39}}},
      {"DeapBoxInArithmetic", "Add(P, 1)", {{"'add' takes real or real[C] values, got box", 1, 5}}, "reg"},
      {"UnknownType",
       "loss f(pred x: float) = x\n",
       {{"unknown type 'float'; the types are real, real[C] and box", 1, 16}}},
      {"BoxWithWidth", "loss f(pred p: box[4]) = area(p)\n", {{"a box has no width; write 'box'", 1, 16}}},
      {"RealWidthZero",
       "loss f(pred x: real[0]) = sum(x)\n",
       {{"row width '0' must be a positive integer or a name such as C", 1, 16}}},
      {"RealWidthFraction",
       "loss f(pred x: real[1.5]) = sum(x)\n",
       {{"row width '1.5' must be a positive integer", 1, 16}}},
      {"RealWidthTooLarge", "loss f(pred x: real[16777217]) = sum(x)\n", {{"row width '16777217' must be", 1, 16}}},
      {"LossWithoutInputs", "loss n() = 1\n", {{"loss 'n' has no inputs", 1, 6}}},

      // ---- several errors in one run --------------------------------------------
      {"SeveralSyntaxErrors",
       "loss a(pred x: real) = x $ 2\nloss b(pred x: real) = x @ 3\nloss c(pred x real) = x\nloss d(pred x: real) = "
       "(x\n",
       {{"unexpected character '$'", 1, 26},
        {"unexpected character '@'", 2, 26},
        {"expected ':' before 'real'", 3, 15},
        {"expected ')' before end of line", 4, 26}}},
      {"SeveralNameErrors",
       "loss a(pred x: real) = sigmod(x)\nloss b(pred x: real) = y\nloss a(pred x: real) = x\n"
       "loss c(pred x: real, y: real) {\n  let t = t\n  log(x, y) + u\n}\n",
       {{"unknown function 'sigmod'; did you mean 'sigmoid'?", 1, 24},
        {"unknown name 'y'; did you mean 'x'?", 2, 24},
        {"duplicate loss 'a'", 3, 6},
        {"let 't' refers to itself", 5, 11},
        {"'log' takes 1 argument, got 2", 6, 3},
        {"unknown name 'u'", 6, 15}}},
      {"SeveralTypeErrorsInOneExpression",
       "loss f(pred x: real, p: box, k: real[K]) = softmax(x) + p.x1 * p + k.x1 + iou(x, p)\n",
       {{"'softmax' takes a real[C] row, got real", 1, 52},
        {"'*' takes real or real[C] values, got box", 1, 64},
        {"field .x1 of a real[K] value", 1, 68},
        {"'iou' takes boxes, got real", 1, 79}}},
      {"SeveralSignatureErrors",
       "loss t(a: foo, b: box[4], c: real[0], a: real) = 1\n",
       {{"unknown type 'foo'", 1, 11},
        {"a box has no width", 1, 19},
        {"row width '0'", 1, 30},
        {"duplicate input 'a'", 1, 39}}},
      // A let with an error is reported once; its uses stay quiet.
      {"ErrorInLetReportedOnce",
       "loss f(pred x: real) {\n  let a = sigmod(x)\n  a * a + a\n}\n",
       {{"unknown function 'sigmod'", 2, 11}}},
  };
}

class Diagnostics : public ::testing::TestWithParam<Case> {};

TEST_P(Diagnostics, MessagesAndLocations) {
  const Case& c = GetParam();
  std::optional<CompileError> error;
  try {
    if (c.preset.empty())
      load_module(SourceFile::from_text("test.loss", c.source));
    else
      load_formula(SourceFile::from_text("<arg>", c.source), *find_preset(c.preset));
  } catch (const CompileError& e) {
    error = e;
  }
  ASSERT_TRUE(error) << "accepted: " << c.source;
  const std::vector<Diagnostic>& got = error->diagnostics();
  if (c.exhaustive)
    EXPECT_EQ(got.size(), c.diagnostics.size()) << error->what();
  else
    EXPECT_GE(got.size(), c.diagnostics.size()) << error->what();
  for (size_t i = 0; i < std::min(got.size(), c.diagnostics.size()); ++i) {
    const Expected& want = c.diagnostics[i];
    EXPECT_NE(got[i].message.find(want.message), std::string::npos)
        << "diagnostic " << i << ": '" << got[i].message << "' lacks '" << want.message << "'";
    EXPECT_EQ(got[i].range.begin.line, want.line) << "diagnostic " << i << ": " << got[i].message;
    EXPECT_EQ(got[i].range.begin.col, want.col) << "diagnostic " << i << ": " << got[i].message;
  }
}

INSTANTIATE_TEST_SUITE_P(Catalogue, Diagnostics, ::testing::ValuesIn(catalogue()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

// ---- rendering ------------------------------------------------------------------

CompileError error_of(const std::string& name, const std::string& source) {
  try {
    load_module(SourceFile::from_text(name, source));
  } catch (const CompileError& e) {
    return e;
  }
  throw std::logic_error("accepted: " + source);
}

std::string rendered(const CompileError& e, size_t i) { return render(e.diagnostics().at(i), e.file()); }

TEST(DiagnosticsRendering, FileLineColumnSourceLineAndCaret) {
  CompileError e = error_of("focal.loss", "loss focal(pred x: real) {\n  let p = sigmod(x)\n  p\n}\n");
  EXPECT_EQ(std::string(e.what()),
            "focal.loss:2:11: error: unknown function 'sigmod'; did you mean 'sigmoid'?\n"
            " 2 |   let p = sigmod(x)\n"
            "   |           ^~~~~~");
}

TEST(DiagnosticsRendering, SeveralDiagnosticsInOrder) {
  CompileError e = error_of("a.loss", "loss a(pred x: real) = x $ 2\nloss b(pred x: real) = x @ 3\n");
  EXPECT_EQ(std::string(e.what()),
            "a.loss:1:26: error: unexpected character '$'\n"
            " 1 | loss a(pred x: real) = x $ 2\n"
            "   |                          ^\n"
            "a.loss:2:26: error: unexpected character '@'\n"
            " 2 | loss b(pred x: real) = x @ 3\n"
            "   |                          ^");
}

TEST(DiagnosticsRendering, CaretAfterTabsKeepsTheTabs) {
  CompileError e = error_of("t.loss", "loss f(pred x: real) {\n\tlet p = sigmod(x)\t+ y\n\tp\n}\n");
  ASSERT_EQ(e.diagnostics().size(), 2u);
  EXPECT_EQ(rendered(e, 0),
            "t.loss:2:10: error: unknown function 'sigmod'; did you mean 'sigmoid'?\n"
            " 2 | \tlet p = sigmod(x)\t+ y\n"
            "   | \t        ^~~~~~\n");
  EXPECT_EQ(rendered(e, 1),
            "t.loss:2:22: error: unknown name 'y'; did you mean 'x'?\n"
            " 2 | \tlet p = sigmod(x)\t+ y\n"
            "   | \t                 \t  ^\n");
}

TEST(DiagnosticsRendering, CaretAfterNonAsciiCountsCodePoints) {
  // 'é' is two bytes and '∑' three, but one column each.
  const std::string line = "loss f(pred x: real) = \xC3\xA9 + \xE2\x88\x91 + x $ 2";
  CompileError e = error_of("u.loss", line + "\n");
  ASSERT_EQ(e.diagnostics().size(), 3u);
  EXPECT_EQ(rendered(e, 0),
            "u.loss:1:24: error: unexpected character '\xC3\xA9'\n"
            " 1 | " +
                line +
                "\n"
                "   |                        ^\n");
  EXPECT_EQ(rendered(e, 1),
            "u.loss:1:28: error: unexpected character '\xE2\x88\x91'\n"
            " 1 | " +
                line +
                "\n"
                "   |                            ^\n");
  EXPECT_EQ(rendered(e, 2),
            "u.loss:1:34: error: unexpected character '$'\n"
            " 1 | " +
                line +
                "\n"
                "   |                                  ^\n");
}

TEST(DiagnosticsRendering, InvalidUtf8AfterNonAscii) {
  CompileError e = error_of("b.loss", "loss f(pred x: real) = x  # \xE2\x88\x91 \xFF\n");
  ASSERT_EQ(e.diagnostics().size(), 1u);
  EXPECT_EQ(e.diagnostics()[0].range.begin.col, 31u);
  const std::string text = rendered(e, 0);
  EXPECT_EQ(text.substr(text.rfind("\n", text.size() - 2) + 1), "   |                               ^\n");
}

TEST(DiagnosticsRendering, NoteLine) {
  CompileError e = error_of("d.loss", "loss f(pred x: real) = x\nloss f(pred y: real) = y\n");
  EXPECT_EQ(std::string(e.what()),
            "d.loss:2:6: error: duplicate loss 'f'\n"
            " 2 | loss f(pred y: real) = y\n"
            "   |      ^\n"
            "   = note: first defined on line 1");
}

TEST(DiagnosticsRendering, WideLineNumbersWidenTheGutter) {
  std::string source(99, '\n');
  source += "loss f(pred x: real) = y\n";
  CompileError e = error_of("w.loss", source);
  EXPECT_EQ(std::string(e.what()),
            "w.loss:100:24: error: unknown name 'y'; did you mean 'x'?\n"
            " 100 | loss f(pred x: real) = y\n"
            "     |                        ^");
}

TEST(DiagnosticsRendering, CrLfLineEndingsAreNotShown) {
  CompileError e = error_of("c.loss", "loss f(pred x: real) = x\r\nloss g(pred x: real) = zz\r\n");
  EXPECT_EQ(std::string(e.what()),
            "c.loss:2:24: error: unknown name 'zz'\n"
            " 2 | loss g(pred x: real) = zz\n"
            "   |                        ^~");
}

TEST(DiagnosticsRendering, CaretAtTheEndOfALine) {
  CompileError e = error_of("e.loss", "loss f(pred x: real) = log(x\nloss g(pred x: real) = x\n");
  EXPECT_EQ(std::string(e.what()),
            "e.loss:1:29: error: unexpected end of line; expected ',' or ')'\n"
            " 1 | loss f(pred x: real) = log(x\n"
            "   |                             ^");
}

TEST(DiagnosticsRendering, RangeOverSeveralLinesGetsOneCaret) {
  CompileError e = error_of("m.loss", "loss f(pred x: real[C]) = x +\n  x\n");
  EXPECT_EQ(std::string(e.what()),
            "m.loss:1:27: error: loss 'f' must give one real per element or row, got real[C]; reduce the row with sum, "
            "mean or dot\n"
            " 1 | loss f(pred x: real[C]) = x +\n"
            "   |                           ^");
}

TEST(DiagnosticsRendering, LongLinesAreShownAroundTheCaret) {
  std::string sum = "x";
  for (int i = 0; i < 100; ++i) sum += " + x";
  CompileError e = error_of("l.loss", "loss f(pred x: real) = " + sum + " + zz\n");
  const std::string text = e.what();
  // The caret is at column 428: 100 columns from the line's start are elided as "...".
  EXPECT_EQ(e.diagnostics()[0].range.begin.col, 428u);
  const size_t line_start = text.find("\n 1 | ") + 1;
  const size_t caret_start = text.find("\n   | ") + 1;
  const std::string shown = text.substr(line_start, caret_start - line_start - 1);
  const std::string marks = text.substr(caret_start);
  EXPECT_EQ(shown.substr(0, 8), " 1 | ...");
  EXPECT_LE(shown.size(), 6 + 3 + 200u);
  // The caret sits under the 'zz' of the shown text.
  ASSERT_NE(marks.find('^'), std::string::npos);
  EXPECT_EQ(shown.substr(marks.find('^'), 2), "zz");
}

TEST(DiagnosticsRendering, TooManyErrorsSaysWhereItStopped) {
  std::string source;
  for (int i = 1; i <= 30; ++i) source += "loss f" + std::to_string(i) + "(pred x: real) = nope\n";
  CompileError e = error_of("many.loss", source);
  EXPECT_EQ(e.diagnostics().size(), DiagnosticSink::kMaxErrors);
  const std::string text = e.what();
  EXPECT_EQ(text.substr(text.rfind('\n') + 1), "many.loss: too many errors; stopped after 20");
}

TEST(DiagnosticsRendering, FormulaDiagnosticsNameTheArgument) {
  try {
    load_formula(SourceFile::from_text("<arg>", "Neg(Log(Sigmod(X)))"), *find_preset("binary_cls"));
    FAIL() << "accepted";
  } catch (const CompileError& e) {
    EXPECT_EQ(std::string(e.what()),
              "<arg>:1:9: error: unknown function 'Sigmod'; did you mean 'sigmoid'?\n"
              " 1 | Neg(Log(Sigmod(X)))\n"
              "   |         ^~~~~~");
  }
}

}  // namespace
}  // namespace lossforge
