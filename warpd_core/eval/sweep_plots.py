"""Plots of an evaluation sweep's tidy rows (warpd_core.eval.sweep): what `warpd eval` and the benchmarks draw.

Every success plot has the same shape: one panel per value of a grouping column (and one row of
panels per task), one line per method, 95% Wilson intervals as error bars. A method with no x
value (the scripted expert has no action horizon and no FLOPs) is drawn as a dashed reference
line across the panel, so every plot shows the ceiling learned policies are held against.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

from warpd_core.eval.sweep import success_by, wilson_interval

COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink")
REFERENCE_COLOUR = "0.35"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def plot_success(rows: list[dict], path: Path, x: Callable[[dict], float | None], panel: str, xlabel: str,
                 title: str, log_x: bool = False, method_order=(), ticks_at_values: bool = False) -> Path:
    """Success vs x(row), one panel per value of `panel`, a row of panels per task.

    Rows whose `panel` value is None (e.g. the expert's horizon) appear in every panel;
    ticks_at_values puts one labelled tick at each x value (e.g. the horizons 16, 32, 64, 128)."""
    plt = _pyplot()
    from matplotlib.ticker import NullFormatter

    xs = sorted({v for v in map(x, rows) if v is not None})
    tasks = sorted({r["task"] for r in rows})
    panels = sorted({r[panel] for r in rows if r[panel] is not None}) or [None]
    order = list(method_order) + sorted({r["method"] for r in rows} - set(method_order))
    methods = [m for m in order if any(r["method"] == m for r in rows)]
    colour = {m: COLOURS[i % len(COLOURS)] for i, m in enumerate(methods)}
    fig, axes = plt.subplots(len(tasks), len(panels), figsize=(3.4 * len(panels) + 0.6, 3.2 * len(tasks)),
                             squeeze=False, sharey=True)
    for ti, task in enumerate(tasks):
        for pi, value in enumerate(panels):
            ax = axes[ti][pi]
            here = [r for r in rows if r["task"] == task and r[panel] in (value, None)]
            for method in methods:
                _draw_method(ax, [r for r in here if r["method"] == method], x, method, colour[method])
            ax.set_title(f"{task}, {panel} {value:g}" if value is not None else task, fontsize=9)
            ax.set_ylim(-2, 102)
            ax.grid(True, alpha=0.3)
            if log_x:
                ax.set_xscale("log", base=2 if ticks_at_values else 10)
                ax.xaxis.set_minor_formatter(NullFormatter())
            if ticks_at_values:
                ax.set_xticks(xs, [f"{v:g}" for v in xs])
            ax.set_xlabel(xlabel, fontsize=8)
            if pi == 0:
                ax.set_ylabel("success % (95% CI)")
    axes[0][-1].legend(fontsize=7, loc="lower left")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _draw_method(ax, rows, x, method, colour) -> None:
    if not rows:
        return
    by_x: dict = {}
    for r in rows:
        by_x.setdefault(x(r), []).append(r)
    if None in by_x:  # no x for this method: a reference line
        (s, n), = success_by(by_x[None]).values()
        ax.axhline(100 * s / n, color=REFERENCE_COLOUR, linestyle="--", linewidth=1, label=f"{method} ({n} ep)")
        return
    xs = sorted(by_x)
    rates, lower, upper = [], [], []
    for value in xs:
        (s, n), = success_by(by_x[value]).values()
        lo, hi = wilson_interval(s, n)
        rates.append(100 * s / n)
        lower.append(max(0.0, 100 * (s / n - lo)))  # >= 0 despite rounding at 0% and 100%
        upper.append(max(0.0, 100 * (hi - s / n)))
    ax.errorbar(xs, rates, yerr=[lower, upper], marker="o", markersize=4, capsize=3, color=colour, label=method)


def plot_mode_shares(rows: list[dict], demos: dict[str, dict[str, int]], path: Path, method_order=()) -> Path | None:
    """Stacked mode shares of successful episodes at the lowest level, next to the demonstrations'.

    Drawn only for tasks with more than one mode (reach_around's near/far); None if there is none."""
    tasks = [t for t in sorted({r["task"] for r in rows})
             if len(set(demos.get(t, {})) | {r["mode"] for r in rows if r["task"] == t and r["success"]}) > 1]
    if not tasks:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(tasks), figsize=(9, 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        level = min(r["level"] for r in rows if r["task"] == task)
        bars = [("demos", demos.get(task, {}))]
        order = {m: i for i, m in enumerate(method_order)}
        groups = sorted({(r["method"], r["horizon"]) for r in rows if r["task"] == task},
                        key=lambda g: (order.get(g[0], len(order)), g[0], g[1] or 0))
        for method, horizon in groups:
            counts: dict[str, int] = {}
            for r in rows:
                if (r["task"], r["method"], r["horizon"], r["level"], r["success"]) == (task, method, horizon, level,
                                                                                         True):
                    counts[str(r["mode"])] = counts.get(str(r["mode"]), 0) + 1
            bars.append((method if horizon is None else f"{method}\nK={horizon}", counts))
        modes = sorted({m for _, c in bars for m in c})
        bottoms = [0.0] * len(bars)
        for k, mode in enumerate(modes):
            shares = [100 * c.get(mode, 0) / max(1, sum(c.values())) for _, c in bars]
            ax.bar(range(len(bars)), shares, bottom=bottoms, color=COLOURS[k % len(COLOURS)], label=mode)
            bottoms = [b + s for b, s in zip(bottoms, shares)]
        for i, (_, c) in enumerate(bars):
            ax.text(i, 101, f"n={sum(c.values())}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(bars)), [label for label, _ in bars], fontsize=7)
        ax.set_ylim(0, 110)
        ax.set_ylabel("share of successful episodes %")
        ax.set_title(f"{task}: modes at level {level:g} vs demonstrations", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def write_sweep_plots(rows: list[dict], out: Path, demos: dict[str, dict[str, int]],
                      flops: Callable[[str, str, int | None], float | None] | None, method_order=(),
                      log: Callable[[str], None] = print) -> list[Path]:
    """The four plots of `warpd eval`; `flops(method, task, horizon)` (None: that plot is skipped)."""
    written = [
        plot_success(rows, out / "success_vs_level.png", lambda r: r["level"], "horizon", "perturbation level",
                     "Success vs perturbation level (one panel per action horizon K)", method_order=method_order),
        plot_success(rows, out / "success_vs_horizon.png", lambda r: r["horizon"], "level",
                     "action horizon K (steps between plans)", "Success vs action horizon (one panel per level)",
                     log_x=True, method_order=method_order, ticks_at_values=True),
    ]
    if flops is None:
        log("note: success vs FLOPs not drawn (no FLOPs counter available)")
    else:
        def x_flops(r):
            value = flops(r["method"], r["task"], r["horizon"])
            return value if value is not None and math.isfinite(value) and value > 0 else None

        written.append(plot_success(rows, out / "success_vs_flops.png", x_flops, "level", "FLOPs per control step",
                                    "Success vs inference FLOPs per control step (points: K)", log_x=True,
                                    method_order=method_order))
    modes = plot_mode_shares(rows, demos, out / "mode_shares.png", method_order)
    if modes is None:
        log("note: mode shares not drawn (no task with more than one mode)")
    else:
        written.append(modes)
    return written
