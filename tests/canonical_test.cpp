// Canonical hashes and functional fingerprints: equal for equivalent candidates,
// different for near misses; and how many duplicates each finds among 10,000
// random candidates per preset (printed, with the time per candidate).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <unordered_set>

#include "compiler/canonical.hpp"
#include "compiler/frontend.hpp"
#include "compiler/print.hpp"
#include "search/fingerprint.hpp"
#include "search/generate.hpp"

namespace lossforge {
namespace {

Expr parse(const std::string& preset, const std::string& text) {
  return load_formula(SourceFile::from_text("<t>", text), *find_preset(preset)).body;
}

struct Pair {
  std::string preset, a, b;
};

// Equal up to commutativity, associativity, constant folding and the identities.
const std::vector<Pair> kEquivalent = {
    {"binary_cls", "Add(X, Q)", "Add(Q, X)"},
    {"binary_cls", "Add(Add(X, Q), PY)", "Add(X, Add(PY, Q))"},
    {"binary_cls", "Mul(Mul(X, Q), 2)", "Mul(2, Mul(Q, X))"},
    {"binary_cls", "Add(X, 3)", "Add(Add(1, X), 2)"},
    {"binary_cls", "Mul(X, 6)", "Mul(Mul(2, X), 3)"},
    {"binary_cls", "Neg(Neg(X))", "X"},
    {"binary_cls", "Add(X, 0)", "Mul(X, 1)"},
    {"binary_cls", "Sub(X, Q)", "Add(X, Neg(Q))"},
    {"binary_cls", "Neg(Sub(X, Q))", "Sub(Q, X)"},
    {"binary_cls", "Mul(Neg(X), Q)", "Neg(Mul(Q, X))"},
    {"binary_cls", "Add(X, Sub(Q, Q))", "X"},
    {"binary_cls", "Add(Mul(X, 0), Q)", "Q"},
    {"binary_cls", "Add(X, X)", "Mul(2, X)"},
    {"binary_cls", "Log(Sig(X))", "Neg(Softplus(Neg(X)))"},
    {"binary_cls", "Log(Add(1, Neg(Sig(X))))", "Neg(Softplus(X))"},
    {"binary_cls", "Div(X, 1)", "X"},
    {"binary_cls", "Add(1, 2)", "3"},
    {"binary_cls", "Exp(Log(Sig(X)))", "Sig(X)"},
    {"binary_cls", "min(X, Q)", "min(Q, X)"},
    {"multi_cls", "Neg(Dot(Y, Log(Softmax(X))))", "Neg(Dot(LogSoftmax(X), Y))"},
    {"multi_cls", "Dot(Mul(Y, Add(1, Sin(Z))), X)", "Dot(X, Mul(Add(Sin(Z), 1), Y))"},
    {"reg", "Div(E, E)", "1"},
    {"reg", "Add(1, Neg(Div(I, U)))", "Sub(1, Div(I, U))"},
    {"reg", "Div(Neg(E), Neg(1))", "E"},
};

// Close but different functions.
const std::vector<Pair> kNearMisses = {
    {"binary_cls", "Sub(X, Q)", "Sub(Q, X)"},
    {"binary_cls", "Div(X, Q)", "Div(Q, X)"},
    {"binary_cls", "Add(X, 3)", "Add(X, 2)"},
    {"binary_cls", "Mul(X, 2)", "Add(X, 2)"},
    {"binary_cls", "Div(X, X)", "1"},  // protected: 0 at X = 0
    {"binary_cls", "Sig(X)", "Sig(Neg(X))"},
    {"binary_cls", "Log(Sig(X))", "Log(Sig(Q))"},
    {"binary_cls", "Pow(X, 2)", "Pow(2, X)"},
    {"multi_cls", "Dot(Y, Log(Softmax(X)))", "Dot(Z, Log(Softmax(X)))"},
    {"reg", "Div(I, U)", "Div(I, E)"},
    {"reg", "Sub(E, U)", "Sub(U, E)"},
};

TEST(CanonicalHash, EquivalentPairsHashEqual) {
  for (const Pair& p : kEquivalent) {
    const Expr a = parse(p.preset, p.a), b = parse(p.preset, p.b);
    EXPECT_EQ(canonicalize(a), canonicalize(b)) << p.a << " vs " << p.b << ": " << to_infix(canonicalize(a))
                                                << " vs " << to_infix(canonicalize(b));
    EXPECT_EQ(canonical_hash(a), canonical_hash(b)) << p.a << " vs " << p.b;
  }
}

TEST(CanonicalHash, NearMissesHashDifferent) {
  for (const Pair& p : kNearMisses)
    EXPECT_NE(canonical_hash(parse(p.preset, p.a)), canonical_hash(parse(p.preset, p.b))) << p.a << " vs " << p.b;
}

TEST(Fingerprint, EquivalentFormsCollide) {
  std::vector<Pair> pairs = kEquivalent;
  // Equal functions that no rewrite rule relates.
  pairs.push_back({"binary_cls", "Sig(Neg(X))", "Sub(1, Sig(X))"});
  pairs.push_back({"binary_cls", "Mul(X, Add(Q, 1))", "Add(Mul(X, Q), X)"});
  pairs.push_back({"binary_cls", "Tanh(X)", "Sub(Mul(2, Sig(Mul(2, X))), 1)"});
  pairs.push_back({"multi_cls", "Dot(Y, Softmax(X))", "Dot(Softmax(X), Y)"});
  pairs.push_back({"reg", "Sub(1, Div(I, U))", "Div(Sub(U, I), U)"});
  // Up to an added constant: the same gradients.
  pairs.push_back({"binary_cls", "Sub(Log(Sig(X)), Sin(1))", "Log(Sig(X))"});
  pairs.push_back({"reg", "Add(Div(I, U), 3)", "Div(I, U)"});
  pairs.push_back({"binary_cls", "Add(X, 3)", "Add(X, 2)"});
  for (const Pair& p : pairs) {
    const Preset& preset = *find_preset(p.preset);
    EXPECT_TRUE(same_function(fingerprint(preset, parse(p.preset, p.a)), fingerprint(preset, parse(p.preset, p.b))))
        << p.a << " vs " << p.b;
  }
}

TEST(Fingerprint, DifferentFunctionsDiffer) {
  for (const Pair& p : kNearMisses) {
    if (p.a == "Div(X, X)") continue;  // equal on every probe: no probe logit is 0
    if (p.a == "Add(X, 3)") continue;  // X + 3 and X + 2 differ by a constant: collide (EquivalentFormsCollide)
    const Preset& preset = *find_preset(p.preset);
    EXPECT_FALSE(same_function(fingerprint(preset, parse(p.preset, p.a)), fingerprint(preset, parse(p.preset, p.b))))
        << p.a << " vs " << p.b;
  }
}

TEST(Fingerprint, DeterministicAndNanSafe) {
  const Preset& b = *find_preset("binary_cls");
  const Expr broken = parse("binary_cls", "Log(Neg(Add(Sqrt(Neg(Abs(X))), 1)))");  // NaN everywhere
  const Fingerprint f = fingerprint(b, broken);
  EXPECT_EQ(f.grid, fingerprint(b, broken).grid);
  EXPECT_EQ(f.offset_grid, fingerprint(b, broken).offset_grid);
  EXPECT_FALSE(same_function(f, fingerprint(b, parse("binary_cls", "X"))));
  FingerprintSet set;
  EXPECT_TRUE(set.insert(f));
  EXPECT_FALSE(set.insert(fingerprint(b, broken)));
}

// ---- measurement: duplicates among 10,000 random candidates per preset ----------
TEST(DuplicateMeasurement, TenThousandCandidatesPerPreset) {
  constexpr size_t kCount = 10'000;
  std::printf("%-11s %9s %12s %10s %12s %10s %14s %10s\n", "preset", "distinct", "structural", "us/cand",
              "canonical", "us/cand", "fingerprint", "us/cand");
  for (const char* name : {"multi_cls", "binary_cls", "reg"}) {
    const Preset& preset = *find_preset(name);
    Rng rng(2021);
    const std::vector<Expr> candidates = ramped_half_and_half(preset, rng, GenerateOptions{}, kCount);
    using Clock = std::chrono::steady_clock;
    auto per_candidate_us = [&](Clock::time_point t0) {
      return std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / kCount;
    };

    auto t0 = Clock::now();
    std::unordered_set<uint64_t> structural;
    size_t structural_dups = 0;
    for (const Expr& e : candidates) structural_dups += !structural.insert(e->hash()).second;
    const double structural_us = per_candidate_us(t0);

    t0 = Clock::now();
    std::unordered_set<uint64_t> canonical;
    size_t canonical_dups = 0;
    for (const Expr& e : candidates) canonical_dups += !canonical.insert(canonical_hash(e)).second;
    const double canonical_us = per_candidate_us(t0);

    t0 = Clock::now();
    FingerprintSet fingerprints;
    size_t fingerprint_dups = 0;
    for (const Expr& e : candidates) fingerprint_dups += !fingerprints.insert(fingerprint(preset, e));
    const double fingerprint_us = per_candidate_us(t0);

    std::printf("%-11s %9zu %12zu %10.2f %12zu %10.2f %14zu %10.2f\n", name, kCount - structural_dups, structural_dups,
                structural_us, canonical_dups, canonical_us, fingerprint_dups, fingerprint_us);
    // Each method finds at least what the one before it finds.
    EXPECT_GE(canonical_dups, structural_dups);
    EXPECT_GE(fingerprint_dups, canonical_dups);
  }
}

}  // namespace
}  // namespace lossforge
