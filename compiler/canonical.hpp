// Canonical form and canonical hash of an expression, for recognising duplicate
// candidates in the search and for keying the kernel cache.
//
// canonicalize(e) is the simplifier's normal form (compiler/simplify.hpp): sums
// and products flattened and ordered, constants folded, the identities and rules
// applied. Two expressions equal up to commutativity, associativity, constant
// folding and those identities have the same canonical form, hence the same
// canonical_hash. The hash is the structural hash of the canonical node, stable
// across processes and machines; like any hash it may collide, so a caller that
// must be sure compares canonical forms (equal Exprs are one node).
#pragma once

#include <cstdint>

#include "compiler/ir.hpp"

namespace lossforge {

Expr canonicalize(const Expr& e);
uint64_t canonical_hash(const Expr& e);

}  // namespace lossforge
