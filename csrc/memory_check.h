// Refusing a call whose buffers would exceed MLX's memory limit, before
// any is allocated, on either backend: Linux hands out address space freely
// and would rather kill the process half-way through filling a table than
// fail the allocation, and a Mac swaps.
#pragma once

#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace mlx_upsample {

// A std::bad_alloc that says what did not fit: nanobind turns it into a
// MemoryError with this message. The text lives in a std::runtime_error,
// whose copies cannot throw, as an exception's must not.
class OutOfMemory : public std::bad_alloc {
 public:
  explicit OutOfMemory(const std::string& what) : what_(what) {}
  const char* what() const noexcept override {
    return what_.what();
  }

 private:
  std::runtime_error what_;
};

// "(1, 64, 64, 4)".
std::string shape_text(const std::vector<int>& shape);

// "1.5 GB", "12.0 MB", "65.5 KB".
std::string bytes_text(double bytes);

// MLX's memory limit in bytes (mx::get_memory_limit). Defined apart
// (memory_limit.cpp) so that the Metal launch plan, which is plain C++, can
// run in the Metal emulator, which defines its own.
double memory_limit();

// Throws OutOfMemory, "<call> needs up to <bytes> for <what>, more than
// MLX's memory limit of ...", when `bytes` exceed memory_limit().
void check_memory(double bytes, const std::string& call, const std::string& what);

} // namespace mlx_upsample
