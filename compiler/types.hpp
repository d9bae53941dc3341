// The three value types of the DSL.
//   real     one value per element
//   real[C]  a row of C values; C is a named (or numeric) width shared by the
//            inputs that spell it the same way, bound when data arrives
//   box      x1, y1, x2, y2
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lossforge {

// An interned name: equal names are the same pointer, so comparison is cheap.
class Symbol {
 public:
  Symbol() = default;
  static Symbol intern(std::string_view name);
  std::string_view str() const;
  bool empty() const { return name_ == nullptr; }
  friend bool operator==(Symbol a, Symbol b) { return a.name_ == b.name_; }

 private:
  explicit Symbol(const std::string* name) : name_(name) {}
  const std::string* name_ = nullptr;
};

class Type {
 public:
  enum class Kind : uint8_t { Real, Vec, Box };

  Type() = default;  // real

  static Type real() { return Type(Kind::Real, {}); }
  static Type vec(Symbol width) { return Type(Kind::Vec, width); }
  static Type box() { return Type(Kind::Box, {}); }

  Kind kind() const { return kind_; }
  bool is_real() const { return kind_ == Kind::Real; }
  bool is_vec() const { return kind_ == Kind::Vec; }
  bool is_box() const { return kind_ == Kind::Box; }
  // The width symbol of a real[C] type; empty otherwise.
  Symbol width() const { return width_; }
  std::string str() const;  // "real", "real[C]", "box"
  friend bool operator==(const Type&, const Type&) = default;

 private:
  Type(Kind kind, Symbol width) : kind_(kind), width_(width) {}
  Kind kind_ = Kind::Real;
  Symbol width_;
};

}  // namespace lossforge
