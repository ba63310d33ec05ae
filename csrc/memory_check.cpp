#include "memory_check.h"

#include <cstdio>

namespace mlx_upsample {

std::string shape_text(const std::vector<int>& shape) {
  std::string text = "(";
  for (size_t k = 0; k < shape.size(); ++k) {
    text += (k ? ", " : "") + std::to_string(shape[k]);
  }
  return text + ")";
}

std::string bytes_text(double bytes) {
  char text[32];
  if (bytes >= 1e9) {
    std::snprintf(text, sizeof(text), "%.1f GB", bytes / 1e9);
  } else if (bytes >= 1e6) {
    std::snprintf(text, sizeof(text), "%.1f MB", bytes / 1e6);
  } else {
    std::snprintf(text, sizeof(text), "%.1f KB", bytes / 1e3);
  }
  return text;
}

void check_memory(double bytes, const std::string& call, const std::string& what) {
  double limit = memory_limit();
  if (bytes > limit) {
    throw OutOfMemory(
        call + " needs up to " + bytes_text(bytes) + " for " + what +
        ", more than MLX's memory limit of " + bytes_text(limit) +
        " (mx.get_memory_limit(); mx.set_memory_limit raises it)");
  }
}

} // namespace mlx_upsample
