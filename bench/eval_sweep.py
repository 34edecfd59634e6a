"""WARPD vs Diffusion Policy on the default task: robustness, action horizon and FLOPs (issue 6).

Runs the comparison through `warpd eval`'s machinery (warpd_core.eval.sweep): the methods below x
perturbation levels 0..1 x action horizons 16..128 x 50 seeds, into runs/bench_eval/episodes.csv.
That table is resumable, so rerunning this script only runs what is missing (a new checkpoint
needs a new --sweep-dir). Then it counts the FLOPs of one plan and one control step of each
method (warpd_core.eval.flops) and times them on this machine, and judges the goals:
- FLOPs per control step: DP / WARPD >= 100x at the same horizon K=16;
- at the largest perturbation level (K=16): WARPD >= DP + 20 points;
- WARPD at K=128 within 10 points of K=16 (unperturbed).

    .venv/bin/python -m bench.eval_sweep              # 50 seeds per point
    .venv/bin/python -m bench.eval_sweep --quick      # 2 seeds, 2 levels, 2 horizons, scratch dir, no file
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.report import PLOTS, machine_info, update_section
from warpd_core.commands import eval as eval_command
from warpd_core.eval.sweep import format_rate, run_sweep_to_csv, success_by
from warpd_core.eval.sweep_plots import plot_success

SWEEP_DIR = Path("runs/bench_eval")
METHODS = ("expert", "warpd", "dp", "warpd_no_wm")  # those whose checkpoint exists run
K_REF = 16  # the horizon both methods are compared at (DP's chunk length)
GOAL_RATIO, GOAL_MARGIN, GOAL_HORIZON_GAP = 100.0, 0.20, 0.10
# The issue sizes the baseline like "DP-medium"; it does not train on this CPU in a session (~3 s per step),
# so its FLOPs and plan time are measured from its config on untrained weights (they do not depend on them).
DP_MEDIUM = "dp-medium"
DP_MEDIUM_CONFIG = Path("config/train_dp_medium_reach_around.yaml")


def plan_for(args):
    """The sweep, described exactly as `warpd eval` arguments would describe it."""
    config = eval_command.load_config(eval_command.DEFAULT_CONFIG)
    registry = config["methods"]
    present = [m for m in METHODS if registry[m].get("kind") == "expert" or Path(registry[m]["checkpoint"]).is_file()]
    argv = ["--methods", ",".join(present), "--seeds", str(args.seeds)]
    if args.quick:
        argv += ["--levels", "0,1", "--horizons", f"{K_REF},128"]
    parser = argparse.ArgumentParser()
    eval_command.add_arguments(parser)
    eval_args = parser.parse_args(argv)
    missing = {m: registry[m].get("checkpoint") for m in METHODS if m not in present}
    return eval_command.build_plan(eval_args, config), missing


def costs(plan, timing: bool) -> dict:
    """method name -> MethodCost (FLOPs, and seconds when timed) on the task."""
    from warpd_core.eval.flops import method_flops

    from warpd_core.eval.flops import dp_config_cost
    from warpd_core.policies.dp.checkpoint import load_checkpoint

    task = plan.tasks[0]
    out = {m.name: method_flops(m.checkpoint, task, steps=plan.steps, timing=timing, repeats=20)
           for m in plan.methods if m.replans}
    dp = next((m for m in plan.methods if m.name == "dp"), None)
    if dp is not None:
        out[DP_MEDIUM] = dp_config_cost(DP_MEDIUM_CONFIG, load_checkpoint(dp.checkpoint), task, steps=plan.steps,
                                        timing=timing)
    return out


def describe(method) -> str:
    """One line per method: what it is, its checkpoint and its size."""
    if method.kind == "expert":
        return f"`{method.name}`: the task's scripted expert (closed loop, no plans)"
    meta = method.metadata()
    config = meta["config"]
    if method.kind == "dp":
        size = (f"U-Net down_dims {config['unet']['down_dims']}, {meta.get('n_parameters', 0):,} parameters, "
                f"chunk P={config['model']['horizon']}, after the chunk: {config['model']['after_chunk']}, "
                f"{config['model']['sample_steps']} DDIM steps, {config['train']['steps']} training steps")
    else:
        size = (f"latent {config['encoder']['latent_dim']}, generated policy {meta['architecture']['layer_sizes']}, "
                f"{config['diffusion']['sample_steps']} {config['diffusion']['sampler'].upper()} steps, "
                f"loss weights {config['loss']}")
    return f"`{method.name}` ({method.kind}): `{method.checkpoint}`; {size}"


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def rate(counts, key):
    s, n = counts.get(key, (0, 0))
    return (s / n if n else float("nan")), format_rate(s, n)


def goals(rows, cost, max_level) -> list[tuple[str, str, bool | None]]:
    by_level = success_by(rows, "method", "horizon", "level")
    out = []
    if "warpd" in cost and "dp" in cost:
        for name in ("dp", DP_MEDIUM):
            ratio = cost[name].flops_per_step(K_REF) / cost["warpd"].flops_per_step(K_REF)
            out.append((f"FLOPs per control step, {name} / WARPD ≥ {GOAL_RATIO:.0f}× at K={K_REF}", f"{ratio:.1f}×",
                        ratio >= GOAL_RATIO))
        w, w_text = rate(by_level, ("warpd", K_REF, max_level))
        d, d_text = rate(by_level, ("dp", K_REF, max_level))
        out.append((f"at the largest level ({max_level:g}, K={K_REF}) WARPD ≥ DP + {100 * GOAL_MARGIN:.0f} points",
                    f"WARPD {w_text}, DP {d_text}: {100 * (w - d):+.0f} points", w >= d + GOAL_MARGIN))
    else:
        out.append(("WARPD vs DP goals (FLOPs ratio, robustness)", "not measured: no DP checkpoint", None))
    horizons = sorted({r["horizon"] for r in rows if r["method"] == "warpd"})
    lo, lo_text = rate(by_level, ("warpd", horizons[0], 0.0))
    hi, hi_text = rate(by_level, ("warpd", horizons[-1], 0.0))
    out.append((f"WARPD at K={horizons[-1]} within {100 * GOAL_HORIZON_GAP:.0f} points of K={horizons[0]} (level 0)",
                f"{hi_text} vs {lo_text}: {100 * (hi - lo):+.0f} points", lo - hi <= GOAL_HORIZON_GAP))
    return out


def to_markdown(plan, rows, cost, goal_rows, missing, pictures, command) -> str:
    names = [m.name for m in plan.methods]
    levels, horizons = sorted(plan.levels), sorted(plan.horizons)
    by_level = success_by(rows, "method", "horizon", "level")
    lines = ["## WARPD vs Diffusion Policy: perturbation, action horizon, FLOPs", "",
             f"`{command}` on {machine_info()}. Through `warpd eval`'s machinery: {len(plan.seeds)} seeds per "
             f"point ({plan.seeds[0]}..{plan.seeds[-1]}), task {', '.join(plan.tasks)}, perturbations "
             "`config/perturbations.yaml` scaled by the level, the same seeds and events for every method. "
             "Success % with its 95% Wilson interval. The scripted expert does not re-plan (no K).", ""]
    lines += [f"- {describe(m)}" for m in plan.methods]
    lines += [f"- **{name} not evaluated**: no checkpoint at `{missing[name]}`." for name in missing]
    lines += ["", f"### Success vs perturbation level (K={K_REF})", "",
              "| method | " + " | ".join(f"level {lv:g}" for lv in levels) + " |", "|---|" + "---:|" * len(levels)]
    for name in names:
        k = None if name == "expert" else K_REF
        lines.append(f"| {name} | " + " | ".join(rate(by_level, (name, k, lv))[1] for lv in levels) + " |")
    lines += ["", "### Success vs action horizon K (level 0, and the largest level)", "",
              "| method | level | " + " | ".join(f"K={k}" for k in horizons) + " |",
              "|---|---:|" + "---:|" * len(horizons)]
    for name in (n for n in names if n != "expert"):
        for lv in (levels[0], levels[-1]):
            cells = " | ".join(rate(by_level, (name, k, lv))[1] for k in horizons)
            lines.append(f"| {name} | {lv:g} | {cells} |")
    if cost:
        lines += ["", "### Inference FLOPs per control step", "",
                  "Counted with `torch.utils.flop_counter` (2 FLOPs per multiply-add; element-wise ops not counted; "
                  "see `warpd_core/eval/flops.py`). Per step at horizon K = plan / K + step. Wall time: medians on "
                  f"this machine, torch on {torch_threads()} thread(s), one state.", "",
                  "| method | plan FLOPs | step FLOPs | " + " | ".join(f"FLOPs/step K={k}" for k in horizons)
                  + f" | ms / plan | µs / control step at K={K_REF} (amortised) | success K={K_REF}, level 0 "
                  f"| success K={K_REF}, largest level |",
                  "|---|---:|---:|" + "---:|" * len(horizons) + "---:|---:|---:|---:|"]
        for name, c in cost.items():
            timed = c.planner_seconds is not None
            lines.append(f"| {name} | {c.planner_flops:,} | {c.step_flops:,} | "
                         + " | ".join(f"{c.flops_per_step(k):,.0f}" for k in horizons)
                         + (f" | {1e3 * c.planner_seconds:.2f} | {1e6 * c.seconds_per_step(K_REF):.1f}" if timed
                            else " | – | –")
                         + f" | {rate(by_level, (name, K_REF, levels[0]))[1]}"
                         f" | {rate(by_level, (name, K_REF, levels[-1]))[1]} |")
        for name in (n for n in ("dp", DP_MEDIUM) if n in cost and "warpd" in cost):
            ratios = [cost[name].flops_per_step(k) / cost["warpd"].flops_per_step(k) for k in horizons]
            lines += ["", f"{name} / WARPD FLOPs per control step at the same K: "
                      + ", ".join(f"K={k}: {r:.1f}×" for k, r in zip(horizons, ratios))
                      + f"; {name} at K={K_REF} vs WARPD at K={horizons[-1]}: "
                      f"{cost[name].flops_per_step(K_REF) / cost['warpd'].flops_per_step(horizons[-1]):.1f}×."]
        if DP_MEDIUM in cost:
            lines += ["", f"`{DP_MEDIUM}`: the Diffusion Policy at the issue's \"DP-medium\" size (`{DP_MEDIUM_CONFIG}`, "
                      "U-Net down_dims 128/256/512), counted and timed on untrained weights: it does not train on "
                      "this 2-core CPU within a session (~3 s per training step measured), so it has no success "
                      "figures; `dp` is the CPU-sized baseline that was trained and evaluated."]
    lines += ["", "### Goals (issue 6)", ""]
    for what, value, ok in goal_rows:
        lines.append(f"- {what}: {value} — **{'met' if ok else 'MISSED' if ok is not None else 'not measured'}**")
    lines += ["", "The world-model ablation over perturbation levels is the row `warpd_no_wm` above (same seeds), "
              "and its own benchmark is in [Ablation: without the world-model losses]"
              "(#ablation-without-the-world-model-losses)."]
    for picture in pictures:
        lines += ["", f"![{picture.stem}]({picture.relative_to(picture.parents[2]).as_posix()})"]
    return "\n".join(lines)


def draw(plan, rows, cost) -> list[Path]:
    names = [m.name for m in plan.methods]
    max_level = max(plan.levels)
    at_k = [r for r in rows if r["horizon"] in (None, K_REF)]
    pictures = [plot_success(at_k, PLOTS / "eval_sweep_level.png", lambda r: r["level"], "horizon",
                             "perturbation level", f"Success vs perturbation level (K={K_REF})", method_order=names),
                plot_success([r for r in rows if r["level"] in (0.0, max_level)], PLOTS / "eval_sweep_horizon.png",
                             lambda r: r["horizon"], "level", "action horizon K",
                             "Success vs action horizon (unperturbed and largest level)", log_x=True,
                             method_order=names, ticks_at_values=True)]
    if cost:
        pictures.append(plot_success(
            [r for r in rows if r["level"] in (0.0, max_level)], PLOTS / "eval_sweep_flops.png",
            lambda r: cost[r["method"]].flops_per_step(r["horizon"]) if r["method"] in cost else None, "level",
            "FLOPs per control step (points: K = 128 … 16)", "Success vs inference FLOPs per control step",
            log_x=True, method_order=names))
    return pictures


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.eval_sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=50, help="seeds per point (default 50)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--sweep-dir", type=Path, default=SWEEP_DIR, help=f"episode table (default {SWEEP_DIR})")
    parser.add_argument("--quick", action="store_true",
                        help="2 seeds, levels 0 and 1, K 16 and 128, a scratch sweep dir, no timing")
    parser.add_argument("--out", type=Path, help="write the section to this file instead (no plots)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds = 2
    plan, missing = plan_for(args)
    with tempfile.TemporaryDirectory(prefix="warpd_eval_sweep_") as scratch:
        rows = run_sweep_to_csv(plan, Path(scratch) if args.quick else args.sweep_dir, workers=args.workers)
    cost = costs(plan, timing=not args.quick)
    goal_rows = goals(rows, cost, max(plan.levels))
    for what, value, ok in goal_rows:
        print(f"{what}: {value} -> {'met' if ok else 'MISSED' if ok is not None else 'not measured'}")
    pictures = draw(plan, rows, cost) if args.out is None else []
    command = " ".join(["python -m bench.eval_sweep", *argv])
    written = update_section("eval_sweep", to_markdown(plan, rows, cost, goal_rows, missing, pictures, command),
                             **({"path": args.out} if args.out else {}))
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
