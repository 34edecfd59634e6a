"""How long does a training step take? WARPD stage 1, stage 2 and the Diffusion Policy baseline.

Runs the real `warpd train` command on each config for a few hundred steps (into a scratch
directory: no checkpoint of the project is touched), and reads the per-step time from the loss
curves it writes (their `seconds` column), between the first and the last logged step, so start-up,
data loading and the first step's warm-up are left out. The projection multiplies by the steps the
config trains for; the full runs' recorded times (in the checkpoints' metadata) are shown beside
it where those checkpoints exist.

    .venv/bin/python -m bench.training_time --steps 300
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.report import PLOTS, image_lines, machine_info, pyplot, save_figure, update_section


@dataclass(frozen=True)
class Run:
    label: str
    policy: str  # warpd_train --policy
    config: str
    # per timed stage: (curve name, config section holding steps/log_every/checkpoint_every/batch_size)
    stages: tuple[tuple[str, str], ...]
    checkpoint: str  # the full run's checkpoint, for its recorded training time


RUNS = (
    Run("WARPD", "warpd", "config/train_reach_around.yaml", (("stage1", "stage1"), ("stage2", "stage2")),
        "checkpoints/reach_around/checkpoint.safetensors"),
    Run("Diffusion Policy", "dp", "config/train_dp_reach_around.yaml", (("dp", "train"),),
        "checkpoints/dp_reach_around/checkpoint.safetensors"),
)


def time_run(run: Run, steps: int, scratch: Path) -> list[dict]:
    """Train `run` for `steps` steps per stage; one row per stage with the measured ms per step."""
    config = yaml.safe_load(Path(run.config).read_text())
    log_every = max(1, steps // 10)
    overrides = []
    for _, section in run.stages:
        overrides += ["--set", f"{section}.steps={steps}", "--set", f"{section}.log_every={log_every}",
                      "--set", f"{section}.checkpoint_every={steps + 1}"]
    out = scratch / run.policy
    cmd = [sys.executable, "-m", "warpd_ros.cli", "train", "--policy", run.policy, "--config", run.config,
           "--output", str(out), "--no-resume", "--quiet", *overrides]
    print("$", " ".join(["warpd", *cmd[3:]]), flush=True)
    began = time.monotonic()
    subprocess.run(cmd, check=True)
    wall = time.monotonic() - began
    rows = []
    for curve, section in run.stages:
        with (out / f"losses_{curve}.csv").open() as f:
            logged = [(int(r["step"]), float(r["seconds"])) for r in csv.DictReader(f)]
        (first_step, first_s), (last_step, last_s) = logged[0], logged[-1]
        ms = 1e3 * (last_s - first_s) / max(1, last_step - first_step)
        full_steps = config[section]["steps"]
        rows.append({"policy": run.label, "stage": curve, "batch": config[section]["batch_size"],
                     "timed_steps": last_step - first_step, "ms_per_step": ms, "full_steps": full_steps,
                     "projected_min": ms * full_steps / 6e4, "recorded_min": recorded_minutes(run, curve),
                     "wall_s": wall})
    return rows


def recorded_minutes(run: Run, curve: str) -> float | None:
    """What the full training of this stage took, as `warpd train` recorded it in the checkpoint."""
    path = Path(run.checkpoint)
    if not path.exists():
        return None
    from warpd_core.eval.methods import checkpoint_kind
    from warpd_core.policies.dp.checkpoint import read_metadata as read_dp
    from warpd_core.policies.warpd.checkpoint import read_metadata as read_warpd

    seconds = (read_dp if checkpoint_kind(path) == "dp" else read_warpd)(path).get("extra", {}).get("train_seconds")
    if isinstance(seconds, dict):
        seconds = seconds.get(curve)
    return seconds / 60 if isinstance(seconds, (int, float)) and seconds > 0 else None


def plot(rows, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    labels = [f"{r['policy']}\n{r['stage']} (batch {r['batch']})" for r in rows]
    colours = ["tab:blue" if r["policy"] == "WARPD" else "tab:orange" for r in rows]
    ax.bar(range(len(rows)), [r["ms_per_step"] for r in rows], color=colours)
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylabel("ms per training step")
    ax.set_title("Training step time (CPU)", fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    return save_figure(fig, path)


def to_markdown(rows, steps: int, picture: Path | None, load: str) -> str:
    lines = ["## Training time per step", "",
             f"`python -m bench.training_time --steps {steps}` on {machine_info()} ({load}). Each config trained by "
             f"`warpd train` for {steps} steps per stage into a scratch directory; ms per step between the first "
             "and last logged step (start-up and the first step excluded); torch's default threads. The "
             "projection is ms/step x the config's steps; 'recorded' is what the full run took, from its "
             "checkpoint (it ran while other jobs shared the machine).", "",
             "| policy | stage | batch | steps timed | ms / step | config steps | projected min | recorded min |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        recorded = f"{r['recorded_min']:.1f}" if r["recorded_min"] is not None else "–"
        lines.append(f"| {r['policy']} | {r['stage']} | {r['batch']} | {r['timed_steps']} | {r['ms_per_step']:.1f} | "
                     f"{r['full_steps']} | {r['projected_min']:.1f} | {recorded} |")
    lines += image_lines("training step time", picture)
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.training_time", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="training steps per stage (default 300)")
    parser.add_argument("--out", type=Path, help="write the section to this file instead (no plot)")
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error("--steps must be at least 2 (a step time needs two logged steps)")
    # what else the machine was doing: step times on a shared machine grow with its load
    load_start = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="warpd_training_time_") as scratch:
        for run in RUNS:
            rows += time_run(run, args.steps, Path(scratch))
    for r in rows:
        print(f"{r['policy']:<18} {r['stage']:<7} {r['ms_per_step']:8.1f} ms/step  "
              f"(projected {r['projected_min']:.1f} min for {r['full_steps']} steps)")
    load = (f"niceness {os.nice(0)}, 1-min load average {load_start:.1f} at the start and "
            f"{os.getloadavg()[0]:.1f} at the end")
    picture = plot(rows, PLOTS / "training_time.png") if args.out is None else None
    written = update_section("training_time", to_markdown(rows, args.steps, picture, load),
                             **({"path": args.out} if args.out else {}))
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
