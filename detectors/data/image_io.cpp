#include "detectors/data/image_io.hpp"

#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>

#include "compiler/error.hpp"

#if defined(LOSSFORGE_HAVE_ZLIB)
#include <zlib.h>

#include <cstdlib>
// zlib's deflate at its fastest level is several times faster than stb's own
// on noisy images; stb frees the result with free().
static unsigned char* zlib_compress(unsigned char* data, int size, int* out_size, int /*quality*/) {
  uLongf capacity = compressBound(static_cast<uLong>(size));
  auto* out = static_cast<unsigned char*>(std::malloc(capacity));
  if (!out || compress2(out, &capacity, data, static_cast<uLong>(size), Z_BEST_SPEED) != Z_OK) {
    std::free(out);
    return nullptr;
  }
  *out_size = static_cast<int>(capacity);
  return out;
}
#define STBIW_ZLIB_COMPRESS zlib_compress
#endif

// The stb functions stay private to this file (no clash with another copy).
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb_image.h>
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace lossforge::data {

RgbImage read_image(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code error;
    throw InputError(name + (std::filesystem::exists(path, error) ? ": cannot open image for reading" : ": no such image file"));
  }
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw InputError(name + ": read error");
  if (bytes.empty()) throw InputError(name + ": empty image file");
  if (bytes.size() > static_cast<size_t>(INT32_MAX)) throw InputError(name + ": image file too large");
  int width = 0, height = 0, channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> decoded(
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &width,
                            &height, &channels, 3),
      stbi_image_free);
  if (!decoded) {
    const char* reason = stbi_failure_reason();
    throw InputError(name + ": cannot decode image (" + (reason ? reason : "unknown reason") +
                     "; JPEG and PNG are supported)");
  }
  RgbImage image;
  image.width = width;
  image.height = height;
  image.pixels.assign(decoded.get(), decoded.get() + static_cast<size_t>(width) * height * 3);
  return image;
}

namespace {
// Set once, before any thread encodes: the fastest settings, since noisy
// synthetic images hardly compress anyway (the Sub filter spares stb trying
// all five filters on every row).
const bool kPngSettings = [] {
  stbi_write_png_compression_level = 5;
  stbi_write_force_png_filter = 1;
  return true;
}();
}  // namespace

std::string encode_png(const uint8_t* rgb, int width, int height) {
  (void)kPngSettings;
  std::string bytes;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  if (!stbi_write_png_to_func(append, &bytes, width, height, 3, rgb, width * 3))
    throw Error("cannot encode a " + std::to_string(width) + "x" + std::to_string(height) + " PNG image");
  return bytes;
}

}  // namespace lossforge::data
