#include "cpu/allocate.h"

#include <cstdint>

#include <sys/mman.h>

#include "memory_check.h"
#include "mlx/allocator.h"

namespace mlx_upsample::cpu {

namespace mx = mlx::core;

namespace {

// Fresh large allocations arrive as untouched pages, and faulting them in 4 KB
// at a time costs more than the upsampling itself. Where the kernel lets
// processes opt in to transparent huge pages, ask for them on our own
// freshly allocated output (a hint: nothing changes if it is declined).
void prefer_huge_pages(void* data, size_t bytes) {
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t HUGE_PAGE = uintptr_t(2) << 20;
  if (bytes < 2 * HUGE_PAGE) {
    return;
  }
  uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(HUGE_PAGE - 1);
  if (end > begin) {
    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
  }
#else
  (void)data, (void)bytes; // no such hint here (macOS)
#endif
}

} // namespace

void allocate(mx::array& a, const std::string& call) {
  mx::allocator::Data data = mx::allocator::malloc(a.nbytes());
  if (data.buffer().ptr() == nullptr && a.nbytes() > 0) {
    throw OutOfMemory(
        call + ": out of memory for its result (" + bytes_text(double(a.nbytes())) + ")");
  }
  a.set_data(std::move(data));
  prefer_huge_pages(a.data<void>(), a.nbytes());
}

} // namespace mlx_upsample::cpu
