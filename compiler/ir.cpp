#include "compiler/ir.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace lossforge {
namespace {

uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
uint64_t combine(uint64_t h, uint64_t v) { return splitmix(h ^ splitmix(v)); }
uint64_t hash_string(std::string_view s) {
  uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  return h;
}

}  // namespace

// The global table of live nodes, split in shards to keep lock contention low.
struct InternTable {
  static constexpr size_t kShards = 64;
  struct Shard {
    std::mutex mutex;
    std::unordered_multimap<uint64_t, Node*> nodes;
  };
  Shard shards[kShards];
  std::atomic<size_t> live{0};

  static InternTable& get() {
    static InternTable* table = new InternTable;  // never destroyed: Exprs may outlive statics
    return *table;
  }
  Shard& shard(uint64_t hash) { return shards[hash % kShards]; }

  static bool same(const Node& n, Op op, const Type& type, double value, int index, const std::string& name,
                   std::span<const Expr> args) {
    if (n.op_ != op || !(n.type_ == type) || n.index_ != index || n.arity_ != args.size()) return false;
    if (std::bit_cast<uint64_t>(n.value_) != std::bit_cast<uint64_t>(value) || n.name_ != name) return false;
    for (size_t i = 0; i < args.size(); ++i)
      if (n.args_[i] != args[i]) return false;
    return true;
  }

  // Drops one reference; destroys nodes whose count reaches zero, iteratively.
  void release(const Node* first) {
    std::vector<const Node*> pending{first};
    while (!pending.empty()) {
      const Node* n = pending.back();
      pending.pop_back();
      uint32_t refs = n->refs_.load(std::memory_order_relaxed);
      bool dropped = false;
      while (refs > 1)
        if (n->refs_.compare_exchange_weak(refs, refs - 1, std::memory_order_acq_rel)) {
          dropped = true;
          break;
        }
      if (dropped) continue;
      // Possibly the last reference: 1 -> 0 and 0 -> 1 (revival by lookup) both
      // happen under the shard lock, so a dead node is never found again.
      Node* dead = nullptr;
      {
        Shard& s = shard(n->hash_);
        std::lock_guard lock(s.mutex);
        if (n->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
          auto [lo, hi] = s.nodes.equal_range(n->hash_);
          for (auto it = lo; it != hi; ++it)
            if (it->second == n) {
              dead = it->second;
              s.nodes.erase(it);
              break;
            }
        }
      }
      if (!dead) continue;
      live.fetch_sub(1, std::memory_order_relaxed);
      for (uint8_t i = 0; i < dead->arity_; ++i) {
        pending.push_back(dead->args_[i].node_);
        dead->args_[i].node_ = nullptr;  // handed to `pending`, not released twice
      }
      delete dead;
    }
  }
};

Expr::Expr(const Expr& other) : node_(other.node_) {
  if (node_) node_->refs_.fetch_add(1, std::memory_order_relaxed);
}

Expr Expr::share(const Node* node) {
  if (node) node->refs_.fetch_add(1, std::memory_order_relaxed);
  return Expr(node);
}

Expr::~Expr() {
  if (node_) InternTable::get().release(node_);
}

Expr make_node(Op op, Type type, double value, int index, std::string name, std::span<const Expr> args) {
  // Constants are finite: NaN is never equal to itself and neither has a DSL spelling.
  if (!std::isfinite(value)) throw std::invalid_argument("IR constants must be finite");
  if (value == 0) value = 0;  // -0 and +0 are one constant
  uint64_t h = combine(static_cast<uint64_t>(op), static_cast<uint64_t>(type.kind()));
  h = combine(h, hash_string(type.width().str()));
  h = combine(h, std::bit_cast<uint64_t>(value));
  h = combine(h, static_cast<uint64_t>(static_cast<int64_t>(index)));
  h = combine(h, hash_string(name));
  uint32_t depth = 0;
  uint64_t tree_size = 1;
  for (const Expr& a : args) {
    h = combine(h, a->hash());
    depth = std::max(depth, a->depth());
    tree_size += a->tree_size();
  }

  InternTable& table = InternTable::get();
  auto& s = table.shard(h);
  std::lock_guard lock(s.mutex);
  auto [lo, hi] = s.nodes.equal_range(h);
  for (auto it = lo; it != hi; ++it)
    if (InternTable::same(*it->second, op, type, value, index, name, args)) {
      it->second->refs_.fetch_add(1, std::memory_order_relaxed);
      return Expr(it->second);
    }
  Node* n = new Node;
  n->op_ = op;
  n->type_ = type;
  n->value_ = value;
  n->index_ = index;
  n->name_ = std::move(name);
  n->arity_ = static_cast<uint8_t>(args.size());
  for (size_t i = 0; i < args.size(); ++i) n->args_[i] = args[i];
  n->hash_ = h;
  n->depth_ = depth + 1;
  n->tree_size_ = static_cast<uint32_t>(std::min<uint64_t>(tree_size, UINT32_MAX));
  n->refs_.store(1, std::memory_order_relaxed);
  s.nodes.emplace(h, n);
  table.live.fetch_add(1, std::memory_order_relaxed);
  return Expr(n);
}

Expr constant(double value) { return make_node(Op::Const, Type::real(), value, 0, {}, {}); }

Expr input(int index, std::string name, Type type) {
  return make_node(Op::Input, type, 0, index, std::move(name), {});
}

Expr param(int index, std::string name) { return make_node(Op::Param, Type::real(), 0, index, std::move(name), {}); }

Expr field(Expr box, int index) {
  if (index < 0 || index > 3) throw std::invalid_argument("box field index out of range");
  Type t = box->type();
  TypeCheck check = check_types(Op::Field, std::span(&t, 1));
  if (!check.type) throw std::invalid_argument(check.error);
  return make_node(Op::Field, *check.type, 0, index, {}, std::span(&box, 1));
}

Expr make(Op op, std::span<const Expr> args) {
  if (op == Op::Field) {
    if (args.size() != 1) throw std::invalid_argument("field takes one box");
    throw std::invalid_argument("use field(box, index) to build a box field");
  }
  if (op_info(op).kind == OpKind::Leaf) throw std::invalid_argument("make() of a leaf operator; use constant(), input() or param()");
  std::array<Type, 3> types{Type::real(), Type::real(), Type::real()};
  if (args.size() > types.size()) throw std::invalid_argument("too many arguments");
  for (size_t i = 0; i < args.size(); ++i) {
    if (!args[i]) throw std::invalid_argument("null argument");
    types[i] = args[i]->type();
  }
  TypeCheck check = check_types(op, std::span(types.data(), args.size()));
  if (!check.type) throw std::invalid_argument(check.error);
  return make_node(op, *check.type, 0, 0, {}, args);
}

Expr make(Op op, std::initializer_list<Expr> args) { return make(op, std::span(args.begin(), args.size())); }

Expr make(Op op, const std::vector<Expr>& args) { return make(op, std::span(args.data(), args.size())); }

std::vector<const Node*> topological_order(std::span<const Expr> roots) {
  std::vector<const Node*> order;
  std::unordered_set<const Node*> seen;
  std::vector<std::pair<const Node*, size_t>> stack;
  for (const Expr& root : roots) {
    if (!root || !seen.insert(root.get()).second) continue;
    stack.emplace_back(root.get(), 0);
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next < node->args().size()) {
        const Node* child = node->arg(next++).get();
        if (seen.insert(child).second) stack.emplace_back(child, 0);
      } else {
        order.push_back(node);
        stack.pop_back();
      }
    }
  }
  return order;
}

std::vector<const Node*> topological_order(const Expr& root) { return topological_order(std::span(&root, 1)); }

size_t dag_size(const Expr& root) { return topological_order(root).size(); }

Expr rebuild(const Expr& root, const std::function<Expr(const Node&, std::span<const Expr>)>& rewrite) {
  std::unordered_map<const Node*, Expr> done;
  Expr last;
  for (const Node* n : topological_order(root)) {
    std::array<Expr, 3> args;
    bool changed = false;
    for (size_t i = 0; i < n->args().size(); ++i) {
      args[i] = done.at(n->arg(i).get());
      changed |= args[i] != n->arg(i);
    }
    std::span<const Expr> new_args(args.data(), n->args().size());
    Expr out = rewrite(*n, new_args);
    if (!out) {
      if (!changed)
        out = Expr::share(n);
      else if (n->op() == Op::Field)
        out = field(new_args[0], n->index());
      else
        out = make(n->op(), new_args);
    }
    last = done[n] = out;
  }
  return last;
}

size_t live_node_count() { return InternTable::get().live.load(); }

}  // namespace lossforge
