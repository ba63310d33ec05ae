// The parameter block of every upsample Metal kernel (buffer 2), shared
// byte for byte by the host launch plan, the .metal source and the emulator.
#pragma once

#include "upsample_math.h"

namespace upsample {

UPSAMPLE_CONSTANT constexpr int MAX_DIMS = 8;

struct KernelParams {
  int dims; // spatial dims in use (<= MAX_DIMS)
  int channels;
  // Grid x covers channel_groups packets of channels, grid y the spatial
  // positions of the array a thread writes (output forward, input backward),
  // grid z the batch.
  unsigned int channel_groups;
  unsigned int positions;
  AxisMap axes[MAX_DIMS];
};

} // namespace upsample
