// Generated source compiled at test time by the system C++ compiler into a
// shared object and opened with dlopen (tests/aot/).
#pragma once

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include "compiler/codegen_c.hpp"

namespace lossforge::generated_testing {

using Launch = c_codegen::LaunchBlock;

inline std::string temp_dir() {
  const std::string dir = ::testing::TempDir() + "/lossforge_generated_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  return dir;
}

// Compiles `source` into a shared object and opens it.
class SharedObject {
 public:
  SharedObject(const std::string& source, const std::string& name) {
    const std::string dir = temp_dir();
    const std::string cpp = dir + "/" + name + ".cpp", so = dir + "/" + name + ".so";
    std::ofstream(cpp) << source;
    const char* cxx = std::getenv("CXX");
    const std::string command = std::string(cxx && *cxx ? cxx : "c++") + " -std=c++20 -O1 -shared -fPIC -o " + so +
                                " " + cpp + " 2> " + dir + "/" + name + ".log";
    const auto start = std::chrono::steady_clock::now();
    const int status = std::system(command.c_str());
    seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (status != 0) {
      std::ifstream log(dir + "/" + name + ".log");
      std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
      throw std::runtime_error("the generated C++ does not compile (" + cpp + "):\n" + text.substr(0, 4000));
    }
    handle_ = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle_) throw std::runtime_error(std::string("dlopen: ") + dlerror());
  }
  SharedObject(const SharedObject&) = delete;
  SharedObject& operator=(const SharedObject&) = delete;
  ~SharedObject() {
    if (handle_) dlclose(handle_);
  }
  template <class F>
  F function(const std::string& name) const {
    void* f = dlsym(handle_, name.c_str());
    if (!f) throw std::runtime_error("no symbol " + name);
    return reinterpret_cast<F>(f);
  }
  double seconds() const { return seconds_; }

 private:
  void* handle_ = nullptr;
  double seconds_ = 0;
};

}  // namespace lossforge::generated_testing
