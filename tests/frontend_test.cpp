// The front end accepts the whole DSL of SPEC §2 and builds the IR it means.
#include <gtest/gtest.h>

#include "compiler/frontend.hpp"
#include "compiler/print.hpp"

namespace lossforge {
namespace {

Module parse(const std::string& text) { return load_module(SourceFile::from_text("test.loss", text)); }
Loss formula(const std::string& text, const char* preset) {
  return load_formula(SourceFile::from_text("<arg>", text), *find_preset(preset));
}
// The body of a one-loss file, printed back as an expression.
std::string body(const std::string& text) { return to_infix(parse(text).losses.at(0).body); }
double number(const std::string& literal) {
  Loss l = parse("loss f(x: real) = " + literal).losses.at(0);
  EXPECT_TRUE(l.body->is_const()) << literal;
  return l.body->value();
}

TEST(Frontend, NumbersInEveryUsualNotation) {
  EXPECT_EQ(number("2"), 2);
  EXPECT_EQ(number("0.25"), 0.25);
  EXPECT_EQ(number(".5"), 0.5);
  EXPECT_EQ(number("5."), 5);
  EXPECT_EQ(number("1e-7"), 1e-7);
  EXPECT_EQ(number("1E+3"), 1000);
  EXPECT_EQ(number("2.5e2"), 250);
  EXPECT_EQ(number("1_000"), 1000);
  EXPECT_EQ(number("0x1F"), 31);
  EXPECT_EQ(number("0x1.8p3"), 12);
  EXPECT_EQ(number("-3"), -3);  // a negated literal is one constant
  EXPECT_EQ(number("4.9e-324"), 4.9e-324);
}

TEST(Frontend, BlockAndOneLineForms) {
  Module m = parse(R"(# leading comment
loss focal(pred x: real, y: real) {
  param alpha = 0.25              # tunable
  param gamma = 2
  let p  = sigmoid(x)
  let pt = p * y + (1 - p) * (1 - y)
  let at = alpha * y + (1 - alpha) * (1 - y)
  -at * (1 - pt)^gamma * log(pt)  # the loss of one element
}
loss ce(pred x: real[C], y: real[C]) = -dot(y, log(softmax(x)))
loss giou(pred p: box, g: box) { let i = inter(p, g); let u = area(p) + area(g) - i + 1e-7
  let e = enclose(p, g) + 1e-7
  1 - i / u + (e - u) / e }
)");
  ASSERT_EQ(m.losses.size(), 3u);
  const Loss& focal = m.losses[0];
  EXPECT_EQ(focal.name, "focal");
  ASSERT_EQ(focal.params.size(), 2u);
  EXPECT_EQ(focal.params[0].name, "alpha");
  EXPECT_EQ(focal.params[1].value, 2);
  ASSERT_EQ(focal.inputs.size(), 2u);
  EXPECT_TRUE(focal.inputs[0].pred);
  EXPECT_FALSE(focal.inputs[1].pred);
  ASSERT_EQ(focal.lets.size(), 3u);
  // The line that starts with '-' is the result, not a continuation of `let at`.
  EXPECT_EQ(focal.body->op(), Op::Mul);
  EXPECT_EQ(m.losses[1].inputs[0].type, Type::vec(Symbol::intern("C")));
  EXPECT_TRUE(m.losses[1].body->type().is_real());
  EXPECT_EQ(m.losses[2].inputs[0].type, Type::box());
  EXPECT_EQ(m.find("giou")->lets.size(), 3u);
}

TEST(Frontend, PrecedenceAndAssociativity) {
  EXPECT_EQ(body("loss f(x: real) = 1 - x - 2"), "1 - x - 2");
  EXPECT_EQ(body("loss f(x: real) = 1 - (x - 2)"), "1 - (x - 2)");
  EXPECT_EQ(body("loss f(x: real) = x / 2 * 3"), "x / 2 * 3");
  EXPECT_EQ(body("loss f(x: real) = x / (2 * 3)"), "x / (2 * 3)");
  EXPECT_EQ(body("loss f(x: real) = 2^x^3"), "2^x^3");          // right-associative
  EXPECT_EQ(body("loss f(x: real) = (2^x)^3"), "(2^x)^3");
  EXPECT_EQ(body("loss f(x: real) = -x^2"), "-x^2");            // -(x^2)
  EXPECT_EQ(to_deap(parse("loss f(x: real) = -x^2").losses[0].body), "Neg(Pow(x,2))");
  EXPECT_EQ(body("loss f(x: real) = (-x)^2"), "(-x)^2");
  EXPECT_EQ(body("loss f(x: real) = x^-1"), "x^-1");
  EXPECT_EQ(body("loss f(x: real) = 2 * -x"), "2 * -x");
  EXPECT_EQ(body("loss f(x: real) = - - x"), "--x");
  EXPECT_EQ(body("loss f(x: real) = neg(2)"), "neg(2)");
}

TEST(Frontend, NewlinesContinueInsideBracketsAndAfterOperators) {
  EXPECT_EQ(body("loss f(x: real,\n y: real) = (x +\n y) *\n 2"), "(x + y) * 2");
  EXPECT_EQ(body("loss f(x: real) {\n\n  let a = x +\n    1\n\n  a\n\n}\n"), "x + 1");
}

TEST(Frontend, BoxFieldsAndGeometry) {
  Loss l = parse("loss d(pred p: box, g: box) = (p.x1 + p.x2 - g.x1 - g.x2)^2 + iou(p, g)").losses[0];
  EXPECT_EQ(to_infix(l.body), "(p.x1 + p.x2 - g.x1 - g.x2)^2 + iou(p, g)");
}

TEST(Frontend, DeapStringsWithCapitalisedAliases) {
  Loss a = formula("Neg(Dot(Mul(Y,Add(1,Sin(Z))),Log(Softmax(X))))", "multi_cls");
  EXPECT_EQ(to_infix(a.body), "-dot(Y * (1 + sin(Z)), log(softmax(X)))");
  Loss s = formula("Sub(Sig(X),Sigmoid(Q))", "binary_cls");
  EXPECT_EQ(s.body->arg(0)->op(), Op::Sigmoid);
  EXPECT_EQ(s.body->arg(1)->op(), Op::Sigmoid);
  EXPECT_EQ(to_infix(s.body), "sigmoid(X) - sigmoid(Q)");
  // The same formula written in infix is the same node.
  EXPECT_EQ(formula("Add(1,Neg(Div(I,U)))", "reg").body, formula("1 + -(I / U)", "reg").body);
}

TEST(Frontend, PresetsGiveTheNamesOfSpecSection2) {
  const Preset& reg = *find_preset("reg");
  ASSERT_EQ(reg.inputs.size(), 2u);
  EXPECT_EQ(reg.inputs[0].name, "P");
  EXPECT_TRUE(reg.inputs[0].pred);
  EXPECT_EQ(to_infix(terminal(reg, "U")), "area(P) + area(G) - inter(P, G) + 1e-7");
  EXPECT_EQ(to_infix(terminal(reg, "E")), "enclose(P, G) + 1e-7");
  Loss l = formula("I / U", "reg");
  EXPECT_EQ(l.inputs.size(), 2u);
  EXPECT_EQ(to_infix(l.body, terminal_names(reg)), "I / U");
  EXPECT_EQ(find_preset("binary_cls")->inputs.size(), 4u);
  EXPECT_TRUE(find_preset("multi_cls")->inputs[0].type.is_vec());
  EXPECT_EQ(find_preset("nope"), nullptr);
}

TEST(Frontend, SeveralLossesAndSeparators) {
  Module m = parse("loss a(x: real) = x; loss b(x: real) = 2 * x\n\n\nloss c(x: real) = x^2");
  ASSERT_EQ(m.losses.size(), 3u);
  EXPECT_EQ(m.losses[2].name, "c");
  EXPECT_EQ(parse("").losses.size(), 0u);
  EXPECT_EQ(parse("# only a comment\n").losses.size(), 0u);
}

TEST(Frontend, ArgumentIsAFileOrAFormula) {
  EXPECT_EQ(source_from_argument("I/U")->name(), "<arg>");
  EXPECT_THROW(source_from_argument("missing.loss"), InputError);
  EXPECT_THROW(source_from_argument("./nowhere"), InputError);
}

}  // namespace
}  // namespace lossforge
