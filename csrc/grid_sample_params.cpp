#include "grid_sample_params.h"

#include <stdexcept>

namespace mlx_upsample {

const char* grid_mode_name(upsample::Mode m) {
  switch (m) {
    case upsample::MODE_NEAREST:
      return "nearest";
    case upsample::MODE_LINEAR:
      return "bilinear";
    case upsample::MODE_CUBIC:
      return "bicubic";
    default:
      return "(not a grid_sample mode)";
  }
}

const char* padding_name(upsample::Padding p) {
  switch (p) {
    case upsample::PADDING_ZEROS:
      return "zeros";
    case upsample::PADDING_BORDER:
      return "border";
    case upsample::PADDING_REFLECTION:
      return "reflection";
  }
  return "(not a padding mode)";
}

std::string GridSampleParams::describe(int dims) const {
  return std::string(dims == 3 && mode == upsample::MODE_LINEAR ? "trilinear" : grid_mode_name(mode)) +
      ", padding_mode=" + padding_name(padding) +
      ", align_corners=" + (align_corners ? "True" : "False");
}

void validate(const GridSampleParams& p, int dims) {
  if (p.mode != upsample::MODE_NEAREST && p.mode != upsample::MODE_LINEAR &&
      p.mode != upsample::MODE_CUBIC) {
    throw std::invalid_argument(
        "[grid_sample] mode must be nearest, linear (bilinear) or cubic (bicubic)");
  }
  if (p.padding != upsample::PADDING_ZEROS && p.padding != upsample::PADDING_BORDER &&
      p.padding != upsample::PADDING_REFLECTION) {
    throw std::invalid_argument(
        "[grid_sample] padding_mode must be zeros, border or reflection");
  }
  if (dims != 2 && dims != 3) {
    throw std::invalid_argument(
        "[grid_sample] takes 2 or 3 spatial dims, not " + std::to_string(dims));
  }
  if (dims == 3 && p.mode == upsample::MODE_CUBIC) {
    throw std::invalid_argument(
        "[grid_sample] mode='bicubic' needs a 4-D input (N, H, W, C); a 5-D "
        "input takes 'bilinear' (trilinear) or 'nearest', as in PyTorch");
  }
}

upsample::GridSampleArgs grid_sample_args(
    const GridSampleParams& p,
    const std::vector<int>& spatial) {
  int dims = static_cast<int>(spatial.size());
  validate(p, dims);
  upsample::GridSampleArgs args{};
  args.dims = dims;
  args.mode = p.mode;
  args.padding = p.padding;
  for (int d = 0; d < upsample::GRID_MAX_DIMS; ++d) {
    // axis[0] is x, the last spatial axis; a 2-D call's z is size 1.
    int size = d < dims ? spatial[dims - 1 - d] : 1;
    args.axis[d] = upsample::grid_axis(size, p.align_corners, dims);
  }
  return args;
}

} // namespace mlx_upsample
