"""How good and how fast is a trained WARPD checkpoint on its task?

Measured in one run:
- success over N seeds with re-planning every K steps, for K in 16, 32, 64, 128 (unperturbed),
  and the mode shares of successful rollouts next to the demonstrations' shares;
- multimodality from one start state: many planner seeds for the same initial observation,
  rolled out, mode shares reported;
- latency of one plan (the checkpoint's sampler, `sample_steps` steps, + hypernetwork decode), and of the numpy
  policy's select_action;
- training time of both stages as recorded by `warpd train` in the checkpoint.

    .venv/bin/python -m bench.warpd_eval --checkpoint checkpoints/reach_around/checkpoint.safetensors
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from bench.report import PLOTS, image_lines, machine_info, pyplot, save_figure, update_section
from warpd_core.eval.runner import run_episode, run_sweep, summarize
from warpd_core.policies.warpd.checkpoint import load_checkpoint, read_metadata
from warpd_core.policies.warpd.planner import Planner, PlannerFactory
from warpd_core.tasks import make_task

DEFAULT_CHECKPOINT = "checkpoints/reach_around/checkpoint.safetensors"
HORIZONS = (16, 32, 64, 128)
EVAL_SEED = 10_000  # far from the training seeds (0..episodes-1)


def success_by_horizon(checkpoint, task, episodes, workers) -> list[dict]:
    rows = []
    for k in HORIZONS:
        metrics = run_sweep(task, PlannerFactory(checkpoint, task), range(EVAL_SEED, EVAL_SEED + episodes),
                            replan_every=k, workers=workers, progress=True)
        s = summarize(metrics)
        rows.append({"K": k, "episodes": len(metrics), "success": s["success_rate"],
                     "time": s["mean_time_to_success"], "modes": s["mode_counts"]})
    return rows


def one_state_modes(checkpoint, task_name, samples, seed=EVAL_SEED) -> Counter:
    """Same start state, `samples` planner seeds: which way does each generated rollout go?"""
    task, modes = make_task(task_name), Counter()
    model = load_checkpoint(checkpoint)
    for planner_seed in range(samples):
        metrics, _ = run_episode(task, lambda t, s, ps=planner_seed: Planner(model, task_name, seed=ps), seed,
                                 replan_every=16)
        modes[metrics.mode if metrics.success else "failed"] += 1
    return modes


def demo_modes(checkpoint) -> Counter:
    from warpd_core.eval.sweep import demo_mode_counts

    path = read_metadata(checkpoint)["config"]["data"]["path"]
    try:
        return Counter(demo_mode_counts(path))
    except Exception:  # the dataset may not be on this machine; the table says so
        return Counter()


def latency(checkpoint, task_name, repeats) -> dict:
    """Plan and act latency, with torch on one thread as the warpd_planner node runs it."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _latency(checkpoint, task_name, repeats)
    finally:
        torch.set_num_threads(threads)


def _latency(checkpoint, task_name, repeats) -> dict:
    planner = Planner.from_checkpoint(checkpoint, task_name)
    obs = make_task(task_name).reset(EVAL_SEED)
    for _ in range(5):
        planner.plan(obs)
    plan_ms = []
    for _ in range(repeats):
        start = time.perf_counter()
        policy = planner.plan(obs)
        plan_ms.append((time.perf_counter() - start) * 1e3)
    act_us = []
    for _ in range(repeats * 20):
        start = time.perf_counter()
        policy.select_action(obs)
        act_us.append((time.perf_counter() - start) * 1e6)
    return {"plan_ms": np.percentile(plan_ms, [50, 95]), "act_us": np.percentile(act_us, [50, 99]),
            "steps": planner.model.config.diffusion.sample_steps,
            "sampler": planner.model.config.diffusion.sampler.upper()}  # DDIM or DPM (DPM-Solver++)


def plot(rows, demo, path: Path) -> Path:
    plt = pyplot()

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot([r["K"] for r in rows], [100 * r["success"] for r in rows], "-o")
    ax1.axhline(90, ls=":", color="tab:red", label="goal 90% at K=16")
    ax1.set_xscale("log", base=2)
    ax1.set_xticks([r["K"] for r in rows], [str(r["K"]) for r in rows])
    ax1.set_ylim(0, 102)
    ax1.set_xlabel("re-plan every K steps (action horizon)")
    ax1.set_ylabel("success %")
    ax1.legend()
    ax1.grid(True, alpha=0.3)
    modes = sorted(set(demo) | {m for r in rows for m in r["modes"]})
    width = 0.8 / (len(rows) + 1)
    total = max(1, sum(demo.values()))
    ax2.bar(np.arange(len(modes)), [100 * demo.get(m, 0) / total for m in modes], width, label="demonstrations")
    for i, r in enumerate(rows, start=1):
        n = max(1, sum(r["modes"].values()))
        ax2.bar(np.arange(len(modes)) + i * width, [100 * r["modes"].get(m, 0) / n for m in modes], width,
                label=f"WARPD K={r['K']}")
    ax2.set_xticks(np.arange(len(modes)) + width * len(rows) / 2, modes)
    ax2.set_ylabel("share of successful episodes %")
    ax2.legend(fontsize=7)
    return save_figure(fig, path)


def horizon_table(rows, demo: Counter) -> list[str]:
    """Markdown lines: success, time and modes per re-planning horizon K, with each K's largest mode gap
    against the demonstrations (bench.panda reports its checkpoint with the same table)."""
    total = max(1, sum(demo.values()))
    demo_share = {m: n / total for m, n in demo.items()}
    lines = ["| re-plan every K | episodes | success % | mean time to success s | modes (successful) | "
             "largest mode gap vs demos |", "|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        n = max(1, sum(r["modes"].values()))
        gap = max((abs(r["modes"].get(m, 0) / n - demo_share.get(m, 0)) for m in set(demo) | set(r["modes"])),
                  default=float("nan"))
        modes = ", ".join(f"{m} {100 * c / n:.0f}%" for m, c in sorted(r["modes"].items()))
        lines.append(f"| {r['K']} | {r['episodes']} | {100 * r['success']:.1f} | {r['time']:.2f} | {modes} | "
                     f"{100 * gap:.0f} pts |")
    return lines


def to_markdown(args, rows, demo, one_state, lat, meta, picture) -> str:
    extra = meta.get("extra", {})
    total = max(1, sum(demo.values()))
    demo_share = {m: n / total for m, n in demo.items()}
    lines = ["## WARPD on the default task", "",
             f"`python -m bench.warpd_eval --episodes {args.episodes}` on `{args.checkpoint}`, {machine_info()}.",
             f"Evaluation seeds {EVAL_SEED}..{EVAL_SEED + args.episodes - 1} (training used 0..{total - 1}); "
             "no perturbation.", "",
             *horizon_table(rows, demo)]
    demo_text = ", ".join(f"{m} {100 * s:.0f}%" for m, s in sorted(demo_share.items())) or "dataset not found"
    k16 = rows[0]
    n16 = max(1, sum(k16["modes"].values()))
    within = all(abs(k16["modes"].get(m, 0) / n16 - s) <= 0.15 for m, s in demo_share.items()) and demo_share
    lines += ["", f"Demonstrations: {demo_text}.", "",
              f"- Goal ≥90% success at K=16: {100 * k16['success']:.1f}% — **{'met' if k16['success'] >= 0.9 else 'MISSED'}**",
              f"- Goal: both modes within ±15 points of the demonstrations at K=16 — "
              f"**{'met' if within else 'MISSED'}**",
              f"- One start state (seed {EVAL_SEED}), {args.one_state} planner seeds: "
              + ", ".join(f"{m} {c}" for m, c in sorted(one_state.items())),
              f"- One plan ({lat['steps']} {lat['sampler']} steps + decode, torch on 1 thread as in warpd_planner), single state: "
              f"{lat['plan_ms'][0]:.1f} ms median, "
              f"{lat['plan_ms'][1]:.1f} ms p95 — goal ≤20 ms **{'met' if lat['plan_ms'][1] <= 20 else 'MISSED'}**",
              f"- Generated policy select_action: {lat['act_us'][0]:.1f} µs median, {lat['act_us'][1]:.1f} µs p99 "
              f"— goal ≤30 µs **{'met' if lat['act_us'][0] <= 30 else 'MISSED'}**"]
    if "train_seconds" in extra:
        t = extra["train_seconds"]
        total_s = t["stage1"] + t["stage2"]
        lines.append(f"- Training time recorded by `warpd train`: stage 1 {t['stage1'] / 60:.1f} min, stage 2 "
                     f"{t['stage2'] / 60:.1f} min, total {total_s / 60:.1f} min (data collection excluded) — goal "
                     f"≤15 min **{'met' if total_s <= 900 else 'MISSED'}**")
    lines += image_lines("WARPD success and modes", picture)
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help=f"checkpoint (default {DEFAULT_CHECKPOINT})")
    parser.add_argument("--episodes", type=int, default=100, help="episodes per horizon (default 100)")
    parser.add_argument("--one-state", type=int, default=50, help="planner seeds for the one-state check (default 50)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--repeats", type=int, default=200, help="latency repeats (default 200)")
    parser.add_argument("--out", type=Path, help="write the section to this file instead (no plot)")
    args = parser.parse_args(argv)
    meta = read_metadata(args.checkpoint)
    task = meta["task_names"][0]
    lat = latency(args.checkpoint, task, args.repeats)
    rows = success_by_horizon(args.checkpoint, task, args.episodes, args.workers)
    one_state = one_state_modes(args.checkpoint, task, args.one_state)
    demo = demo_modes(args.checkpoint)
    for r in rows:
        print(f"K={r['K']:<4} success {100 * r['success']:5.1f}%  modes {dict(r['modes'])}")
    print(f"one start state: {dict(one_state)}; demos: {dict(demo)}")
    print(f"plan {lat['plan_ms'][0]:.1f} ms (p95 {lat['plan_ms'][1]:.1f}); act {lat['act_us'][0]:.1f} µs")
    picture = plot(rows, demo, PLOTS / "warpd_eval.png") if args.out is None else None
    written = update_section("warpd_eval", to_markdown(args, rows, demo, one_state, lat, meta, picture),
                             **({"path": args.out} if args.out else {}))
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
