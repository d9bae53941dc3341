// The REPL's parts without a process: words, literals, completion, definitions.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "cli/repl/commands.hpp"
#include "cli/repl/completion.hpp"
#include "cli/repl/literals.hpp"
#include "cli/repl/session.hpp"
#include "cli/repl/words.hpp"
#include "compiler/diagnostics.hpp"

namespace lossforge::repl {
namespace {

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

TEST(ReplWords, BracketsAndQuotesHoldWordsTogether) {
  EXPECT_EQ(split_words("plot f,g x in [-6, 6] y=1 --png \"my plot.png\""),
            (std::vector<std::string>{"plot", "f,g", "x", "in", "[-6,6]", "y=1", "--png", "my plot.png"}));
  EXPECT_EQ(split_words("  eval   p=[[0, 0, 1, 1], [1, 1, 2, 2]] "),
            (std::vector<std::string>{"eval", "p=[[0,0,1,1],[1,1,2,2]]"}));
  EXPECT_TRUE(has_open_bracket("loss f(pred x: real) {"));
  EXPECT_TRUE(has_open_bracket("Neg(Log(Sig(X))"));
  EXPECT_FALSE(has_open_bracket("Neg(Log(Sig(X)))  # (an open one in a comment"));
  EXPECT_FALSE(has_open_bracket("loss f(pred x: real) {\n  x\n}"));
}

TEST(ReplLiterals, ShapesFollowTheInputType) {
  Session session(std::cout, std::cerr);
  session.define("loss f(pred x: real, v: real[C], p: box) = x + sum(v) + area(p)", 1);
  const Loss& loss = session.find("f").loss;
  Assignments values;
  add_assignment("x=[1,2,3]", values);     // three rows of a real
  add_assignment("v=[0.5,1.5]", values);   // one row of a real[C], repeated
  add_assignment("p=[0,0,10,10]", values); // one box, repeated
  const LossArguments args = loss_arguments(loss, values);
  ASSERT_EQ(args.rows, 3u);
  EXPECT_EQ(args.inputs[0].data, (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(args.inputs[1].width, 2u);
  EXPECT_EQ(args.inputs[1].data, (std::vector<double>{0.5, 1.5, 0.5, 1.5, 0.5, 1.5}));
  EXPECT_EQ(args.inputs[2].width, 4u);
  EXPECT_EQ(args.inputs[2].rows, 3u);

  Assignments bad_box = values;
  add_assignment("p=[0,0,10]", bad_box);
  EXPECT_THROW(loss_arguments(loss, bad_box), InputError);
  Assignments missing;
  add_assignment("x=1", missing);
  try {
    loss_arguments(loss, missing);
    FAIL() << "missing inputs must be reported";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("v: real[C], p: box"), std::string::npos) << e.what();
  }
  Assignments rows_disagree = values;
  add_assignment("v=[[1,2],[3,4]]", rows_disagree);
  EXPECT_THROW(loss_arguments(loss, rows_disagree), InputError);
  EXPECT_THROW(parse_literal("[1,,2]", "x"), InputError);
  EXPECT_THROW(parse_literal("[1,2", "x"), InputError);
  EXPECT_THROW(parse_literal("nan", "x"), InputError);
}

TEST(ReplSession, FormulasAreNamedInOrderAndRedefinitionReplaces) {
  std::ostringstream out, err;
  Session session(out, err);
  EXPECT_THROW(session.define("Neg(Log(Sig(X)))", 1), InputError);
  session.set_preset(find_preset("binary_cls"));
  EXPECT_EQ(session.define("Neg(Log(Sig(X)))", 2), std::vector<std::string>{"f1"});
  EXPECT_EQ(session.define("Sig(X)", 3), std::vector<std::string>{"f2"});
  EXPECT_EQ(session.define("mine = Neg(X)", 4), std::vector<std::string>{"mine"});
  EXPECT_EQ(session.define("f1 = Neg(Q)", 5), std::vector<std::string>{"f1"});
  ASSERT_EQ(session.definitions().size(), 3u);
  EXPECT_EQ(session.definitions()[0].text, "Neg(Q)");
  EXPECT_EQ(session.latest().loss.name, "f1");
  // Two losses in one input, each keeping its own text.
  EXPECT_EQ(session.define("loss a(pred x: real) = x\nloss b(pred x: real) = -x", 6),
            (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(session.find("b").text, "loss b(pred x: real) = -x");
  // Diagnostics count the session's lines.
  try {
    session.define("loss c(pred x: real) = sigmod(x)", 17);
    FAIL();
  } catch (const CompileError& e) {
    EXPECT_NE(std::string(e.what()).find("<repl>:17:24:"), std::string::npos) << e.what();
  }
}

TEST(ReplCompletion, OffersWhatFitsTheContext) {
  std::ostringstream out, err;
  Session session(out, err);
  session.set_preset(find_preset("binary_cls"));
  session.define("Neg(Log(Sig(X)))", 1);
  session.define("loss focal(pred x: real, y: real) {\n  param gamma = 2\n  -log(sigmoid(x)) * y\n}", 2);

  EXPECT_EQ(*completions(session, "", ":ev"), std::vector<std::string>{":eval"});
  EXPECT_TRUE(contains(*completions(session, "", ":"), ":plot"));
  EXPECT_EQ(*completions(session, ":pset ", "b"), std::vector<std::string>{"binary_cls"});
  EXPECT_EQ(*completions(session, ":eval ", "fo"), std::vector<std::string>{"focal"});
  const auto focal_args = *completions(session, ":eval focal x=1 ", "");
  EXPECT_TRUE(contains(focal_args, "y="));
  EXPECT_TRUE(contains(focal_args, "gamma="));
  EXPECT_TRUE(contains(*completions(session, ":plot f1 ", ""), "X"));
  EXPECT_TRUE(contains(*completions(session, ":plot f1 X in [-1,1] ", "--"), "--png"));
  EXPECT_EQ(*completions(session, ":emit f1 ", "cu"), std::vector<std::string>{"cuda"});
  EXPECT_FALSE(completions(session, ":load ", "fi").has_value()) << "file names";
  // In a formula: functions from the operator table, the preset's names, losses.
  const auto in_formula = *completions(session, "Neg(", "Sig");
  EXPECT_TRUE(contains(in_formula, "Sig"));
  EXPECT_TRUE(contains(in_formula, "Sigmoid") || contains(in_formula, "Sig"));
  EXPECT_TRUE(contains(*completions(session, "Neg(", "sigm"), "sigmoid"));
  EXPECT_TRUE(contains(*completions(session, "Neg(", "N"), "NY"));
}

TEST(ReplCommands, PrefixesAndRunInputNeverThrow) {
  EXPECT_EQ(find_command("ev")->name, "eval");
  EXPECT_EQ(find_command("q")->name, "quit");
  EXPECT_EQ(find_command("s"), nullptr) << "show, simplify and save share 's'";
  std::ostringstream out, err;
  Session session(out, err);
  EXPECT_EQ(run_input(session, ":eval x=1", 1), Outcome::failed);
  EXPECT_EQ(run_input(session, "loss f(pred x: real) = x * x", 2), Outcome::ok);
  EXPECT_EQ(run_input(session, ":eval x=3", 3), Outcome::ok);
  EXPECT_NE(out.str().find("f = 9\n  d/dx = 6\n"), std::string::npos) << out.str();
  EXPECT_EQ(run_input(session, ":quit", 4), Outcome::quit);
  EXPECT_NE(err.str().find("no loss is defined yet"), std::string::npos) << err.str();
}

}  // namespace
}  // namespace lossforge::repl
