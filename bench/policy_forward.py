"""How long does a generated policy take per observation in numpy?

Times MLPPolicy.select_action (one observation, the path the 1 kHz controller runs) and
MLPPolicy.select_actions (a batch of 256, the evaluation path) for the default 8-64-64-3 policy
and the larger 39-256-256-4 one, both with relu, against a naive forward pass measured side by
side in the same run: the same float32 arithmetic written the obvious way, allocating a new
array for every intermediate. Every call is timed on its own, so the p99 shows the tail a control
period has to absorb, not just the typical cost.

    .venv/bin/python -m bench.policy_forward            # table + BENCHMARKS.md section + plot
    .venv/bin/python -m bench.policy_forward --quick    # a smoke run, nothing written
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from bench.report import image_lines, machine_info, publish, pyplot, save_figure, verdict
from warpd_core.runtime.mlp_runtime import MLPPolicy
from warpd_core.runtime.synthetic import synthetic_policy

ARCHITECTURES = ((8, 64, 64, 3), (39, 256, 256, 4))
BATCH = 256
GOAL_US = 30.0  # numpy policy forward per observation, from the runtime issue
OURS, NAIVE = "MLPPolicy", "naive, allocating"


def naive_forward(policy):
    """The obvious forward pass for relu hidden layers and an identity output (what synthetic_policy
    makes): divide by std, then x @ W.T + b per layer, new arrays each step.

    It converts the observation to float32 first so it does the same arithmetic as MLPPolicy and
    the comparison shows only what preparing once and working in place buys.
    """
    layers = policy.layers()

    def forward(obs):
        x = (np.asarray(obs, np.float32) - policy.obs_mean) / policy.obs_std
        for w, b in layers[:-1]:
            x = np.maximum(x @ w.T + b, 0)
        w, b = layers[-1]
        return ((x @ w.T + b) * policy.action_std + policy.action_mean).astype(np.float64)

    return forward


def _per_call_us(fn, inputs: np.ndarray, calls: int) -> np.ndarray:
    """Microseconds of each of `calls` calls, cycling through `inputs`, after a short warm-up."""
    for i in range(min(calls, 200)):
        fn(inputs[i % len(inputs)])
    clock, times = time.perf_counter_ns, np.empty(calls)
    for i in range(calls):
        obs = inputs[i % len(inputs)]
        start = clock()
        fn(obs)
        times[i] = clock() - start
    return times / 1e3


def measure(calls: int, batch_calls: int) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    for sizes in ARCHITECTURES:
        policy = synthetic_policy(sizes)
        runtime, naive = MLPPolicy(policy), naive_forward(policy)
        singles = rng.standard_normal((64, sizes[0]))
        batches = rng.standard_normal((4, BATCH, sizes[0]))
        if not (np.allclose(runtime.select_actions(batches[0]), naive(batches[0]), rtol=1e-5, atol=1e-5)
                and np.allclose(runtime.select_action(singles[0]), naive(singles[0]), rtol=1e-5, atol=1e-5)):
            raise AssertionError(f"naive and MLPPolicy disagree for {sizes}; the timings would compare different work")
        name = "-".join(map(str, sizes))
        cases = [("single obs", OURS, runtime.select_action, singles, calls, 1),
                 ("single obs", NAIVE, naive, singles, calls, 1),
                 (f"batch {BATCH}", OURS, runtime.select_actions, batches, batch_calls, BATCH),
                 (f"batch {BATCH}", NAIVE, naive, batches, batch_calls, BATCH)]
        for path, impl, fn, inputs, n, per_call in cases:
            per_obs = _per_call_us(fn, inputs, n) / per_call
            rows.append({"policy": name, "path": path, "impl": impl, "calls": n,
                         "median_us": float(np.median(per_obs)), "p99_us": float(np.percentile(per_obs, 99))})
    return rows


def _speedup(rows: list[dict], row: dict) -> float | None:
    if row["impl"] != OURS:
        return None
    naive = next(r for r in rows if r["policy"] == row["policy"] and r["path"] == row["path"] and r["impl"] == NAIVE)
    return naive["median_us"] / row["median_us"]


def to_markdown(rows: list[dict], plot: Path | None, args: argparse.Namespace) -> str:
    lines = [
        "## Policy forward pass (numpy MLPPolicy)",
        "",
        f"`python -m bench.policy_forward` ({args.calls} single-observation calls, {args.batch_calls} batch calls "
        f"per case) on {machine_info()}; OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}.",
        "Every call timed on its own; microseconds per observation (a batch call's time divided by its size). "
        "Synthetic relu policies; MLPPolicy and the naive allocating forward pass measured side by side in this run.",
        "",
        "| policy | path | implementation | median µs/obs | p99 µs/obs | naive ÷ MLPPolicy |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        ratio = _speedup(rows, r)
        lines.append(f"| {r['policy']} | {r['path']} | {r['impl']} | {r['median_us']:.2f} | {r['p99_us']:.2f} | "
                     f"{f'{ratio:.1f}' if ratio else ''} |")
    lines += ["", f"Goal: numpy policy forward ≤{GOAL_US:g} µs per observation (set for the default 8-64-64-3 "
              "policy; 39-256-256-4 reported against the same bar), judged on the p99:"]
    for r in rows:
        if r["impl"] == OURS:
            lines.append(f"- {r['policy']}, {r['path']}: {r['median_us']:.2f} µs median, {r['p99_us']:.2f} µs p99 "
                         f"— **{verdict(r['p99_us'] <= GOAL_US)}**")
    lines += image_lines("policy forward time per observation", plot)
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> Path:
    plt = pyplot()

    groups = list(dict.fromkeys((r["policy"], r["path"]) for r in rows))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for offset, impl, color in ((-0.2, OURS, "tab:blue"), (0.2, NAIVE, "tab:gray")):
        picked = [next(r for r in rows if (r["policy"], r["path"]) == g and r["impl"] == impl) for g in groups]
        ys = np.arange(len(groups)) + offset
        ax.barh(ys, [r["median_us"] for r in picked], height=0.38, color=color, label=f"{impl}, median")
        ax.plot([r["p99_us"] for r in picked], ys, "k|", markersize=10)
    ax.plot([], [], "k|", label="p99")
    ax.axvline(GOAL_US, color="tab:red", ls=":", label=f"goal {GOAL_US:g} µs")
    ax.set_yticks(range(len(groups)), [f"{p}\n{path}" for p, path in groups])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("µs per observation")
    ax.set_title("numpy policy forward pass")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000, help="single-observation calls per case (default 20000)")
    parser.add_argument("--batch-calls", type=int, default=1_000, help=f"batch-{BATCH} calls per case (default 1000)")
    parser.add_argument("--quick", action="store_true", help="2000 / 50 calls, no BENCHMARKS.md update")
    parser.add_argument("--out", type=Path, default=None, help="write the section to this file instead")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.batch_calls = 2_000, 50
    rows = measure(args.calls, args.batch_calls)
    print(f"{'policy':<13} {'path':<11} {'implementation':<18} {'median µs/obs':>14} {'p99 µs/obs':>11}")
    for r in rows:
        print(f"{r['policy']:<13} {r['path']:<11} {r['impl']:<18} {r['median_us']:>14.2f} {r['p99_us']:>11.2f}")
    if args.quick and args.out is None:
        return 0
    publish("policy_forward", args.out, lambda picture: to_markdown(rows, picture, args),
            lambda path: plot(rows, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
