// safetensors files (the format of Hugging Face and torchvision weight
// exports): an 8-byte little-endian header length, a JSON header mapping each
// tensor name to {dtype, shape, data_offsets: [begin, end)} (offsets into the
// byte buffer that follows; an optional "__metadata__" entry of strings), then
// the raw little-endian data. Read here without any library beyond
// nlohmann_json, so that users can start the backbone from ImageNet weights.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace torch::nn {
class Module;
}

namespace lossforge::detectors {

// Every tensor of the file, by name, as CPU tensors of their stored dtype
// (F32, F64, F16, BF16, I64, I32, U8, BOOL). Throws InputError naming the file
// for a short file, a bad header, an unknown dtype, or offsets that do not fit
// the shape or the buffer.
std::map<std::string, at::Tensor> read_safetensors(const std::filesystem::path& path);

// Writes tensors (made contiguous, CPU) atomically, in the given order.
void write_safetensors(const std::filesystem::path& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors);

struct WeightLoadReport {
  size_t loaded = 0;                    // parameters and buffers copied
  std::vector<std::string> ignored;     // tensors of the file the module has no use for (e.g. fc.*)
};

// Copies the file's tensors into `module`'s parameters and buffers of the same
// names (torchvision's key names: conv1.weight, layer1.0.bn1.running_mean,
// ...), converting dtypes. Throws InputError naming the file and the tensor
// when a parameter or buffer is missing from the file (num_batches_tracked
// excepted: older exports lack it) or its shape differs.
WeightLoadReport load_weights(torch::nn::Module& module, const std::filesystem::path& path);

}  // namespace lossforge::detectors
