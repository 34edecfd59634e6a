"""Does the world model help? WARPD vs the paper's "L_BC + L_KL only" ablation, under perturbation.

Trains the ablation from the same config with `loss.ro=0 loss.tf=0` (everything else, the data
and the seed identical) unless its checkpoint exists, then evaluates both checkpoints on the
same seeds at several perturbation levels with the same re-planning horizon.

    .venv/bin/python -m bench.ablation            # trains the ablation if needed (~5 min), evaluates, writes
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from bench.report import PLOTS, image_lines, machine_info, pyplot, save_figure, update_section
from warpd_core.eval.runner import run_sweep, summarize
from warpd_core.perturb import PerturbationSpec
from warpd_core.policies.warpd.planner import PlannerFactory

FULL = "checkpoints/reach_around/checkpoint.safetensors"
ABLATION_OUT = "runs/ablation_bc_kl"
LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)
EVAL_SEED = 20_000


def train_ablation(config: str, out: str) -> Path:
    checkpoint = Path(out) / "checkpoint.safetensors"
    if not checkpoint.exists():
        cmd = [sys.executable, "-m", "warpd_ros.cli", "train", "--config", config, "--output", out,
               "--set", "loss.ro=0", "--set", "loss.tf=0", "--quiet"]
        print("training the ablation:", " ".join(cmd[2:]))
        subprocess.run(cmd, check=True)
    return checkpoint


def evaluate(checkpoint, task, episodes, horizon, workers) -> dict[float, float]:
    spec = PerturbationSpec.from_yaml("config/perturbations.yaml")
    metrics = run_sweep(task, PlannerFactory(checkpoint, task), range(EVAL_SEED, EVAL_SEED + episodes), LEVELS,
                        base_spec=spec, replan_every=horizon, workers=workers, progress=True)
    return {level: summarize([m for m in metrics if m.level == level])["success_rate"] for level in LEVELS}


def plot(results: dict[str, dict[float, float]], path: Path) -> Path:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, by_level in results.items():
        ax.plot(list(by_level), [100 * v for v in by_level.values()], "-o", label=name)
    ax.set_xlabel("perturbation level")
    ax.set_ylabel("success %")
    ax.set_ylim(0, 102)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title("World-model losses vs L_BC + L_KL only (reach_around)")
    return save_figure(fig, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", default=FULL, help=f"the full WARPD checkpoint (default {FULL})")
    parser.add_argument("--config", default="config/train_reach_around.yaml", help="config both were trained from")
    parser.add_argument("--ablation-out", default=ABLATION_OUT, help=f"where the ablation trains (default {ABLATION_OUT})")
    parser.add_argument("--episodes", type=int, default=50, help="episodes per level and model (default 50)")
    parser.add_argument("--replan-every", type=int, default=16, help="K (default 16)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write the section to this file instead (no plot)")
    args = parser.parse_args(argv)
    ablation = train_ablation(args.config, args.ablation_out)
    results = {"WARPD (L_BC + L_TF + L_RO + L_KL)": evaluate(args.full, "reach_around", args.episodes,
                                                             args.replan_every, args.workers),
               "ablation (L_BC + L_KL only)": evaluate(ablation, "reach_around", args.episodes, args.replan_every,
                                                       args.workers)}
    lines = ["## Ablation: without the world-model losses", "",
             f"`python -m bench.ablation --episodes {args.episodes}` on {machine_info()}. Both models trained from "
             f"`{args.config}` (same data and seed; the ablation with `loss.ro=0 loss.tf=0`), evaluated on the same "
             f"seeds {EVAL_SEED}.. with re-planning every {args.replan_every} steps under `config/perturbations.yaml`.",
             "", "| model | " + " | ".join(f"level {lv}" for lv in LEVELS) + " |",
             "|---|" + "---:|" * len(LEVELS)]
    for name, by_level in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{100 * v:.0f}%" for v in by_level.values()) + " |")
        print(name, {k: round(v, 3) for k, v in by_level.items()})
    picture = plot(results, PLOTS / "ablation.png") if args.out is None else None
    lines += image_lines("ablation", picture)
    written = update_section("ablation", "\n".join(lines), **({"path": args.out} if args.out else {}))
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
