"""A small conv decoder trained with Adam: ours vs mlx.nn.Upsample give the same losses."""

from functools import partial

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from mlx.utils import tree_flatten

from helpers import rand

from mlx_upsample import Upsample

STEPS = 5


class Decoder(nn.Module):
    def __init__(self, up):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, kernel_size=3, padding=1)
        self.up = up
        self.conv2 = nn.Conv2d(6, 2, kernel_size=3, padding=1)

    def __call__(self, x):
        return self.conv2(nn.relu(self.up(self.conv1(x))))


def _build(up, seed=0):
    mx.random.seed(seed)
    model = Decoder(up)
    mx.eval(model.parameters())
    return model


def _train(model, x, y, compiled=False):
    opt = optim.Adam(learning_rate=1e-2)

    def loss_fn(m, a, b):
        return nn.losses.mse_loss(m(a), b)

    loss_and_grad = nn.value_and_grad(model, loss_fn)

    def step(a, b):
        loss, grads = loss_and_grad(model, a, b)
        opt.update(model, grads)
        return loss

    if compiled:
        state = [model.state, opt.state]
        step = partial(mx.compile, inputs=state, outputs=state)(step)

    losses = []
    for _ in range(STEPS):
        loss = step(x, y)
        mx.eval(loss, model.parameters(), opt.state)
        losses.append(loss.item())
    return np.array(losses)


CONFIGS = [
    dict(scale_factor=2, mode="nearest"),
    dict(scale_factor=2, mode="linear"),
    dict(scale_factor=2, mode="cubic"),
    dict(scale_factor=1.5, mode="linear", align_corners=True),
    dict(scale_factor=(1.5, 2.5), mode="nearest"),
]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()).replace(" ", ""))
def test_training_matches_mlx_upsample(cfg, compiled):
    x = rand((4, 6, 7, 3), seed=500)
    out_hw = tuple(
        int(s * n) for s, n in zip(cfg["scale_factor"] if isinstance(cfg["scale_factor"], tuple) else (cfg["scale_factor"],) * 2, (6, 7))
    )
    y = rand((4, *out_hw, 2), seed=501)

    ours = _build(Upsample(**cfg))
    ref = _build(nn.Upsample(**cfg))
    # identical initial weights: same seed at construction, and copied to be sure
    ref.update({k: v for k, v in ours.parameters().items() if k.startswith("conv")})
    p_ours = dict(tree_flatten(ours.parameters()))
    p_ref = dict(tree_flatten(ref.parameters()))
    assert p_ours.keys() == p_ref.keys()
    assert set(p_ours) == {
        "conv1.weight",
        "conv1.bias",
        "conv2.weight",
        "conv2.bias",
    }, "Upsample must not add parameters"
    for k in p_ours:
        np.testing.assert_array_equal(np.array(p_ours[k]), np.array(p_ref[k]))

    assert ours(x).shape == ref(x).shape == (4, *out_hw, 2)

    losses_ours = _train(ours, x, y, compiled=compiled)
    losses_ref = _train(ref, x, y, compiled=compiled)

    assert np.all(np.isfinite(losses_ours))
    np.testing.assert_allclose(losses_ours, losses_ref, rtol=1e-4)
    assert losses_ours[-1] < losses_ours[0], "training did not reduce the loss"

    # the trained weights agree too
    p_ours = dict(tree_flatten(ours.parameters()))
    p_ref = dict(tree_flatten(ref.parameters()))
    for k in p_ours:
        np.testing.assert_allclose(np.array(p_ours[k]), np.array(p_ref[k]), rtol=1e-3, atol=1e-4, err_msg=k)
