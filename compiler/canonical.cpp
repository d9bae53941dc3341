#include "compiler/canonical.hpp"

#include <cstdint>

#include "compiler/simplify.hpp"

namespace lossforge {

Expr canonicalize(const Expr& e) { return simplify(e); }

uint64_t canonical_hash(const Expr& e) { return e ? canonicalize(e)->hash() : 0; }

}  // namespace lossforge
