#include "runtime/cuda/nvrtc_compiler.hpp"

#include <nvrtc.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <sstream>

#include "compiler/error.hpp"

namespace lossforge::cuda {
namespace {

void check(nvrtcResult result, const char* what) {
  if (result != NVRTC_SUCCESS) throw Error(std::string("NVRTC: ") + what + ": " + nvrtcGetErrorString(result));
}

struct ProgramDeleter {
  void operator()(nvrtcProgram* program) const {
    nvrtcDestroyProgram(program);
    delete program;
  }
};

// NVRTC's log with each "NAME(LINE): ..." followed by that line of the source.
std::string annotate(const std::string& log, const std::string& source, const std::string& name) {
  std::vector<std::string> lines;
  std::istringstream in(source);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::ostringstream out;
  std::istringstream log_in(log);
  for (std::string line; std::getline(log_in, line);) {
    out << line << '\n';
    const std::string prefix = name + "(";
    if (line.rfind(prefix, 0) != 0) continue;
    const size_t close = line.find(')', prefix.size());
    if (close == std::string::npos) continue;
    const size_t number = std::strtoul(line.c_str() + prefix.size(), nullptr, 10);
    if (number >= 1 && number <= lines.size()) out << "    " << number << " | " << lines[number - 1] << '\n';
  }
  return out.str();
}

}  // namespace

std::vector<std::string> nvrtc_extra_options() {
  std::vector<std::string> out;
  const char* text = std::getenv("LOSSFORGE_NVRTC_OPTIONS");
  std::istringstream words(text ? text : "");
  for (std::string word; words >> word;) out.push_back(word);
  return out;
}

CudaImage nvrtc_compile(const std::string& source, const std::string& name, int arch, bool cubin) {
  std::unique_ptr<nvrtcProgram, ProgramDeleter> program(new nvrtcProgram{});
  check(nvrtcCreateProgram(program.get(), source.c_str(), name.c_str(), 0, nullptr, nullptr), "cannot create a program");
  const std::string arch_option = std::string("--gpu-architecture=") + (cubin ? "sm_" : "compute_") + std::to_string(arch);
  // IEEE division and square root, no contraction into FMA: the kernels round
  // as the interpreter does, up to the math library's few ulp.
  std::vector<const char*> options = {arch_option.c_str(), "--std=c++17", "--fmad=false", "--prec-div=true",
                                      "--prec-sqrt=true", "--ftz=false", "-default-device"};
  const std::vector<std::string> extra = nvrtc_extra_options();
  for (const std::string& option : extra) options.push_back(option.c_str());
  const nvrtcResult compiled = nvrtcCompileProgram(*program, int(options.size()), options.data());
  if (compiled != NVRTC_SUCCESS) {
    size_t size = 0;
    nvrtcGetProgramLogSize(*program, &size);
    std::string log(size, '\0');
    if (size) nvrtcGetProgramLog(*program, log.data());
    while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
    throw Error("NVRTC cannot compile " + name + " for " + arch_option.substr(arch_option.find('=') + 1) + ":\n" +
                annotate(log, source, name));
  }
  CudaImage image;
  image.cubin = cubin;
  image.arch = arch;
  size_t size = 0;
  if (cubin) {
    check(nvrtcGetCUBINSize(*program, &size), "no CUBIN");
    image.bytes.resize(size);
    check(nvrtcGetCUBIN(*program, image.bytes.data()), "no CUBIN");
  } else {
    check(nvrtcGetPTXSize(*program, &size), "no PTX");
    image.bytes.resize(size);
    check(nvrtcGetPTX(*program, image.bytes.data()), "no PTX");
    while (!image.bytes.empty() && image.bytes.back() == '\0') image.bytes.pop_back();
  }
  return image;
}

std::vector<int> nvrtc_architectures() {
  int count = 0;
  check(nvrtcGetNumSupportedArchs(&count), "cannot list architectures");
  std::vector<int> archs(size_t(std::max(count, 0)));
  if (count > 0) check(nvrtcGetSupportedArchs(archs.data()), "cannot list architectures");
  return archs;
}

CudaImage nvrtc_compile_for_device(const std::string& source, const std::string& name, int device_arch) {
  const std::vector<int> archs = nvrtc_architectures();
  if (std::find(archs.begin(), archs.end(), device_arch) != archs.end())
    return nvrtc_compile(source, name, device_arch, true);
  int best = 0;
  for (int arch : archs)
    if (arch <= device_arch) best = std::max(best, arch);
  if (best == 0) throw UnavailableError("NVRTC " + nvrtc_version() + " cannot compile for sm_" + std::to_string(device_arch));
  return nvrtc_compile(source, name, best, false);
}

std::string nvrtc_version() {
  int major = 0, minor = 0;
  check(nvrtcVersion(&major, &minor), "no version");
  std::string version = "NVRTC " + std::to_string(major) + "." + std::to_string(minor);
  for (const std::string& option : nvrtc_extra_options()) version += " " + option;
  return version;
}

}  // namespace lossforge::cuda
