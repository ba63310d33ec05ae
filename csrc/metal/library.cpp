#include "metal/library.h"

#include <dlfcn.h>

#include <filesystem>
#include <stdexcept>

namespace mlx_upsample::metal {

namespace mx = mlx::core;

namespace {

constexpr const char* LIBRARY_NAME = "mlx_upsample";

// mlx_upsample.metallib is installed next to this extension module.
const std::string& library_dir() {
  static const std::string dir = [] {
    Dl_info info;
    if (dladdr(reinterpret_cast<const void*>(&library_dir), &info) == 0 ||
        info.dli_fname == nullptr) {
      throw std::runtime_error(
          "[upsample] cannot locate the mlx_upsample extension to load "
          "mlx_upsample.metallib");
    }
    return std::filesystem::path(info.dli_fname).parent_path().string();
  }();
  return dir;
}

} // namespace

MTL::Library* library(mx::metal::Device& device) {
  return device.get_library(LIBRARY_NAME, library_dir());
}

std::string kernel_type_name(mx::Dtype t) {
  if (t == mx::float32) {
    return "float32";
  } else if (t == mx::float16) {
    return "float16";
  } else if (t == mx::bfloat16) {
    return "bfloat16";
  }
  return "non-float";
}

} // namespace mlx_upsample::metal
