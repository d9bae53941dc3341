// Hostile and accidental inputs to the front end: enormous nesting, sums and
// chains, let DAGs that are exponential as trees, binary garbage, NUL bytes,
// huge identifiers and files, floods of errors. Each must finish without a
// crash, stack overflow or hang, and give either the expected clean result or
// a CompileError whose first diagnostic has the expected message and location.
// No timing asserts; the 10 MB case prints what it took.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <random>
#include <string>

#include "compiler/diagnostics.hpp"
#include "compiler/format.hpp"
#include "compiler/frontend.hpp"
#include "compiler/print.hpp"
#include "runtime/interpreter.hpp"

namespace lossforge {
namespace {

SourcePtr text(std::string s, std::string name = "test.loss") {
  return SourceFile::from_text(std::move(name), std::move(s));
}

std::string repeat(std::string_view piece, size_t n) {
  std::string out;
  out.reserve(piece.size() * n);
  for (size_t i = 0; i < n; ++i) out += piece;
  return out;
}

// The CompileError that `run` throws; fails the test if it throws nothing or something else.
std::optional<CompileError> compile_error(const std::function<void()>& run) {
  try {
    run();
  } catch (const CompileError& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected a CompileError, got: " << e.what();
    return std::nullopt;
  }
  ADD_FAILURE() << "expected a CompileError, but the text was accepted";
  return std::nullopt;
}

// The first diagnostic contains `message` and starts at line:col.
void expect_first(const std::optional<CompileError>& error, std::string_view message, uint32_t line, uint32_t col) {
  ASSERT_TRUE(error.has_value());
  ASSERT_FALSE(error->diagnostics().empty());
  const Diagnostic& d = error->diagnostics().front();
  EXPECT_NE(d.message.find(message), std::string::npos) << "message: " << d.message.substr(0, 500);
  EXPECT_EQ(d.range.begin.line, line) << d.message.substr(0, 500);
  EXPECT_EQ(d.range.begin.col, col) << d.message.substr(0, 500);
  EXPECT_LE(error->diagnostics().size(), DiagnosticSink::kMaxErrors);
}

EvalOptions gradients() {
  EvalOptions options;
  options.gradients = true;
  return options;
}

Module load(std::string s) { return load_module(text(std::move(s))); }
Loss formula(std::string s, std::string_view preset) {
  return load_formula(text(std::move(s), "<arg>"), *find_preset(preset));
}

// "loss f(pred x: real) = " is 23 columns: the expression starts in column 24.
constexpr std::string_view kHeader = "loss f(pred x: real) = ";
constexpr uint32_t kBodyCol = 24;

// ---- nesting and long chains ---------------------------------------------------

TEST(Pathological, TwoHundredThousandNestedParentheses) {
  const size_t n = 200'000;
  std::string body = repeat("(", n) + "x" + repeat(")", n);
  // The nesting check runs before the parser and points at the first bracket too many.
  expect_first(compile_error([&] { load(std::string(kHeader) + body); }), "brackets nest more than 256 deep here", 1,
               kBodyCol + 256);
  expect_first(compile_error([&] { formula(body, "binary_cls"); }), "brackets nest more than 256 deep here", 1, 257);
}

TEST(Pathological, TwoHundredThousandNestedCalls) {
  const size_t n = 200'000;
  std::string body = repeat("log(", n) + "x" + repeat(")", n);
  expect_first(compile_error([&] { load(std::string(kHeader) + body); }), "brackets nest more than 256 deep here", 1,
               kBodyCol + 4 * 256 + 3);
}

TEST(Pathological, NestingAtTheLimitParses) {
  std::string body = repeat("(", 256) + "x" + repeat(")", 256);
  Module m = load(std::string(kHeader) + body);
  ASSERT_EQ(m.losses.size(), 1u);
  EXPECT_EQ(m.losses[0].body->op(), Op::Input);
  expect_first(compile_error([&] { load(std::string(kHeader) + "(" + body + ")"); }), "brackets nest more than 256", 1,
               kBodyCol + 256);
}

TEST(Pathological, TwoHundredThousandTermSum) {
  std::string body = "x" + repeat(" + x", 199'999);
  // The grammar reads the sum as a loop (no recursion); the AST is 199,999 additions deep.
  expect_first(compile_error([&] { load(std::string(kHeader) + body); }),
               "expression nests 200000 operators deep; the limit is 1000 (split it with let)", 1, kBodyCol);
  expect_first(compile_error([&] { formula("X" + repeat(" + X", 199'999), "binary_cls"); }),
               "expression nests 200000 operators deep", 1, 1);
}

TEST(Pathological, SumUpToTheDepthLimitEvaluates) {
  Module m = load(std::string(kHeader) + "x" + repeat(" + x", 998));
  ASSERT_EQ(m.losses.size(), 1u);
  Array<double> x(2, 1, {0.5, -1});
  Evaluation<double> r = interpret<double>(m.losses[0], std::span(&x, 1), gradients());
  EXPECT_DOUBLE_EQ(r.loss[0], 999 * 0.5);
  EXPECT_DOUBLE_EQ(r.loss[1], -999);
  EXPECT_DOUBLE_EQ(r.grads[0].data[0], 999);
  // Printing is iterative, and the printed sum reads back as the same node.
  EXPECT_EQ(load(to_text(m)).losses[0].body, m.losses[0].body);
}

TEST(Pathological, TwoHundredThousandUnaryMinuses) {
  std::string body = repeat("-", 200'000) + "x";
  expect_first(compile_error([&] { load(std::string(kHeader) + body); }),
               "expression nests 200001 operators deep; the limit is 1000", 1, kBodyCol);
}

TEST(Pathological, HundredThousandLongPowerChain) {
  std::string body = "x" + repeat("^x", 99'999);
  expect_first(compile_error([&] { load(std::string(kHeader) + body); }),
               "expression nests 100000 operators deep; the limit is 1000", 1, kBodyCol);
}

// let a1 = x * x, a2 = a1 * a1, ...: a tree of 2^n leaves, a DAG of n nodes.
std::string square_chain(size_t n) {
  std::string s = "loss chain(pred x: real) {\n  let a0 = x\n";
  for (size_t i = 1; i <= n; ++i)
    s += "  let a" + std::to_string(i) + " = a" + std::to_string(i - 1) + " * a" + std::to_string(i - 1) + "\n";
  return s + "  a" + std::to_string(n) + "\n}\n";
}

TEST(Pathological, TenThousandDeepLetChainIsRejectedByTheIrDepthLimit) {
  const size_t n = 10'000;
  // The result expression `a10000` is on line n + 3, column 3.
  expect_first(compile_error([&] { load(square_chain(n)); }),
               "loss 'chain' is 10001 operators deep once its lets are expanded; the limit is 5000", n + 3, 3);
}

TEST(Pathological, DeepLetChainStaysLinearInPrintersAndInterpreter) {
  const size_t n = 4'900;
  const std::string source = square_chain(n);
  Module m = load(source);
  ASSERT_EQ(m.losses.size(), 1u);
  const Loss& loss = m.losses[0];
  EXPECT_EQ(dag_size(loss.body), n + 1);
  EXPECT_EQ(loss.body->tree_size(), UINT32_MAX);  // saturated: 2^4901 - 1 as a tree

  // to_text names every let: one line each, and it reads back as the same node.
  const std::string printed = to_text(loss);
  EXPECT_LT(printed.size(), 40 * n);
  EXPECT_EQ(load(printed).losses[0].body, loss.body);
  const std::string formatted = format_source(text(source));
  EXPECT_LT(formatted.size(), 40 * n);
  EXPECT_EQ(format_source(text(formatted)), formatted);
  // Without names the formula is exponential: the printer refuses instead of exhausting memory.
  EXPECT_THROW(to_infix(loss.body), Error);

  // x = -1: every square is 1; d/dx x^(2^n) = 2^n * x^(2^n - 1), which overflows to -inf.
  Array<double> x(3, 1, {-1, 1, 0.5});
  Evaluation<double> r = interpret<double>(loss, std::span(&x, 1), gradients());
  EXPECT_EQ(r.loss[0], 1);
  EXPECT_EQ(r.loss[1], 1);
  EXPECT_EQ(r.loss[2], 0);
  EXPECT_EQ(r.grads[0].data[0], -INFINITY);
  EXPECT_EQ(r.grads[0].data[1], INFINITY);
}

// ---- garbage ------------------------------------------------------------------

// Where an independent, plain reading of RFC 3629 finds the first bad byte: {line, column}.
std::pair<uint32_t, uint32_t> first_invalid_utf8(const std::string& s) {
  uint32_t line = 1, col = 1;
  for (size_t i = 0; i < s.size();) {
    const auto b = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0x100u; };
    const auto cont = [&](size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) { return b(k) >= lo && b(k) <= hi; };
    const unsigned c = b(0);
    size_t len = 0;
    if (c < 0x80)
      len = 1;
    else if (c >= 0xC2 && c <= 0xDF && cont(1))
      len = 2;
    else if (c == 0xE0 && cont(1, 0xA0) && cont(2))
      len = 3;
    else if (((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) && cont(1) && cont(2))
      len = 3;
    else if (c == 0xED && cont(1, 0x80, 0x9F) && cont(2))
      len = 3;
    else if (c == 0xF0 && cont(1, 0x90) && cont(2) && cont(3))
      len = 4;
    else if (c >= 0xF1 && c <= 0xF3 && cont(1) && cont(2) && cont(3))
      len = 4;
    else if (c == 0xF4 && cont(1, 0x80, 0x8F) && cont(2) && cont(3))
      len = 4;
    if (len == 0) return {line, col};
    if (c == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
    i += len;
  }
  return {0, 0};
}

TEST(Pathological, RandomBytes) {
  std::mt19937 rng(20240601);  // raw mt19937 output is the same everywhere
  for (int round = 0; round < 20; ++round) {
    std::string bytes(size_t(1) << (6 + round % 12), '\0');
    for (char& c : bytes) c = static_cast<char>(rng() & 0xFF);
    auto [line, col] = first_invalid_utf8(bytes);
    ASSERT_NE(line, 0u) << "random bytes that are valid UTF-8: choose another seed";
    std::optional<CompileError> e = compile_error([&] { load(bytes); });
    expect_first(e, "invalid UTF-8 byte 0x", line, col);
    ASSERT_TRUE(e);
    EXPECT_NE(e->diagnostics()[0].message.find("; is this a binary file?"), std::string::npos);
    EXPECT_EQ(e->diagnostics().size(), 1u);
    expect_first(compile_error([&] { formula(bytes, "reg"); }), "invalid UTF-8 byte 0x", line, col);
  }
}

TEST(Pathological, InvalidUtf8Forms) {
  // Overlong '/', a surrogate, beyond U+10FFFF, a lone continuation byte, a truncated sequence.
  for (std::string bad : {"\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\x80", "\xE2\x88"}) {
    std::string source = "# caf\xC3\xA9\nloss f(pred x: real) = x + " + bad + "\n";
    expect_first(compile_error([&] { load(source); }), "invalid UTF-8 byte", 2, kBodyCol + 4);
  }
}

// Random code points, each well-formed UTF-8: the lexer sees characters it has no token for.
TEST(Pathological, ValidUtf8Garbage) {
  std::mt19937 rng(7);
  auto append = [](std::string& s, uint32_t cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  };
  for (int round = 0; round < 10; ++round) {
    std::string s = "\xE2\x82\xAC";  // '€' first, so the first diagnostic is known
    while (s.size() < (size_t(1) << (8 + round))) {
      uint32_t cp = rng() % 0x110000;
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      if (rng() % 3 == 0) cp %= 0x80;  // some ASCII: names, numbers, operators, newlines
      append(s, cp);
    }
    ASSERT_EQ(first_invalid_utf8(s).first, 0u);
    std::optional<CompileError> e = compile_error([&] { load(s); });
    expect_first(e, "unexpected character '\xE2\x82\xAC'", 1, 1);
    ASSERT_TRUE(e);
    const auto lines = static_cast<uint32_t>(std::count(s.begin(), s.end(), '\n') + 1);
    for (const Diagnostic& d : e->diagnostics()) EXPECT_LE(d.range.begin.line, lines);
    EXPECT_FALSE(std::string(e->what()).empty());
    expect_first(compile_error([&] { formula(s, "multi_cls"); }), "unexpected character '\xE2\x82\xAC'", 1, 1);
  }
}

TEST(Pathological, NulBytes) {
  std::string source = std::string(kHeader) + "x " + std::string(1, '\0') + " + 1\n";
  expect_first(compile_error([&] { load(source); }), "unexpected character '\\x00'", 1, kBodyCol + 2);
  expect_first(compile_error([&] { load(std::string(1000, '\0')); }), "unexpected character '\\x00'", 1, 1);
  expect_first(compile_error([&] { formula(std::string("X") + '\0', "binary_cls"); }), "unexpected character '\\x00'",
               1, 2);
  // Inside a comment a NUL is just another character of the comment.
  Module m = load("# nul: " + std::string(1, '\0') + "\n" + std::string(kHeader) + "x\n");
  EXPECT_EQ(m.losses.size(), 1u);
}

// ---- size ---------------------------------------------------------------------

TEST(Pathological, OneMegabyteIdentifier) {
  const std::string name(1 << 20, 'a');
  // As a name the loss defines it is fine, and prints back.
  Module m = load("loss " + name + "(pred " + name + "_x: real) = " + name + "_x * 2\n");
  ASSERT_EQ(m.losses.size(), 1u);
  EXPECT_EQ(m.losses[0].name, name);
  EXPECT_EQ(load(to_text(m)).losses[0].body, m.losses[0].body);
  // As an unknown name it is reported at its place. The message quotes the whole name, but the
  // source line is shown around the caret only, so the text stays near the size of one name.
  std::optional<CompileError> e = compile_error([&] { load(std::string(kHeader) + "x + " + name + "\n"); });
  expect_first(e, "unknown name 'aaaa", 1, kBodyCol + 4);
  ASSERT_TRUE(e);
  const std::string what = e->what();
  EXPECT_LT(what.size(), 3 * name.size());
  expect_first(compile_error([&] { load(std::string(kHeader) + name + "(x)\n"); }), "unknown function 'aaaa", 1,
               kBodyCol);
}

// A realistic loss (SPEC §2), renamed per copy, repeated to the size asked for.
std::string many_focal_losses(size_t bytes) {
  const std::string one = R"(# Sigmoid focal loss, copy @.
loss focal_@(pred x: real, y: real) {
  param alpha = 0.25              # tunable constant, overridable at run time
  param gamma = 2
  let p  = sigmoid(x)
  let pt = p * y + (1 - p) * (1 - y)
  let at = alpha * y + (1 - alpha) * (1 - y)
  -at * (1 - pt)^gamma * log(pt)  # last expression = the loss of one element / row
}

)";
  std::string out;
  out.reserve(bytes + one.size() + 16);
  for (size_t i = 0; out.size() < bytes; ++i) {
    const std::string n = std::to_string(i);
    for (char c : one) {
      if (c == '@')
        out += n;
      else
        out += c;
    }
  }
  return out;
}

TEST(Pathological, TenMegabyteFileLoads) {
  const std::string source = many_focal_losses(10'000'000);
  const auto start = std::chrono::steady_clock::now();
  Module m = load(source);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("10 MB file (%zu bytes, %zu losses) loaded in %.1f s\n", source.size(), m.losses.size(), seconds);
  ASSERT_GT(m.losses.size(), 25'000u);
  ASSERT_NE(m.find("focal_0"), nullptr);
  // Hash-consing: every copy's body is the same node.
  EXPECT_EQ(m.losses.front().body, m.losses.back().body);
}

TEST(Pathological, FileOverTheSizeLimitIsRejectedUpFront) {
  std::string source = many_focal_losses(1000);
  source += std::string(limits::kMaxSourceBytes + 1 - source.size(), ' ');
  expect_first(compile_error([&] { load(source); }),
               "file is " + std::to_string(limits::kMaxSourceBytes + 1) + " bytes; the limit is 16 MiB", 1, 1);
  expect_first(compile_error([&] { formula(source, "reg"); }), "the limit is 16 MiB", 1, 1);
}

// ---- floods of errors -----------------------------------------------------------

TEST(Pathological, TenThousandSyntaxErrors) {
  std::string source;
  for (int i = 0; i < 10'000; ++i) source += std::string(kHeader) + ")\n";
  std::optional<CompileError> e = compile_error([&] { load(source); });
  expect_first(e, "unexpected ')'; expected an expression", 1, kBodyCol);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->diagnostics().size(), DiagnosticSink::kMaxErrors);
  EXPECT_NE(std::string(e->what()).find("test.loss: too many errors; stopped after 20"), std::string::npos);
  // The parser recovers line by line: the second error is on line 2.
  EXPECT_EQ(e->diagnostics()[1].range.begin.line, 2u);
}

TEST(Pathological, TenThousandTypeErrors) {
  std::string source;
  for (int i = 0; i < 10'000; ++i)
    source += "loss f" + std::to_string(i) + "(pred x: real) = softmax(x) + nope" + std::to_string(i) + "\n";
  std::optional<CompileError> e = compile_error([&] { load(source); });
  expect_first(e, "'softmax' takes a real[C] row, got real", 1, 33);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->diagnostics().size(), DiagnosticSink::kMaxErrors);
}

// Each unknown name searches the names in scope for a "did you mean": with many
// lets and many unknown names that was quadratic (4,000 of each took 50 s).
TEST(Pathological, ManyUnknownNamesAmongManyLets) {
  const int n = 20'000;
  std::string source = "loss f(pred x: real) {\n";
  for (int i = 0; i < n; ++i) source += "  let name_number_" + std::to_string(i) + " = x\n";
  for (int i = 0; i < n; ++i) source += "  let other_" + std::to_string(i) + " = unknown_" + std::to_string(i) + "\n";
  source += "  x\n}\n";
  std::optional<CompileError> e = compile_error([&] { load(source); });
  expect_first(e, "unknown name 'unknown_0'", n + 2, 17);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->diagnostics().size(), DiagnosticSink::kMaxErrors);
}

}  // namespace
}  // namespace lossforge
