"""The benchmark's reports: the terminal table, Markdown, the bar chart, the run's header.

Cells are the median in ms with the interquartile range in percent of the median
(terminal) or min–max (Markdown); '*' marks a contender timed with reduced repeats.
"""

import numpy as np

from cases import IMPL_LABELS, IMPLS, case_label
from targets import target_lines
from timing import (BURST, BURST_SECONDS, NOISY_SPREAD, RETRIES, SLOW_REPEATS, SLOW_SECONDS,
                    spread)

# Printed under the run's header, above the terminal table.
LEGEND = ("cells: median ms ±IQR in % of the median (* = reduced repeats); "
          "mlx/ours, torch/ours > 1: ours faster; MB: MLX memory allocated per call; "
          "RSS MB: peak resident growth of one call in a fresh process\n")


def fmt_ms(ms):
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def cell_terminal(s):
    if s["status"] != "ok":
        return s["status"]
    return f"{fmt_ms(s['median_ms'])} ±{100 * spread(s):.0f}%" + ("*" if s["reduced_repeats"] else "")


def cell_markdown(s):
    if s["status"] != "ok":
        return s["status"]
    return (f"{fmt_ms(s['median_ms'])} ({fmt_ms(s['min_ms'])}–{fmt_ms(s['max_ms'])})"
            + ("\\*" if s["reduced_repeats"] else ""))


def fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}x"


def fmt_mb(mb):
    return "-" if mb is None else f"{mb:.1f}"


def table_rows(rows, cell):
    header = ["case", "mode", "dtype", "pass", *(f"{IMPL_LABELS[i]} ms" for i in IMPLS),
              "mlx/ours", "torch/ours", "ours/memcpy", "torch/fill", "ours GB/s", "of memcpy BW",
              "ours MB", "mlx.nn MB", "ours RSS MB", "mlx.nn RSS MB"]
    body = [[case_label(r), r["mode"], r["dtype"], r["pass"],
             *(cell(r["stats"][i]) for i in IMPLS),
             fmt_ratio(r["speedup_vs_mlx"]), fmt_ratio(r["speedup_vs_torch"]),
             fmt_ratio(r["ours_over_memcpy"]),
             fmt_ratio(r["torch_over_fill"]),
             "-" if r["ours_gbps"] is None else f"{r['ours_gbps']:.1f}",
             "-" if r["roofline"] is None else f"{100 * r['roofline']:.0f}%",
             fmt_mb(r["peak_mb"]["ours"]), fmt_mb(r["peak_mb"]["mlx"]),
             fmt_mb(r["rss_mb"]["ours"]), fmt_mb(r["rss_mb"]["mlx"])] for r in rows]
    return header, body


def render_terminal(rows):
    header, body = table_rows(rows, cell_terminal)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) if i >= 4 else c.ljust(w)
                        for i, (c, w) in enumerate(zip(line, widths))) for line in body]
    return "\n".join(lines)


def retimed_line(rows):
    """Which cases were timed more than once (time_rounds), from their forward rows."""
    retimed = [r for r in rows if r["pass"] == "fwd" and r["attempts"] > 1]
    return (f"re-timed for a spread over {NOISY_SPREAD:.0%}: {len(retimed)} of "
            f"{sum(r['pass'] == 'fwd' for r in rows)} cases"
            + "".join(f"\n  {case_label(r)} {r['mode']} {r['dtype']}: {r['attempts']} attempts"
                      for r in retimed))


def render_markdown(rows, meta):
    header, body = table_rows(rows, cell_markdown)
    lines = [f"# mlx_upsample benchmark\n\n{meta_text(meta)}\n",
             "Cells: median ms (min–max). Ratios > 1 in mlx/ours and torch/ours mean ours is "
             "faster; ours/memcpy is the distance from the memory-copy floor; torch/fill (forward) "
             "bounds how much faster than PyTorch any forward pass can be, since it must "
             "write the output at least once. GB/s counts the "
             "bytes our pass reads and writes; 'of memcpy BW' compares it with the copy's "
             "bandwidth. MB: MLX memory "
             "one call allocates on top of its inputs; RSS MB: how much one call, alone in a "
             "fresh process, grows the peak resident set (all memory, not only MLX's). "
             "\\* = reduced repeats (slow contender).\n",
             "| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < 4 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(line) + " |" for line in body]
    lines += ["", "```", retimed_line(rows), "```"]
    lines += ["", "## Targets", "", "```", *target_lines(rows), "```"]
    return "\n".join(lines) + "\n"


def write_plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{case_label(r)} {r['mode']} {r['dtype']} {r['pass']}" for r in rows]
    positions = np.arange(len(rows))
    bar = 0.8 / len(IMPLS)
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.45 * len(rows)))
    for k, impl in enumerate(IMPLS):
        values = [r["stats"][impl].get("median_ms", np.nan) for r in rows]
        ax.barh(positions + (k - (len(IMPLS) - 1) / 2) * bar, values, height=bar,
                label=IMPL_LABELS[impl])
    ax.set_yticks(positions, labels, fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first case on top
    ax.set_xscale("log")
    ax.set_xlabel("median time per call [ms] (log scale, lower is better)")
    ax.set_title("upsampling: mlx_upsample vs mlx.nn.Upsample vs torch vs memory floors")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def meta_text(meta):
    return (f"device: {meta['device']} (ours and mlx.nn.Upsample; torch, memcpy and fill on CPU)"
            f"{' [Metal available]' if meta['metal_available'] else ''}\n"
            f"threads: {meta['cores']} cores, ours (CPU kernels) {meta['ours_threads']}, "
            f"torch intra-op {meta['torch_threads']} (also fill), memcpy single-threaded numpy\n"
            f"fixed cost of one mx.eval (a 32-element add): {meta['mlx_eval_us']:.0f} us\n"
            f"versions: mlx {meta['mlx']}, torch {meta['torch']}, numpy {meta['numpy']}, "
            f"python {meta['python']} on {meta['platform']}; malloc: {meta['malloc']}\n"
            f"method: {meta['warmup']} warm-up + {meta['repeats']} interleaved timed runs, "
            f"each ending a burst of >= {BURST} calls and >= {BURST_SECONDS * 1e3:g} ms "
            f"started on an idle process, median; slow contenders (first call "
            f"> {SLOW_SECONDS:g} s): 1 warm-up, <= {SLOW_REPEATS} single runs; a case "
            f"whose spread exceeds {NOISY_SPREAD:.0%} is timed again (<= {RETRIES} times), "
            f"keeping the steadiest attempt")
