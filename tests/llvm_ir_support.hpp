// Helpers for tests that read the LLVM IR the kernels are made of.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>

namespace lossforge::testing {

// Call instructions in `ir` whose text up to the callee's '(' (result type
// and callee: "call <8 x float> @_ZGVdN8v_expf") contains any of `callees`.
inline size_t calls_in_ir(const std::string& ir, std::initializer_list<std::string_view> callees) {
  size_t count = 0;
  for (size_t at = ir.find("call "); at != std::string::npos; at = ir.find("call ", at + 1)) {
    const std::string_view call = std::string_view(ir).substr(at, ir.find('(', at) - at);
    for (std::string_view callee : callees)
      if (call.find(callee) != std::string_view::npos) {
        ++count;
        break;
      }
  }
  return count;
}

}  // namespace lossforge::testing
