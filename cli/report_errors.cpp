#include "cli/report_errors.hpp"

#include <iostream>
#include <new>

#include "cli/command.hpp"
#include "compiler/diagnostics.hpp"

namespace lossforge::cli {

int run_reporting_errors(const std::function<int()>& body) {
  try {
    const int status = body();
    std::cout.flush();
    if (!std::cout) {
      std::cerr << "lossforge: cannot write to standard output\n";
      return exit_code::kFailure;
    }
    return status;
  } catch (const CompileError& e) {
    std::cout.flush();
    std::cerr << e.what() << '\n';  // file:line:col: error: ... with the source line and caret
    return exit_code::kFailure;
  } catch (const UsageError& e) {
    std::cerr << "lossforge: " << e.what() << '\n';
    return exit_code::kUsage;
  } catch (const Error& e) {
    std::cout.flush();
    std::cerr << "lossforge: " << e.what() << '\n';
    return exit_code::kFailure;
  } catch (const std::bad_alloc&) {
    std::cerr << "lossforge: out of memory\n";
    return exit_code::kFailure;
  } catch (const std::exception& e) {
    std::cerr << "lossforge: internal error (please report it): " << e.what() << '\n';
    return exit_code::kFailure;
  }
}

}  // namespace lossforge::cli
