"""The layout and few-channel cases (issue 22): PyTorch-ported calls on channels-first
memory and on 1 to 3 channels.

Each case is one logical problem on a channels-first tensor (N, C, *spatial). PyTorch runs
it on that contiguous tensor (its native layout); ours and mlx.nn.Upsample run it on the
channels-last view x.transpose(0, 2, ..., 1) of the same memory ("view": what a port
passes), and ours also on a row-contiguous copy of that view ("contig"), so that
view/contig says what reading in place costs. With C = 1 the view is row-contiguous
itself. The backward's cotangent is laid out as its forward's output would be in the
client: the channels-last view of channels-first memory for views (the gradient of NCHW
code after the call), row-contiguous for the copies.

Imports no library under test (like cases.py).
"""

# name, channels-first shape, mode, scale (one per spatial axis), passes.
LAYOUT_CASES = [
    ("mono x300", (1, 1, 250), "nearest", (300,), ("fwd",)),
    ("mono batch x300", (16, 1, 250), "nearest", (300,), ("fwd",)),
    ("audio NCL x1/300", (1, 9, 75000), "linear", (1 / 300,), ("fwd", "bwd")),
    ("audio NCL x300", (1, 9, 250), "linear", (300,), ("fwd", "bwd")),
    ("NCHW x2", (8, 64, 128, 128), "nearest", (2, 2), ("fwd", "bwd")),
    ("NCHW x2", (8, 64, 128, 128), "linear", (2, 2), ("fwd", "bwd")),
    ("NCHW x2", (8, 64, 128, 128), "cubic", (2, 2), ("fwd", "bwd")),
    ("mask x2", (8, 1, 512, 512), "linear", (2, 2), ("fwd", "bwd")),
    # A ViT position-embedding resize, 16 x 16 -> 24 x 40.
    ("ViT pos-embed", (1, 768, 16, 16), "cubic", (24 / 16, 40 / 16), ("fwd", "bwd")),
]


def layout_jobs():
    return list(LAYOUT_CASES)


def out_spatial(shape, scale):
    return tuple(int(s * n) for s, n in zip(scale, shape[2:]))
