// The CUDA driver API, loaded at run time with dlopen("libcuda.so.1").
//
// lossforge never links libcuda: a binary linked against it does not even
// start on a machine without the NVIDIA driver. Here the library is opened on
// first use; when it is missing, or cuInit fails, or there is no device,
// cuda_driver() throws UnavailableError("no CUDA device: <why>"), a clean,
// typed condition the CLI reports in one line and tests turn into a skip.
// Entry points are looked up by their versioned names (cuMemAlloc_v2, ...:
// the names cuda.h's macros map the plain names to).
#pragma once

#include <cuda.h>

#include <string>

namespace lossforge::cuda {

struct Driver {
  CUresult (*cuInit)(unsigned int);
  CUresult (*cuDriverGetVersion)(int*);
  CUresult (*cuDeviceGetCount)(int*);
  CUresult (*cuDeviceGet)(CUdevice*, int);
  CUresult (*cuDeviceGetName)(char*, int, CUdevice);
  CUresult (*cuDeviceGetAttribute)(int*, CUdevice_attribute, CUdevice);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext*, CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuCtxSynchronize)();
  CUresult (*cuModuleLoadData)(CUmodule*, const void*);
  CUresult (*cuModuleUnload)(CUmodule);
  CUresult (*cuModuleGetFunction)(CUfunction*, CUmodule, const char*);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream,
                             void**, void**);
  CUresult (*cuMemAlloc)(CUdeviceptr*, size_t);
  CUresult (*cuMemFree)(CUdeviceptr);
  CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void*, size_t);
  CUresult (*cuMemcpyDtoH)(void*, CUdeviceptr, size_t);
  CUresult (*cuMemsetD8)(CUdeviceptr, unsigned char, size_t);
  CUresult (*cuStreamSynchronize)(CUstream);
  CUresult (*cuGetErrorString)(CUresult, const char**);

  // Device 0 as the kernels see it.
  CUdevice device = 0;
  CUcontext context = nullptr;  // its primary context (the one the runtime API and PyTorch use)
  int arch = 0;                 // compute capability major * 10 + minor
  int multiprocessors = 0;
  std::string name;

  // Makes the primary context current on the calling thread.
  void make_current() const;
  // Throws lossforge::Error "CUDA: <what>: <driver's message>" unless CUDA_SUCCESS.
  void check(CUresult result, const std::string& what) const;
};

// The driver, loaded and initialised once per process. Throws UnavailableError
// ("no CUDA device: ...") when there is none; later calls throw the same.
const Driver& cuda_driver();

// Whether cuda_driver() would succeed (never throws).
bool cuda_device_available();

}  // namespace lossforge::cuda
