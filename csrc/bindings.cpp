// Python bindings of the upsample op (nanobind, MLX's "mlx" domain).
//
// The Python layer (python/mlx_upsample) checks the types and shapes of the
// user's arguments and maps both semantic families onto this one call, with
// the math header's modes (upsample_math.h) as the Python enum Mode; the op
// checks limits and dtypes (primitives.cpp).
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/variant.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <string>

#include "cpu/thread_pool.h"
#include "layout.h"
#include "mlx/transforms.h"
#include "grid_sample_primitives.h"
#include "primitives.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace mx = mlx::core;

namespace {

// The keys of every nanobind registry in this interpreter
// ("__nb_internals_<ABI tag>_<domain>__"). Modules share types only within
// one registry: mlx.core's arrays reach this module only when both joined
// the same "mlx" one (CMakeLists.txt, Note [nanobind ABI]).
nb::list nanobind_registries() {
  nb::list keys;
  PyObject* dict = PyInterpreterState_GetDict(PyInterpreterState_Get());
  PyObject* key = nullptr;
  PyObject* value = nullptr;
  Py_ssize_t pos = 0;
  while (dict != nullptr && PyDict_Next(dict, &pos, &key, &value)) {
    if (PyUnicode_Check(key)) {
      nb::str name = nb::borrow<nb::str>(key);
      if (std::string(name.c_str()).rfind("__nb_internals_", 0) == 0) {
        keys.append(name);
      }
    }
  }
  return keys;
}

} // namespace

NB_MODULE(_ext, m) {
  m.doc() = "C++ core of mlx_upsample: the MLX primitives of upsample and grid_sample";

  nb::register_exception_translator([](const std::exception_ptr& e, void*) {
    try {
      std::rethrow_exception(e);
    } catch (const mlx_upsample::NotImplemented& err) {
      PyErr_SetString(PyExc_NotImplementedError, err.what());
    }
  });

  nb::enum_<mlx_upsample::Family>(
      m, "Family", "Which reference's coordinate rules the op follows.")
      .value("mlx", mlx_upsample::Family::MLX, "mlx.nn.Upsample's")
      .value("pytorch", mlx_upsample::Family::PyTorch, "PyTorch's F.interpolate's");

  nb::enum_<upsample::Mode>(m, "Mode", "The resampling methods (upsample_math.h).")
      .value("nearest", upsample::MODE_NEAREST)
      .value("nearest_exact", upsample::MODE_NEAREST_EXACT, "PyTorch family only")
      .value("linear", upsample::MODE_LINEAR)
      .value("cubic", upsample::MODE_CUBIC)
      .value("antialias_linear", upsample::MODE_AA_LINEAR)
      .value("antialias_cubic", upsample::MODE_AA_CUBIC)
      .value("area", upsample::MODE_AREA, "PyTorch family only");

  m.def(
      "upsample",
      [](const mx::array& x,
         mlx_upsample::Family family,
         upsample::Mode mode,
         std::vector<double> scales,
         std::vector<int> sizes,
         bool align_corners,
         bool recompute_scale,
         mx::StreamOrDevice s) {
        mlx_upsample::UpsampleParams p{
            family, mode, align_corners, recompute_scale, std::move(scales), std::move(sizes)};
        return mlx_upsample::upsample(x, p, s);
      },
      "x"_a,
      "family"_a,
      "mode"_a,
      "scales"_a,
      "sizes"_a,
      nb::kw_only(),
      "align_corners"_a = false,
      "recompute_scale"_a = false,
      "stream"_a = nb::none(),
      "Upsample channels-last `x` (*batch, *spatial, C): one spatial axis per "
      "entry of `scales`, and one or more batch axes before them (the Python "
      "functions pass exactly one, N). Per spatial axis give "
      "either a scale (sizes[a] == 0) or a size (scales[a] == 0). `family` "
      "(a Family) selects the coordinate rules, `mode` (a Mode) the method.");

  nb::enum_<upsample::Padding>(
      m, "Padding", "How grid_sample samples outside the input (grid_sample_math.h).")
      .value("zeros", upsample::PADDING_ZEROS)
      .value("border", upsample::PADDING_BORDER)
      .value("reflection", upsample::PADDING_REFLECTION);

  m.def(
      "grid_sample",
      [](const mx::array& x,
         const mx::array& grid,
         upsample::Mode mode,
         upsample::Padding padding,
         bool align_corners,
         mx::StreamOrDevice s) {
        return mlx_upsample::grid_sample(
            x, grid, mlx_upsample::GridSampleParams{mode, padding, align_corners}, s);
      },
      "x"_a,
      "grid"_a,
      "mode"_a,
      "padding"_a,
      nb::kw_only(),
      "align_corners"_a = false,
      "stream"_a = nb::none(),
      "Sample channels-last `x` (*batch, *spatial, C) at the normalised "
      "coordinates of `grid` (*batch, *out_spatial, dims), dims 2 or 3; "
      "`mode` is Mode.nearest, Mode.linear or Mode.cubic (2-D).");

  // The Python package wraps set_num_threads to check the type of n.
  m.def("set_num_threads", &mlx_upsample::cpu::set_num_threads, "n"_a,
        "Threads used by the CPU kernels, 1 <= n <= MAX_THREADS.");
  m.def("get_num_threads", &mlx_upsample::cpu::num_threads,
        "Threads used by the CPU kernels.");
  m.def("num_threads_env_problem", &mlx_upsample::cpu::num_threads_env_problem,
        "Why MLX_UPSAMPLE_NUM_THREADS was ignored, or '' if unset or used.");
  m.attr("MAX_THREADS") = mlx_upsample::cpu::MAX_THREADS;
  m.attr("MAX_AXIS_SIZE") = mlx_upsample::MAX_AXIS_SIZE;

  // Test hook: the layout of an array's memory once it is evaluated.
  m.def(
      "_strides",
      [](mx::array a) {
        mx::eval(a);
        std::vector<int64_t> strides(a.strides().begin(), a.strides().end());
        return std::make_pair(strides, bool(a.flags().row_contiguous));
      },
      "a"_a,
      "(strides, row_contiguous) of `a`, evaluated (for the tests).");

  // Test hook: what a kernel that reads strides (layout::Reads::Strided, the
  // Metal backend) is handed for `src` when `x` is the primitive's input,
  // as the emulator tests replay it.
  m.def(
      "_strided_operand",
      [](mx::array src, mx::array x, int dims) {
        mx::eval(src, x);
        bool images = mlx_upsample::layout::computes_channel_images(x, dims);
        mx::array a = images ? mlx_upsample::layout::channel_images(src, dims) : src;
        std::vector<int> shape(a.shape().begin(), a.shape().end());
        std::vector<int64_t> strides(a.strides().begin(), a.strides().end());
        int64_t offset = int64_t(a.offset() / mx::size_of(a.dtype()));
        return std::make_tuple(images, shape, strides, offset);
      },
      "src"_a, "x"_a, "dims"_a,
      "(channel images?, shape, strides, offset in elements) of the array a "
      "strided kernel reads for `src` (evaluated) given the input `x` (for the tests).");

  m.def("nanobind_registries", &nanobind_registries,
        "Keys of the nanobind registries in this interpreter (self-check).");
}
