#include "detectors/train/safetensors.hpp"

#include <torch/nn/module.h>

#include <ATen/ATen.h>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "compiler/error.hpp"
#include "runtime/files.hpp"

namespace lossforge::detectors {
namespace {

struct DtypeName {
  const char* name;
  at::ScalarType type;
};
constexpr DtypeName kDtypes[] = {{"F32", at::kFloat}, {"F64", at::kDouble}, {"F16", at::kHalf},
                                 {"BF16", at::kBFloat16}, {"I64", at::kLong}, {"I32", at::kInt},
                                 {"U8", at::kByte}, {"BOOL", at::kBool}};

std::optional<at::ScalarType> dtype_of(const std::string& name) {
  for (const DtypeName& d : kDtypes)
    if (name == d.name) return d.type;
  return std::nullopt;
}

const char* name_of(at::ScalarType type) {
  for (const DtypeName& d : kDtypes)
    if (d.type == type) return d.name;
  throw InputError(std::string("safetensors: cannot store dtype ") + c10::toString(type));
}

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string() + ": cannot open the weights file");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

}  // namespace

std::map<std::string, at::Tensor> read_safetensors(const std::filesystem::path& path) {
  const std::string file = path.string();
  const std::string bytes = read_all(path);
  if (bytes.size() < 8) throw InputError(file + ": not a safetensors file (shorter than its 8-byte header length)");
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = header_size << 8 | static_cast<unsigned char>(bytes[i]);
  if (header_size > bytes.size() - 8)
    throw InputError(file + ": not a safetensors file (header length " + std::to_string(header_size) +
                     " exceeds the file)");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.substr(8, header_size));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(file + ": bad safetensors header: " + e.what());
  }
  if (!header.is_object()) throw InputError(file + ": bad safetensors header: not a JSON object");
  const size_t data_begin = 8 + header_size;
  const size_t data_size = bytes.size() - data_begin;
  std::map<std::string, at::Tensor> tensors;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    const std::string where = file + ": tensor '" + name + "'";
    try {
      const std::string dtype_name = entry.at("dtype").get<std::string>();
      const std::optional<at::ScalarType> dtype = dtype_of(dtype_name);
      if (!dtype) throw InputError(where + " has unsupported dtype " + dtype_name);
      const std::vector<int64_t> shape = entry.at("shape").get<std::vector<int64_t>>();
      const std::vector<uint64_t> offsets = entry.at("data_offsets").get<std::vector<uint64_t>>();
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size)
        throw InputError(where + " has data_offsets outside the file's data");
      int64_t count = 1;
      for (int64_t d : shape) {
        if (d < 0) throw InputError(where + " has a negative dimension");
        count *= d;
      }
      const size_t want = static_cast<size_t>(count) * c10::elementSize(*dtype);
      if (offsets[1] - offsets[0] != want)
        throw InputError(where + " holds " + std::to_string(offsets[1] - offsets[0]) + " bytes; its shape needs " +
                         std::to_string(want));
      at::Tensor t = at::empty(shape, at::TensorOptions().dtype(*dtype));
      if (want) std::memcpy(t.data_ptr(), bytes.data() + data_begin + offsets[0], want);
      tensors.emplace(name, std::move(t));
    } catch (const nlohmann::json::exception& e) {
      throw InputError(where + ": bad header entry: " + e.what());
    }
  }
  return tensors;
}

void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const auto& [name, tensor] : tensors) {
    const at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
    const size_t begin = data.size();
    data.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
    header[name] = {{"dtype", name_of(t.scalar_type())}, {"shape", t.sizes().vec()}, {"data_offsets", {begin, data.size()}}};
  }
  const std::string text = header.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((uint64_t{text.size()} >> (8 * i)) & 0xff);
  write_file_atomic(path.string(), out + text + data);
}

WeightLoadReport load_weights(torch::nn::Module& module, const std::filesystem::path& path) {
  std::map<std::string, at::Tensor> tensors = read_safetensors(path);
  WeightLoadReport report;
  at::NoGradGuard no_grad;
  auto copy = [&](const std::string& name, at::Tensor& target) {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      if (name.ends_with("num_batches_tracked")) return;
      throw InputError(path.string() + ": has no tensor '" + name + "' that the model needs");
    }
    if (it->second.sizes() != target.sizes())
      throw InputError(path.string() + ": tensor '" + name + "' has shape " + c10::str(it->second.sizes()) +
                       " but the model's is " + c10::str(target.sizes()) +
                       " (pretrained weights need the full-width backbone)");
    target.copy_(it->second.to(target.scalar_type()));
    tensors.erase(it);
    ++report.loaded;
  };
  for (auto& item : module.named_parameters(true)) copy(item.key(), item.value());
  for (auto& item : module.named_buffers(true)) copy(item.key(), item.value());
  for (const auto& [name, tensor] : tensors) report.ignored.push_back(name);
  return report;
}

}  // namespace lossforge::detectors
