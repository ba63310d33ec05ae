#include "metal/upsample_metal.h"

#include <optional>

#include "metal/launch_plan.h"
#include "metal/library.h"
#include "mlx/allocator.h"
#include "mlx/backend/metal/device.h"

namespace mlx_upsample::metal {

namespace mx = mlx::core;

void upsample(
    const mx::array& src,
    mx::array& dst,
    const UpsampleParams& p,
    mx::Stream s,
    bool backward) {
  std::vector<int64_t> strides(src.strides().begin(), src.strides().end());
  LaunchPlan plan = plan_launch(
      p,
      backward,
      std::vector<int>(src.shape().begin(), src.shape().end()),
      strides,
      std::vector<int>(dst.shape().begin(), dst.shape().end()),
      kernel_type_name(src.dtype()),
      static_cast<int>(mx::size_of(src.dtype())),
      src.offset());
  if (plan.launches.empty()) {
    dst.copy_shared_buffer(src); // every axis is the identity
    return;
  }
  dst.set_data(mx::allocator::malloc(dst.nbytes()));
  if (dst.size() == 0) {
    return; // empty batch or no channels
  }

  auto& device = mx::metal::device(s.device);
  auto* lib = library(device);
  auto& encoder = mx::metal::get_command_encoder(s);
  // The float32 temporary between two launches, freed once the command
  // buffer completes (MLX orders the second launch after the first: it
  // reads what the first wrote).
  std::optional<mx::array> temporary;
  if (!plan.temporary_shape.empty()) {
    temporary.emplace(
        mx::Shape(plan.temporary_shape.begin(), plan.temporary_shape.end()),
        mx::float32,
        nullptr,
        std::vector<mx::array>{});
    temporary->set_data(mx::allocator::malloc(temporary->nbytes()));
    // Handed to the command buffer at once (a shared handle): should a later
    // launch fail to encode, the one already encoded still writes into it.
    encoder.add_temporary(*temporary);
  }
  // The source copied row-contiguous (Note [staging] in upsample.metal),
  // held the same way.
  std::optional<mx::array> staging;
  if (plan.staging_elements > 0) {
    staging.emplace(src.shape(), src.dtype(), nullptr, std::vector<mx::array>{});
    staging->set_data(mx::allocator::malloc(staging->nbytes()));
    encoder.add_temporary(*staging);
  }
  auto scratch = [&](Buffer b) -> mx::array& {
    return b == Buffer::Staging ? *staging : *temporary;
  };
  for (Launch& launch : plan.launches) {
    auto* kernel = device.get_kernel(launch.kernel, lib);
    fit_threadgroup(
        launch, static_cast<unsigned int>(kernel->maxTotalThreadsPerThreadgroup()));
    encoder.set_compute_pipeline_state(kernel);
    encoder.set_input_array(launch.reads == Buffer::Source ? src : scratch(launch.reads), 0);
    encoder.set_output_array(
        launch.writes == Buffer::Destination ? dst : scratch(launch.writes), 1);
    encoder.set_bytes(launch.params, 2);
    const std::vector<uint32_t>& words = launch.table.words;
    if (launch.table.bytes() < MAX_INLINE_TABLE_BYTES) {
      encoder.set_bytes(words.data(), static_cast<int>(words.size()), 3);
    } else {
      // A buffer of its own, kept alive until the command buffer completes.
      mx::array table(
          words.begin(), mx::Shape{static_cast<int>(words.size())}, mx::uint32);
      encoder.add_temporary(table);
      encoder.set_input_array(table, 3);
    }
    encoder.dispatch_threads(
        MTL::Size(launch.grid[0], launch.grid[1], launch.grid[2]),
        MTL::Size(launch.group[0], launch.group[1], launch.group[2]));
  }
}

} // namespace mlx_upsample::metal
