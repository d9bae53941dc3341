#include "compiler/types.hpp"

#include <mutex>
#include <unordered_set>

namespace lossforge {

Symbol Symbol::intern(std::string_view name) {
  // Names are few (input widths); they live as long as the process.
  static std::mutex mutex;
  static std::unordered_set<std::string>* names = new std::unordered_set<std::string>;
  std::lock_guard lock(mutex);
  return Symbol(&*names->emplace(name).first);
}

std::string_view Symbol::str() const { return name_ ? std::string_view(*name_) : std::string_view(); }

std::string Type::str() const {
  switch (kind_) {
    case Kind::Real: return "real";
    case Kind::Vec: return "real[" + std::string(width_.str()) + "]";
    case Kind::Box: return "box";
  }
  return "?";
}

}  // namespace lossforge
