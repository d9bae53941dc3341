#include "search/evolution.hpp"

#include <algorithm>
#include <stdexcept>
#include <unordered_set>

namespace lossforge {

struct Variator::Site {
  const Node* node;
  std::vector<int> path;  // argument indices from the root
};

std::string variation_name(Variation v) {
  switch (v) {
    case Variation::Crossover: return "crossover";
    case Variation::Insert: return "insert";
    case Variation::Delete: return "delete";
    case Variation::Replace: return "replace";
    case Variation::PerturbConstant: return "perturb_constant";
    case Variation::Hoist: return "hoist";
  }
  return "?";
}

namespace {

std::unordered_set<const Node*> terminal_nodes(const Preset& preset) {
  std::unordered_set<const Node*> out;
  for (const NamedExpr& t : preset.terminals) out.insert(t.expr.get());
  return out;
}

bool is_leaf(const Node* node, const std::unordered_set<const Node*>& terminals) {
  return node->is_leaf() || terminals.count(node) != 0;
}

TreeShape shape(const Node* node, const std::unordered_set<const Node*>& terminals) {
  if (is_leaf(node, terminals)) return {1, 1};
  TreeShape out{0, 1};
  for (const Expr& a : node->args()) {
    const TreeShape s = shape(a.get(), terminals);
    out.depth = std::max(out.depth, s.depth);
    out.size += s.size;
  }
  ++out.depth;
  return out;
}

size_t pick(size_t n, Rng& rng) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); }
bool chance(double p, Rng& rng) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; }

// Builds op(args), or {} when the types do not fit.
Expr try_make(Op op, const std::vector<Expr>& args) {
  try {
    return make(op, args);
  } catch (const std::invalid_argument&) {
    return {};
  }
}

}  // namespace

TreeShape tree_shape(const Preset& preset, const Expr& tree) { return shape(tree.get(), terminal_nodes(preset)); }

Variator::Variator(const Preset& preset, const GenerateOptions& generate, const TreeLimits& limits)
    : preset_(preset), generate_(generate), limits_(limits) {
  for (const std::string& name : preset.search_terminals) terminals_.push_back(terminal(preset, name));
}

bool Variator::within_limits(const Expr& tree) const {
  const TreeShape s = tree_shape(preset_, tree);
  return s.depth <= limits_.max_depth && s.size <= limits_.max_size;
}

std::vector<Variator::Site> Variator::sites(const Expr& tree) const {
  const auto terminals = terminal_nodes(preset_);
  std::vector<Site> out;
  std::vector<Site> stack{{tree.get(), {}}};
  while (!stack.empty()) {
    Site s = std::move(stack.back());
    stack.pop_back();
    if (!is_leaf(s.node, terminals))
      for (size_t i = 0; i < s.node->args().size(); ++i) {
        Site child{s.node->arg(i).get(), s.path};
        child.path.push_back(int(i));
        stack.push_back(std::move(child));
      }
    out.push_back(std::move(s));
  }
  return out;
}

Expr Variator::replace_at(const Expr& tree, const std::vector<int>& path, const Expr& with) const {
  if (path.empty()) return with;
  std::vector<Expr> args(tree->args().begin(), tree->args().end());
  const std::vector<int> rest(path.begin() + 1, path.end());
  args[size_t(path[0])] = replace_at(args[size_t(path[0])], rest, with);
  return try_make(tree->op(), args);
}

Expr Variator::crossover(const Expr& a, const Expr& b, Rng& rng) const {
  const std::vector<Site> in_a = sites(a), in_b = sites(b);
  for (int attempt = 0; attempt < 16; ++attempt) {
    const Site& at = in_a[pick(in_a.size(), rng)];
    std::vector<const Site*> fits;
    for (const Site& s : in_b)
      if (s.node->type().kind() == at.node->type().kind()) fits.push_back(&s);
    if (fits.empty()) continue;
    Expr child = replace_at(a, at.path, Expr::share(fits[pick(fits.size(), rng)]->node));
    if (child && child->type().is_real() && within_limits(child) && !(child == a)) return child;
  }
  return {};
}

Expr Variator::mutate(const Expr& parent, Variation kind, Rng& rng) const {
  for (int attempt = 0; attempt < 16; ++attempt) {
    Expr child = once(parent, kind, rng);
    if (child && child->type().is_real() && within_limits(child) && !(child == parent)) return child;
  }
  return {};
}

Expr Variator::mutate(const Expr& parent, Rng& rng, Variation& kind) const {
  static constexpr Variation kinds[] = {Variation::Insert, Variation::Delete, Variation::Replace,
                                        Variation::PerturbConstant, Variation::Hoist};
  for (int attempt = 0; attempt < 8; ++attempt) {
    kind = kinds[pick(std::size(kinds), rng)];
    if (Expr child = mutate(parent, kind, rng)) return child;
  }
  return {};
}

Expr Variator::once(const Expr& parent, Variation kind, Rng& rng) const {
  const std::vector<Site> all = sites(parent);
  const auto terminals = terminal_nodes(preset_);
  std::vector<Op> ops;
  for (const OpInfo& info : all_ops()) {
    if (info.kind == OpKind::Leaf || info.kind == OpKind::Box || info.op == Op::Field) continue;
    if (!info.paper_set && !generate_.extra_ops) continue;
    ops.push_back(info.op);
  }
  auto small = [&](const Type& want) {
    GenerateOptions o = generate_;
    o.max_depth = 2;
    return random_subtree(preset_, rng, o, GrowMethod::Grow, want);
  };

  switch (kind) {
    case Variation::Insert: {  // a new operator above a node, the node one of its arguments
      const Site& s = all[pick(all.size(), rng)];
      const Type type = s.node->type();
      const Op op = ops[pick(ops.size(), rng)];
      const OpInfo& info = op_info(op);
      std::vector<Expr> args;
      const size_t slot = pick(size_t(info.arity), rng);
      for (int i = 0; i < info.arity; ++i)
        args.push_back(size_t(i) == slot ? Expr::share(s.node) : small(chance(0.5, rng) ? type : Type::real()));
      Expr grown = try_make(op, args);
      if (!grown || !(grown->type().kind() == type.kind())) return {};
      return replace_at(parent, s.path, grown);
    }
    case Variation::Delete: {  // a node replaced by one of its arguments of the same type
      std::vector<const Site*> inner;
      for (const Site& s : all)
        if (!is_leaf(s.node, terminals)) inner.push_back(&s);
      if (inner.empty()) return {};
      const Site& s = *inner[pick(inner.size(), rng)];
      std::vector<Expr> same;
      for (const Expr& a : s.node->args())
        if (a->type().kind() == s.node->type().kind()) same.push_back(a);
      if (same.empty()) return {};
      return replace_at(parent, s.path, same[pick(same.size(), rng)]);
    }
    case Variation::Replace: {  // another leaf of the type, or another operator over the same arguments
      const Site& s = all[pick(all.size(), rng)];
      if (is_leaf(s.node, terminals)) {
        std::vector<Expr> leaves;
        for (const Expr& t : terminals_)
          if (t->type().kind() == s.node->type().kind() && t.get() != s.node) leaves.push_back(t);
        if (s.node->type().is_real())
          for (double c : generate_.constants)
            if (!s.node->is_const(c)) leaves.push_back(constant(c));
        if (leaves.empty()) return {};
        return replace_at(parent, s.path, leaves[pick(leaves.size(), rng)]);
      }
      std::vector<Op> same_arity;
      for (Op op : ops)
        if (op_info(op).arity == s.node->info().arity && op != s.node->op()) same_arity.push_back(op);
      if (same_arity.empty()) return {};
      std::vector<Expr> args(s.node->args().begin(), s.node->args().end());
      Expr swapped = try_make(same_arity[pick(same_arity.size(), rng)], args);
      if (!swapped || !(swapped->type().kind() == s.node->type().kind())) return {};
      return replace_at(parent, s.path, swapped);
    }
    case Variation::PerturbConstant: {  // a constant moved to a neighbouring value of the set
      std::vector<const Site*> constants;
      for (const Site& s : all)
        if (s.node->is_const()) constants.push_back(&s);
      if (constants.empty()) return {};
      const Site& s = *constants[pick(constants.size(), rng)];
      std::vector<double> others;
      for (double c : generate_.constants)
        if (c != s.node->value()) others.push_back(c);
      if (others.empty()) return {};
      std::sort(others.begin(), others.end(), [&](double a, double b) {
        return std::abs(a - s.node->value()) < std::abs(b - s.node->value());
      });
      // The nearest value most often, any other sometimes.
      const double value = chance(0.7, rng) ? others.front() : others[pick(others.size(), rng)];
      return replace_at(parent, s.path, constant(value));
    }
    case Variation::Hoist: {  // a real subtree becomes the whole candidate
      std::vector<const Site*> inner;
      for (const Site& s : all)
        if (!s.path.empty() && s.node->type().is_real() && !is_leaf(s.node, terminals)) inner.push_back(&s);
      if (inner.empty()) return {};
      return Expr::share(inner[pick(inner.size(), rng)]->node);
    }
    case Variation::Crossover: break;
  }
  return {};
}

}  // namespace lossforge
