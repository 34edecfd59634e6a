"""How much CPU does each node of the running sim graph take?

Starts the sim graph exactly as `warpd bringup sim` does, lets it warm up (the planner loads
torch and the checkpoint), then reads each node's CPU time from /proc over a measurement window
and reports the share of one core per node.

    .venv/bin/python -m bench.graph_cpu            # 30 s window; table + BENCHMARKS.md section
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.report import machine_info, update_section
from warpd_ros.testing.processes import cpu_seconds


def measure(warmup: float, window: float) -> dict[str, float]:
    from warpd_ros.bringup import Bringup, plan
    from warpd_ros.ros_env import loopback_environment

    env = loopback_environment()
    env["PYTHONUNBUFFERED"] = "1"
    graph = Bringup(plan("sim"), env, show=lambda line: False)
    graph.start()
    try:
        time.sleep(warmup)
        if graph.first_dead() is not None:
            raise RuntimeError(f"{graph.first_dead().name} died during warm-up")
        before = {c.name: cpu_seconds(c.proc.pid) for c in graph.children}
        start = time.monotonic()
        time.sleep(window)
        elapsed = time.monotonic() - start
        after = {c.name: cpu_seconds(c.proc.pid) for c in graph.children}
    finally:
        graph.stop(grace=5.0)
    return {name: (after[name] - before[name]) / elapsed for name in before}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds before measuring (default 20)")
    parser.add_argument("--window", type=float, default=30.0, help="measurement window in seconds (default 30)")
    parser.add_argument("--out", type=Path, help="write the section to this file instead")
    args = parser.parse_args(argv)
    shares = measure(args.warmup, args.window)
    for name, share in shares.items():
        print(f"{name:<18} {100 * share:6.1f}% of one core")
    lines = ["## CPU share per node (sim graph)", "",
             f"`python -m bench.graph_cpu --window {args.window:g}` on {machine_info()}: `warpd bringup sim` "
             f"(controller at 1 kHz, planner every 0.32 s, sim at 50 Hz), measured from /proc over "
             f"{args.window:g} s after {args.warmup:g} s of warm-up.", "",
             "| node | CPU, % of one core |", "|---|---:|"]
    lines += [f"| {name} | {100 * share:.1f} |" for name, share in shares.items()]
    lines.append(f"| all three | {100 * sum(shares.values()):.1f} |")
    written = update_section("graph_cpu", "\n".join(lines), **({"path": args.out} if args.out else {}))
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
