"""How much does moving a policy between numpy and a PolicyWeights message cost?

Measures, side by side in one run, the fast path used by warpd_ros.conversions (float32[] built
from bytes, read back as a zero-copy np.frombuffer view) against the obvious slow path (assign a
numpy array to the field; build a numpy array from the field's elements), for several sizes,
plus the full policy conversion with validation for the default 39-256-256-4 policy.

    .venv/bin/python -m bench.conversion            # prints the table, updates BENCHMARKS.md
    .venv/bin/python -m bench.conversion --quick    # fewer repeats, for a smoke run
"""
from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path

import numpy as np

from bench.report import image_lines, machine_info, publish, pyplot, save_figure, verdict
from warpd_core.runtime.synthetic import synthetic_policy
from warpd_ros.conversions import from_float32_field, msg_to_policy, policy_to_msg, to_float32_field
from warpd_ros.msg import PolicyWeights

SIZES = (1_000, 10_000, 70_000, 100_000, 1_000_000)
GOALS_MS = {"msg -> numpy": 0.1, "numpy -> msg": 0.5}  # for 70k floats, from the foundation issue


def _time_us(fn, repeats: int, min_total_s: float = 0.02) -> tuple[float, float]:
    """(median, p95) microseconds per call; each repeat loops enough calls to last min_total_s."""
    number = 1
    while True:
        if timeit.timeit(fn, number=number) >= min_total_s or number >= 1 << 16:
            break
        number *= 2
    per_call = np.array(timeit.repeat(fn, number=number, repeat=repeats)) / number * 1e6
    return float(np.median(per_call)), float(np.percentile(per_call, 95))


def _slow_to_msg(arr: np.ndarray) -> None:
    msg = PolicyWeights()
    msg.weights = arr  # the rosidl setter walks the numpy array element by element


def measure(repeats: int) -> list[dict]:
    rows = []
    for n in SIZES:
        arr = np.random.default_rng(n).standard_normal(n).astype(np.float32)
        field = to_float32_field(arr)
        slow_repeats = max(3, repeats // 10) if n >= 100_000 else repeats
        cases = [
            ("numpy -> msg", "fast (bytes -> array('f'))", lambda: to_float32_field(arr), repeats),
            ("numpy -> msg", "naive (assign ndarray)", lambda: _slow_to_msg(arr), slow_repeats),
            ("msg -> numpy", "fast (np.frombuffer view)", lambda: from_float32_field(field), repeats),
            ("msg -> numpy", "naive (np.array(field))", lambda: np.array(field, dtype=np.float32), slow_repeats),
        ]
        for direction, method, fn, reps in cases:
            median, p95 = _time_us(fn, reps)
            rows.append({"what": f"{n:,} floats", "n": n, "direction": direction, "method": method,
                         "median_us": median, "p95_us": p95})
    policy = synthetic_policy((39, 256, 256, 4))
    msg = policy_to_msg(policy)
    for direction, method, fn in (
        ("numpy -> msg", "policy_to_msg (validated)", lambda: policy_to_msg(policy)),
        ("msg -> numpy", "msg_to_policy (validated)", lambda: msg_to_policy(msg)),
    ):
        median, p95 = _time_us(fn, repeats)
        rows.append({"what": "policy 39-256-256-4 (77,060 weights)", "n": 77_060, "direction": direction,
                     "method": method, "median_us": median, "p95_us": p95})
    return rows


def _speedups(rows: list[dict]) -> dict[tuple[int, str], float]:
    by = {(r["n"], r["direction"], r["method"].split()[0]): r["median_us"] for r in rows}
    return {(n, d): by[(n, d, "naive")] / by[(n, d, "fast")] for (n, d, m) in by if m == "fast"}


def to_markdown(rows: list[dict], plot: Path | None, args: argparse.Namespace) -> str:
    speed = _speedups(rows)
    lines = [
        "## Message conversion (PolicyWeights <-> numpy)",
        "",
        f"`python -m bench.conversion` ({args.repeats} repeats per case) on {machine_info()}.",
        "Median and 95th percentile per call, in microseconds; fast and naive paths measured side by side in this run.",
        "",
        "| size | direction | method | median µs | p95 µs | naive ÷ fast |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        ratio = speed.get((r["n"], r["direction"])) if r["method"].startswith("fast") else None
        lines.append(f"| {r['what']} | {r['direction']} | {r['method']} | {r['median_us']:.1f} | "
                     f"{r['p95_us']:.1f} | {f'{ratio:,.1f}' if ratio else ''} |")
    lines += ["", "Goals for 70,000 floats (foundation issue), fast path and the full validated policy conversion "
              "(77,060 weights):"]
    for direction, goal_ms in GOALS_MS.items():
        for label, pick in (("70,000 floats", lambda r: r["n"] == 70_000 and r["method"].startswith("fast")),
                            ("full policy, validated", lambda r: "validated" in r["method"])):
            row = next(r for r in rows if r["direction"] == direction and pick(r))
            lines.append(f"- {direction} ≤ {goal_ms} ms, {label}: {row['median_us'] / 1e3:.4f} ms median, "
                         f"{row['p95_us'] / 1e3:.4f} ms p95 — **{verdict(row['p95_us'] <= goal_ms * 1e3)}**")
    lines += image_lines("conversion cost vs size", plot)
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> Path:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4.2))
    styles = {"fast": "-o", "naive": "--s"}
    for direction, color in (("numpy -> msg", "tab:blue"), ("msg -> numpy", "tab:orange")):
        for kind in ("fast", "naive"):
            pts = sorted((r["n"], r["median_us"]) for r in rows
                         if r["direction"] == direction and r["method"].startswith(kind))
            ax.plot(*zip(*pts), styles[kind], color=color, label=f"{direction}, {kind}")
        ax.axhline(GOALS_MS[direction] * 1e3, color=color, lw=0.8, ls=":",
                   label=f"goal {direction} ({GOALS_MS[direction]} ms @70k)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("float32 values in the message")
    ax.set_ylabel("median time per conversion (µs)")
    ax.set_title("PolicyWeights <-> numpy conversion cost")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200, help="timing repeats per case (default 200)")
    parser.add_argument("--quick", action="store_true", help="20 repeats, no BENCHMARKS.md update")
    parser.add_argument("--out", type=Path, default=None, help="write the section to this file instead")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 20
    rows = measure(args.repeats)
    print(f"{'size':<38} {'direction':<13} {'method':<28} {'median µs':>10} {'p95 µs':>9}")
    for r in rows:
        print(f"{r['what']:<38} {r['direction']:<13} {r['method']:<28} {r['median_us']:>10.1f} {r['p95_us']:>9.1f}")
    if args.quick and args.out is None:
        return 0
    publish("conversion", args.out, lambda picture: to_markdown(rows, picture, args), lambda path: plot(rows, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
