// Decoding and encoding images: JPEG and PNG in, PNG out, through stb_image
// and stb_image_write (compiled into this one file). Internal to the data
// component.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lossforge::data {

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;  // height × width × 3
};

// Reads and decodes an image file as 8-bit RGB (grey and alpha converted).
// Throws lossforge::InputError naming the file when it is missing, unreadable
// or not a decodable image.
RgbImage read_image(const std::filesystem::path& path);

// The PNG bytes of an RGB image (deterministic for the same pixels).
std::string encode_png(const uint8_t* rgb, int width, int height);

}  // namespace lossforge::data
