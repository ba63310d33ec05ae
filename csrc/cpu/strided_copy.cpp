#include "cpu/strided_copy.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "cpu/thread_pool.h"

namespace mlx_upsample::cpu {

namespace {

// Unit axes dropped and axes merged where one steps over the next whole:
// the same copy with as few axes as its strides allow.
void collapse(std::vector<int64_t>& shape, std::vector<int64_t>& strides) {
  std::vector<int64_t> s, t;
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] == 1) {
      continue;
    }
    if (!s.empty() && t.back() == strides[k] * shape[k]) {
      s.back() *= shape[k];
      t.back() = strides[k];
    } else {
      s.push_back(shape[k]);
      t.push_back(strides[k]);
    }
  }
  if (s.empty()) {
    s = {1};
    t = {1};
  }
  shape = std::move(s);
  strides = std::move(t);
}

// Tiles of the 2-D transposes (a source axis of stride 1 that is not the
// destination's last): TILE x TILE elements read along the one and written
// along the other, both in cache.
constexpr int64_t TILE = 32;

template <typename T>
void copy_rows(
    const T* src,
    T* dst,
    const std::vector<int64_t>& shape,
    const std::vector<int64_t>& strides) {
  int nd = static_cast<int>(shape.size());
  int64_t inner = shape[nd - 1], step = strides[nd - 1];
  // The source axis read contiguously, when the destination's last is not.
  int unit = -1;
  for (int k = 0; k < nd - 1; ++k) {
    if (strides[k] == 1) {
      unit = k;
    }
  }
  if (unit < 0 || step == 1) {
    int64_t rows = 1;
    for (int k = 0; k < nd - 1; ++k) {
      rows *= shape[k];
    }
    int64_t grain = std::max<int64_t>(1, GRAIN_ELEMENTS / inner);
    parallel_for(rows, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        int64_t rest = r, offset = 0;
        for (int k = nd - 2; k >= 0; --k) {
          offset += (rest % shape[k]) * strides[k];
          rest /= shape[k];
        }
        const T* in = src + offset;
        T* out = dst + r * inner;
        if (step == 1) {
          std::memcpy(out, in, sizeof(T) * inner);
        } else {
          for (int64_t i = 0; i < inner; ++i) {
            out[i] = in[i * step];
          }
        }
      }
    });
    return;
  }
  // Blocks of (unit axis) x (last axis): the other axes index the blocks.
  std::vector<int64_t> dst_strides(nd);
  dst_strides[nd - 1] = 1;
  for (int k = nd - 2; k >= 0; --k) {
    dst_strides[k] = dst_strides[k + 1] * shape[k + 1];
  }
  int64_t u_len = shape[unit];
  int64_t u_tiles = (u_len + TILE - 1) / TILE, i_tiles = (inner + TILE - 1) / TILE;
  int64_t outer = 1;
  for (int k = 0; k < nd - 1; ++k) {
    if (k != unit) {
      outer *= shape[k];
    }
  }
  int64_t blocks = outer * u_tiles * i_tiles;
  int64_t grain = std::max<int64_t>(1, GRAIN_ELEMENTS / (TILE * TILE));
  parallel_for(blocks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      int64_t it = b % i_tiles, ut = (b / i_tiles) % u_tiles, rest = b / (i_tiles * u_tiles);
      int64_t src_off = 0, dst_off = 0;
      for (int k = nd - 2; k >= 0; --k) {
        if (k == unit) {
          continue;
        }
        int64_t i = rest % shape[k];
        rest /= shape[k];
        src_off += i * strides[k];
        dst_off += i * dst_strides[k];
      }
      int64_t u0 = ut * TILE, u1 = std::min(u_len, u0 + TILE);
      int64_t i0 = it * TILE, i1 = std::min(inner, i0 + TILE);
      int64_t du = dst_strides[unit];
      for (int64_t i = i0; i < i1; ++i) {
        const T* in = src + src_off + i * step;
        T* out = dst + dst_off + i;
        for (int64_t u = u0; u < u1; ++u) {
          out[u * du] = in[u];
        }
      }
    }
  });
}

} // namespace

void strided_copy(
    const void* src,
    void* dst,
    std::vector<int64_t> shape,
    std::vector<int64_t> strides,
    int elem_bytes) {
  for (int64_t n : shape) {
    if (n == 0) {
      return;
    }
  }
  collapse(shape, strides);
  switch (elem_bytes) {
    case 1:
      return copy_rows(static_cast<const uint8_t*>(src), static_cast<uint8_t*>(dst), shape, strides);
    case 2:
      return copy_rows(static_cast<const uint16_t*>(src), static_cast<uint16_t*>(dst), shape, strides);
    case 4:
      return copy_rows(static_cast<const uint32_t*>(src), static_cast<uint32_t*>(dst), shape, strides);
    case 8:
      return copy_rows(static_cast<const uint64_t*>(src), static_cast<uint64_t*>(dst), shape, strides);
    default:
      throw std::invalid_argument("[upsample] internal: no copy for this element size");
  }
}

} // namespace mlx_upsample::cpu
