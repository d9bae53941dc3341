// The IR: one typed, hash-consed expression DAG.
//
// A Node is immutable and interned: building the same operator over the same
// arguments (and payload) twice gives the same Node, so structural equality is
// pointer equality, common subexpressions are shared for free, and every Node
// carries a structural hash that is stable across runs and machines (it mixes
// operator, type, payload and the children's hashes; no addresses). Nodes are
// reference counted and leave the intern table when the last Expr drops them;
// the table is safe to use from several threads.
//
// Expr is the value-type handle to a Node. Builders check types and throw
// std::invalid_argument on misuse: the front end reports user type errors with
// locations before it builds anything (see lower.hpp).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "compiler/ops.hpp"
#include "compiler/types.hpp"

namespace lossforge {

class Node;

class Expr {
 public:
  Expr() = default;
  Expr(const Expr& other);
  Expr(Expr&& other) noexcept : node_(other.node_) { other.node_ = nullptr; }
  Expr& operator=(Expr other) noexcept {
    std::swap(node_, other.node_);
    return *this;
  }
  ~Expr();

  // A new handle to a node that is alive (reachable from an Expr you hold),
  // e.g. one from topological_order().
  static Expr share(const Node* node);

  const Node* get() const { return node_; }
  const Node& operator*() const { return *node_; }
  const Node* operator->() const { return node_; }
  explicit operator bool() const { return node_ != nullptr; }
  friend bool operator==(const Expr& a, const Expr& b) { return a.node_ == b.node_; }

 private:
  friend class Node;
  friend struct InternTable;
  friend Expr make_node(Op, Type, double, int, std::string, std::span<const Expr>);
  explicit Expr(const Node* adopted) : node_(adopted) {}  // takes over one reference
  const Node* node_ = nullptr;
};

class Node {
 public:
  Op op() const { return op_; }
  const Type& type() const { return type_; }
  const OpInfo& info() const { return op_info(op_); }
  std::span<const Expr> args() const { return {args_.data(), arity_}; }
  const Expr& arg(size_t i) const { return args_[i]; }

  // Payload. Const: value(). Input: index() into the loss inputs, name().
  // Param: index() into the loss params, name(). Field: index() 0..3 (x1 y1 x2 y2).
  double value() const { return value_; }
  int index() const { return index_; }
  const std::string& name() const { return name_; }

  // Structural hash, stable across processes.
  uint64_t hash() const { return hash_; }
  // Longest path to a leaf (a leaf has depth 1).
  uint32_t depth() const { return depth_; }
  // Number of nodes when the DAG is expanded into a tree, saturating at UINT32_MAX.
  uint32_t tree_size() const { return tree_size_; }

  bool is_leaf() const { return arity_ == 0; }
  bool is_const() const { return op_ == Op::Const; }
  bool is_const(double v) const { return op_ == Op::Const && value_ == v; }

  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

 private:
  friend class Expr;
  friend struct InternTable;
  friend Expr make_node(Op, Type, double, int, std::string, std::span<const Expr>);
  Node() = default;

  Op op_ = Op::Const;
  uint8_t arity_ = 0;
  Type type_;
  int index_ = 0;
  uint32_t depth_ = 1;
  uint32_t tree_size_ = 1;
  double value_ = 0;
  uint64_t hash_ = 0;
  std::string name_;
  std::array<Expr, 3> args_;
  mutable std::atomic<uint32_t> refs_{0};
};

// ---- building ----------------------------------------------------------------
Expr constant(double value);  // finite values only (std::invalid_argument otherwise)
Expr input(int index, std::string name, Type type);
Expr param(int index, std::string name);
Expr field(Expr box, int index);
// Any operator over arguments; checks arity and types (see check_types).
Expr make(Op op, std::span<const Expr> args);
Expr make(Op op, std::initializer_list<Expr> args);
Expr make(Op op, const std::vector<Expr>& args);

// ---- traversal ---------------------------------------------------------------
// Every node reachable from the roots, each once, children before parents.
// Iterative: safe on any depth.
std::vector<const Node*> topological_order(std::span<const Expr> roots);
std::vector<const Node*> topological_order(const Expr& root);

// Number of distinct nodes reachable from root (the DAG size).
size_t dag_size(const Expr& root);

// Rebuilds `root` bottom-up, giving `rewrite` each node with its arguments
// already rewritten; return {} from it to keep the node (rebuilt over the new
// arguments). Shared nodes are visited once.
Expr rebuild(const Expr& root, const std::function<Expr(const Node&, std::span<const Expr>)>& rewrite);

// Live interned nodes (for tests and memory reports).
size_t live_node_count();

}  // namespace lossforge

template <>
struct std::hash<lossforge::Expr> {
  size_t operator()(const lossforge::Expr& e) const noexcept { return e ? e->hash() : 0; }
};
