// The IR is hash-consed, typed and stable; its memory is reclaimed.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "compiler/ir.hpp"
#include "compiler/print.hpp"

namespace lossforge {
namespace {

const Type kRow = Type::vec(Symbol::intern("C"));

TEST(Ir, EqualSubtreesAreOneNode) {
  Expr x = input(0, "x", Type::real());
  Expr a = make(Op::Log, {make(Op::Add, {x, constant(1)})});
  Expr b = make(Op::Log, {make(Op::Add, {input(0, "x", Type::real()), constant(1)})});
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_NE(a, make(Op::Log, {make(Op::Add, {constant(1), x})}));  // order matters until canonicalised
  EXPECT_EQ(constant(0), constant(-0.0));
  EXPECT_NE(constant(1), constant(std::nextafter(1.0, 2.0)));
  Expr sum = make(Op::Add, {a, a});
  EXPECT_EQ(dag_size(sum), 5u);   // x, 1, x + 1, log, +
  EXPECT_EQ(sum->tree_size(), 9u);
  EXPECT_EQ(sum->depth(), 4u);
}

TEST(Ir, HashIsStructuralAndStableAcrossRuns) {
  Expr x = input(0, "x", Type::real());
  Expr e = make(Op::Mul, {make(Op::Sigmoid, {x}), constant(0.25)});
  // A fixed value: the hash must not depend on addresses, the process or the platform.
  EXPECT_EQ(e->hash(), 6170855500172956009ull) << std::hex << e->hash();
  EXPECT_NE(e->hash(), make(Op::Mul, {make(Op::Sigmoid, {x}), constant(0.5)})->hash());
  EXPECT_NE(input(0, "x", Type::real())->hash(), input(0, "x", kRow)->hash());
  EXPECT_NE(input(0, "x", Type::real())->hash(), input(1, "x", Type::real())->hash());
}

TEST(Ir, TypesFollowTheOperatorTable) {
  Expr x = input(0, "x", kRow);
  Expr s = input(1, "s", Type::real());
  Expr p = input(2, "p", Type::box());
  EXPECT_EQ(make(Op::Mul, {x, s})->type(), kRow);  // broadcasting
  EXPECT_TRUE(make(Op::Dot, {x, x})->type().is_real());
  EXPECT_EQ(make(Op::Softmax, {x})->type(), kRow);
  EXPECT_TRUE(make(Op::Logsumexp, {x})->type().is_real());
  EXPECT_TRUE(field(p, 2)->type().is_real());
  EXPECT_TRUE(make(Op::Iou, {p, p})->type().is_real());
  EXPECT_THROW(make(Op::Softmax, {s}), std::invalid_argument);
  EXPECT_THROW(make(Op::Dot, {x, s}), std::invalid_argument);
  EXPECT_THROW(make(Op::Add, {x, input(3, "k", Type::vec(Symbol::intern("K")))}), std::invalid_argument);
  EXPECT_THROW(make(Op::Log, {p}), std::invalid_argument);
  EXPECT_THROW(field(s, 0), std::invalid_argument);
  EXPECT_THROW(make(Op::Log, {s, s}), std::invalid_argument);
  EXPECT_THROW(constant(std::nan("")), std::invalid_argument);
  EXPECT_THROW(constant(INFINITY), std::invalid_argument);
}

TEST(Ir, EveryOperatorHasATableEntryAndASpelling) {
  for (const OpInfo& info : all_ops()) {
    EXPECT_EQ(&op_info(info.op), &info);
    EXPECT_FALSE(info.name.empty());
    EXPECT_FALSE(info.doc.empty());
    if (info.kind == OpKind::Leaf || info.op == Op::Field) continue;
    EXPECT_EQ(find_function(info.name), info.op) << info.name;
    EXPECT_EQ(find_function(info.deap), info.op) << info.deap;
  }
  EXPECT_EQ(find_function("Sig"), Op::Sigmoid);
  EXPECT_FALSE(find_function("sigmod"));
  int paper = 0;
  for (const OpInfo& info : all_ops()) paper += info.paper_set;
  EXPECT_EQ(paper, 21);  // SPEC §6: the 21 operators of the CSE-Autoloss space, erfc included
}

TEST(Ir, NodesAreFreedWhenTheLastHandleGoes) {
  size_t before = live_node_count();
  {
    Expr e = input(7, "fresh", Type::real());
    for (int i = 0; i < 1000; ++i) e = make(Op::Add, {e, constant(1000.5 + i)});
    EXPECT_GE(live_node_count(), before + 2000);
  }
  EXPECT_EQ(live_node_count(), before);
}

TEST(Ir, DeepChainsAreDestroyedWithoutRecursion) {
  size_t before = live_node_count();
  {
    Expr e = input(0, "deep", Type::real());
    for (int i = 0; i < 300'000; ++i) e = make(Op::Neg, {e});
    EXPECT_EQ(e->depth(), 300'001u);
    EXPECT_EQ(topological_order(e).size(), 300'001u);
  }
  EXPECT_EQ(live_node_count(), before);
}

TEST(Ir, InterningIsThreadSafe) {
  constexpr int kThreads = 4;
  std::vector<std::vector<Expr>> built(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 200; ++round) {
        Expr e = input(0, "x", Type::real());
        for (int i = 0; i < 50; ++i) e = make(i % 2 ? Op::Mul : Op::Add, {e, constant(i)});
        built[t].push_back(e);
        if (round % 3) built[t].pop_back();  // drop some while others look them up
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 1; t < kThreads; ++t) EXPECT_EQ(built[t].back(), built[0].back());
}

TEST(Ir, RebuildReplacesLeavesAndKeepsSharing) {
  Expr x = input(0, "x", Type::real());
  Expr y = input(1, "y", Type::real());
  Expr shared = make(Op::Exp, {x});
  Expr e = make(Op::Mul, {shared, make(Op::Add, {shared, constant(2)})});
  Expr swapped = rebuild(e, [&](const Node& n, std::span<const Expr>) { return n.op() == Op::Input ? y : Expr(); });
  EXPECT_EQ(to_infix(swapped), "exp(y) * (exp(y) + 2)");
  EXPECT_EQ(swapped->arg(0), swapped->arg(1)->arg(0));
  EXPECT_EQ(rebuild(e, [](const Node&, std::span<const Expr>) { return Expr(); }), e);
}

}  // namespace
}  // namespace lossforge
