"""`python -m bench` (what `warpd bench` runs): the project's benchmarks, then a summary of the run
at the top of BENCHMARKS.md.

Each benchmark is a script in bench/ (run as `python -m bench.NAME` from the repository root, in
its own process, so one crash or hang does not take the others down). Each rewrites its own
section of BENCHMARKS.md, with its plot in docs/bench/; the runner then writes a summary at the
top: the machine, the date, and which benchmarks ran, how long they took and whether they
finished. A failed benchmark is reported and the others still run; the exit status says whether
all of them finished. Ctrl-C stops the running benchmark; the sections already written stay.

`--quick` runs the short versions meant for smoke tests. Their numbers are not worth keeping, so
unless `--out` says otherwise they go to runs/bench_quick.md, never to BENCHMARKS.md.

    python -m bench --list
    python -m bench --only conversion,policy_forward
    python -m bench --quick --only training_time --out /tmp/B.md
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.report import BENCHMARKS_MD, REPO, machine_info, update_section
from warpd_core.commands.argtypes import name_list
from warpd_core.commands.bench import QUICK_OUT, absolute_out, add_arguments, check_selection, run_child
from warpd_core.commands.standalone import standalone_main
from warpd_core.errors import WarpdError


@dataclass(frozen=True)
class Benchmark:
    name: str  # bench/<name>.py
    about: str
    quick: tuple[str, ...] = ()  # arguments of the short smoke-test version
    # how to send its section elsewhere (--out FILE); None: it cannot, and `no_write` keeps it off BENCHMARKS.md
    out_flag: str | None = "--out"
    no_write: tuple[str, ...] = ()

    def command(self, quick: bool, out: Path | None) -> list[str]:
        redirect = () if out is None else (self.out_flag, str(out)) if self.out_flag else self.no_write
        return [sys.executable, "-m", f"bench.{self.name}", *(self.quick if quick else ()), *redirect]


# In the order they run: cheap and independent first, the long evaluations last.
BENCHMARKS = (
    Benchmark("conversion", "PolicyWeights <-> numpy, fast vs naive paths, 1k-1M floats", ("--repeats", "3")),
    Benchmark("policy_forward", "numpy select_action per observation vs a naive forward pass",
              ("--calls", "200", "--batch-calls", "5")),
    Benchmark("fuzz_swap", "malformed PolicyWeights through the controller's admission path: all refused",
              ("--cases", "200", "--chunk", "100"), out_flag=None, no_write=("--no-write",)),
    Benchmark("experts", "scripted-expert success: reach_around over 100 seeds, MT10 over 20 each",
              ("--tasks", "reach_around", "--default-seeds", "4", "--workers", "1")),
    Benchmark("env_throughput", "env steps/s: raw, expert, perturbed, lockstep batch, 2 processes",
              ("--tasks", "reach_around", "--episodes", "2", "--batch", "2")),
    Benchmark("controller_timing", "the 1 kHz controller vs a bare rclpy timer in one run: missed ticks, p99, swaps",
              ("--rounds", "1", "--seconds", "3", "--warmup", "1")),
    Benchmark("compute_budget", "oversized policies every 0.1 s with the controller's compute budget on and off: "
              "refusals, loop rate, missed ticks", ("--seconds", "3")),
    Benchmark("graph_cpu", "CPU share per node of the running sim graph", ("--warmup", "5", "--window", "5")),
    Benchmark("two_hosts", "planner on one host, sim + controller on another (netns + veth, Fast DDS UDP) "
              "vs one host: swap latency, plan-to-command age, success",
              ("--rounds", "1", "--episodes", "2", "--duration", "4", "--layouts", "one_host,two_hosts")),
    Benchmark("faults", "fault injection against real node processes: HOLD and recovery times",
              ("--only", "joint_states_stop")),
    Benchmark("shutdown_soak", "ros2 launch of the sim graph stopped 20x by SIGINT, 20x by SIGTERM: clean exits",
              ("--stops", "1")),
    Benchmark("training_time", "time per training step: WARPD stage 1, stage 2 and Diffusion Policy",
              ("--steps", "6")),
    Benchmark("warpd_eval", "the shipped checkpoint: success per horizon K, modes vs demos, plan latency",
              ("--episodes", "2", "--one-state", "2", "--repeats", "10", "--workers", "1")),
    Benchmark("graph_modes", "the sim graph vs in-process on the same seeds: success and mode shares vs the demos",
              ("--episodes", "2", "--levels", "0", "--unfixed-episodes", "0")),
    Benchmark("ablation", "WARPD vs the L_BC + L_KL ablation under perturbation (trains the ablation first)",
              ("--episodes", "2", "--workers", "1")),
    Benchmark("eval_sweep", "WARPD vs Diffusion Policy: success vs perturbation and horizon, FLOPs per step, "
              "the issue-6 goals", ("--quick",)),
    Benchmark("mt10", "MT10 multitask: per-task success of WARPD, the expert and Diffusion Policy",
              ("--seeds", "1", "--tasks", "metaworld/reach-v3")),
    Benchmark("panda", "Franka Panda task: IK expert, shipped checkpoint by K, WARPD vs DP sweep, training time",
              ("--quick",)),
    Benchmark("from_bag", "record -> import-bag -> train -> bringup hil on the emulator, velocity and position: "
              "deployment success", ("--quick", "--tasks", "reach_around")),
)
BY_NAME = {b.name: b for b in BENCHMARKS}


def _names(text: str) -> tuple[str, ...]:
    names = name_list(text)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    return names


def selected(args) -> list[Benchmark]:
    check_selection(args)
    chosen = [b for b in BENCHMARKS if (not args.only or b.name in args.only) and b.name not in (args.skip or ())]
    if not chosen:
        raise WarpdError("--skip leaves no benchmark to run")
    return chosen


def run_one(bench: Benchmark, root: Path, quick: bool, out: Path | None) -> tuple[int, float]:
    """Run bench/<name>.py in a child process, its output passing straight through; (exit code, seconds)."""
    cmd = bench.command(quick, out)
    print(f"$ {' '.join(['python', *cmd[1:]])}", flush=True)
    began = time.monotonic()
    code = run_child(cmd, root)
    return code, time.monotonic() - began


def summary_section(results: list[tuple[Benchmark, int, float]], quick: bool) -> str:
    lines = ["## Last `warpd bench` run", "",
             f"`warpd bench{' --quick' if quick else ''}` on {machine_info()}. Each section below says when "
             "it was last regenerated; this run regenerated these:", "",
             "| benchmark | what it measures | minutes | result |", "|---|---|---:|---|"]
    for bench, code, seconds in results:
        result = "finished" if code == 0 else f"**FAILED** (exit {code}): its section is older"
        lines.append(f"| `{bench.name}` | {bench.about} | {seconds / 60:.1f} | {result} |")
    return "\n".join(lines)


def run(args) -> int:
    if args.list:
        width = max(len(b.name) for b in BENCHMARKS)
        for b in BENCHMARKS:
            print(f"{b.name.ljust(width)}  {b.about}")
        print("\nwith --quick they run as:")
        for b in BENCHMARKS:
            print(f"  python -m bench.{b.name} {' '.join(b.quick)}")
        return 0
    root = REPO
    chosen = selected(args)
    out = absolute_out(args) or (root / QUICK_OUT if args.quick else None)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for number, bench in enumerate(chosen, start=1):
            print(f"\n[{number}/{len(chosen)}] {bench.name}: {bench.about}", flush=True)
            code, seconds = run_one(bench, root, args.quick, out)
            results.append((bench, code, seconds))
            print(f"[{number}/{len(chosen)}] {bench.name}: " + ("done" if code == 0 else f"FAILED (exit {code})")
                  + f" in {seconds / 60:.1f} min", flush=True)
    finally:
        if results:
            written = update_section("bench_run", summary_section(results, args.quick), out or BENCHMARKS_MD,
                                     at_top=True)
            print(f"\nwrote {written}")
    failed = [b.name for b, code, _ in results if code != 0]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


main = standalone_main("warpd bench", __doc__, lambda parser: add_arguments(parser, _names), run, __name__)
