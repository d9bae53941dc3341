#include "runtime/cuda/driver.hpp"

#include <dlfcn.h>

#include <memory>
#include <mutex>

#include "compiler/error.hpp"

namespace lossforge::cuda {
namespace {

// Loads the library and every entry point, initialises device 0. Returns the
// reason instead of throwing so the outcome can be kept for later calls.
std::unique_ptr<Driver> load(std::string& why) {
  void* library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    why = "libcuda.so.1 cannot be loaded (no NVIDIA driver on this machine)";
    return nullptr;
  }
  auto driver = std::make_unique<Driver>();
  bool missing = false;
  auto bind = [&](auto& function, const char* symbol) {
    void* address = dlsym(library, symbol);
    if (!address && !missing) {
      missing = true;
      why = std::string("the NVIDIA driver lacks ") + symbol + " (too old?)";
    }
    function = reinterpret_cast<std::remove_reference_t<decltype(function)>>(address);
  };
  bind(driver->cuInit, "cuInit");
  bind(driver->cuDriverGetVersion, "cuDriverGetVersion");
  bind(driver->cuDeviceGetCount, "cuDeviceGetCount");
  bind(driver->cuDeviceGet, "cuDeviceGet");
  bind(driver->cuDeviceGetName, "cuDeviceGetName");
  bind(driver->cuDeviceGetAttribute, "cuDeviceGetAttribute");
  bind(driver->cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
  bind(driver->cuCtxSetCurrent, "cuCtxSetCurrent");
  bind(driver->cuCtxSynchronize, "cuCtxSynchronize");
  bind(driver->cuModuleLoadData, "cuModuleLoadData");
  bind(driver->cuModuleUnload, "cuModuleUnload");
  bind(driver->cuModuleGetFunction, "cuModuleGetFunction");
  bind(driver->cuLaunchKernel, "cuLaunchKernel");
  bind(driver->cuMemAlloc, "cuMemAlloc_v2");
  bind(driver->cuMemFree, "cuMemFree_v2");
  bind(driver->cuMemcpyHtoD, "cuMemcpyHtoD_v2");
  bind(driver->cuMemcpyDtoH, "cuMemcpyDtoH_v2");
  bind(driver->cuMemsetD8, "cuMemsetD8_v2");
  bind(driver->cuStreamSynchronize, "cuStreamSynchronize");
  bind(driver->cuGetErrorString, "cuGetErrorString");
  if (missing) return nullptr;
  // The library stays loaded for the life of the process (modules point into it).
  if (CUresult r = driver->cuInit(0); r != CUDA_SUCCESS) {
    const char* message = nullptr;
    driver->cuGetErrorString(r, &message);
    why = std::string("cuInit failed: ") + (message ? message : "unknown error");
    return nullptr;
  }
  int count = 0;
  if (driver->cuDeviceGetCount(&count) != CUDA_SUCCESS || count == 0) {
    why = "the NVIDIA driver reports no device";
    return nullptr;
  }
  int major = 0, minor = 0;
  char name[256] = {};
  if (driver->cuDeviceGet(&driver->device, 0) != CUDA_SUCCESS ||
      driver->cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, driver->device) != CUDA_SUCCESS ||
      driver->cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, driver->device) != CUDA_SUCCESS ||
      driver->cuDeviceGetAttribute(&driver->multiprocessors, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, driver->device) !=
          CUDA_SUCCESS ||
      driver->cuDeviceGetName(name, sizeof name - 1, driver->device) != CUDA_SUCCESS ||
      driver->cuDevicePrimaryCtxRetain(&driver->context, driver->device) != CUDA_SUCCESS) {
    why = "device 0 cannot be opened";
    return nullptr;
  }
  driver->arch = major * 10 + minor;
  driver->name = name;
  return driver;
}

struct Loaded {
  std::unique_ptr<Driver> driver;
  std::string why;
};

const Loaded& loaded() {
  static const Loaded state = [] {
    Loaded l;
    l.driver = load(l.why);
    return l;
  }();
  return state;
}

}  // namespace

void Driver::make_current() const { check(cuCtxSetCurrent(context), "cannot make the context current"); }

void Driver::check(CUresult result, const std::string& what) const {
  if (result == CUDA_SUCCESS) return;
  const char* message = nullptr;
  cuGetErrorString(result, &message);
  throw Error("CUDA: " + what + ": " + (message ? message : "error " + std::to_string(int(result))));
}

const Driver& cuda_driver() {
  const Loaded& l = loaded();
  if (!l.driver) throw UnavailableError("no CUDA device: " + l.why);
  return *l.driver;
}

bool cuda_device_available() { return loaded().driver != nullptr; }

}  // namespace lossforge::cuda
