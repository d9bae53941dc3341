// NVRTC: CUDA C++ source -> CUBIN (for one GPU architecture) or PTX (for the
// driver to finish). Works without a GPU: the tests compile every generated
// kernel here, on machines with the toolkit and no device.
#pragma once

#include <string>
#include <vector>

namespace lossforge::cuda {

struct CudaImage {
  std::string bytes;  // the CUBIN (ELF) or the PTX text
  bool cubin = false;
  int arch = 0;       // 90 for sm_90 / compute_90
};

// Compiles `source` (named `name` in diagnostics) for `arch` (major * 10 +
// minor: 90 for an H100/H200). cubin: machine code for exactly that
// architecture; otherwise PTX for its virtual architecture. Throws
// lossforge::Error with NVRTC's log and, for each "name(LINE): error", the
// generated source line it points at.
CudaImage nvrtc_compile(const std::string& source, const std::string& name, int arch, bool cubin);

// The image to load on a device of architecture `device_arch`: a CUBIN when
// NVRTC knows that architecture, else PTX for the newest one it knows that is
// not newer than the device (the driver compiles PTX for newer GPUs).
CudaImage nvrtc_compile_for_device(const std::string& source, const std::string& name, int device_arch);

// Options appended to every compile, from $LOSSFORGE_NVRTC_OPTIONS (split at
// spaces), e.g. "--Ofast-compile=min" to trade kernel speed for compile time.
std::vector<std::string> nvrtc_extra_options();

// "NVRTC 13.0", plus any extra options (part of kernel cache keys).
std::string nvrtc_version();
// The architectures this NVRTC compiles CUBINs for: {75, 80, ..., 121}.
std::vector<int> nvrtc_architectures();

}  // namespace lossforge::cuda
