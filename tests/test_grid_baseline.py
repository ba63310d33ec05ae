"""bench/grid_baseline.py (the pure-MLX grid_sample of gathers, the benchmark's third
contender and a second reference) against PyTorch, and the op against it: values and both
gradients in every 2-D mode x padding x align_corners."""

import importlib.util
from pathlib import Path

import pytest

from helpers import assert_close, rand, rand_uniform, vjp_outputs
from references import torch_grid_sample

from mlx_upsample import grid_sample

_PATH = Path(__file__).resolve().parents[1] / "bench" / "grid_baseline.py"
_SPEC = importlib.util.spec_from_file_location("grid_baseline", _PATH)
grid_baseline = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(grid_baseline)

COMBOS = [
    (mode, padding, ac)
    for mode in grid_baseline.MODES
    for padding in grid_baseline.PADDINGS
    for ac in (False, True)
]


@pytest.mark.parametrize("mode,padding,ac", COMBOS, ids=lambda v: str(v))
def test_baseline_matches_torch(mode, padding, ac):
    x = rand((2, 5, 7, 3), seed=1)
    grid = rand_uniform((2, 4, 6, 2), -2.5, 2.5, seed=2)  # inside, just outside, reflected twice
    cot = rand((2, 4, 6, 3), seed=3)
    kw = dict(mode=mode, padding_mode=padding, align_corners=ac)
    baseline = lambda a, g: grid_baseline.grid_sample_baseline(a, g, **kw)  # noqa: E731
    out, gx, gg = vjp_outputs(baseline, [x, grid], cot)
    ref, ref_gx, ref_gg = torch_grid_sample(x, grid, cot, **kw)
    assert_close(out, ref)
    assert_close(gx, ref_gx)
    assert_close(gg, ref_gg, 1e-4, 1e-4)
    # the op agrees with the baseline, a reference built from other parts (MLX's gathers)
    ours, ours_gx, ours_gg = vjp_outputs(lambda a, g: grid_sample(a, g, **kw), [x, grid], cot)
    assert_close(ours, out)
    assert_close(ours_gx, gx)
    assert_close(ours_gg, gg, 1e-4, 1e-4)
