"""Shutdown soak: stop the launched sim graph many times, by SIGINT and by SIGTERM to `ros2 launch` only.

A supervisor, `timeout`, systemd or a test harness stops a launch by signalling the launch process alone;
launch then forwards the signal to every node. Before the fix, 4 of 5 such stops had nodes abort
(`terminate called ... KeyboardInterrupt`, exit -6) without the controller's final hold command. This
builds the package with colcon into a scratch workspace, sources it, and for each stop: starts
`ros2 launch warpd_ros sim.launch.py` in a session of its own, waits a random time after launch has started
the nodes (from their start-up, while the planner still imports torch, to a busy running graph), signals
the launch process, and reads how every node ended. A listener outside the graph records the last command on the command topic: it must be the
hold command (zeros, velocity interface).

    .venv/bin/python -m bench.shutdown_soak                      # 20 x SIGINT + 20 x SIGTERM, BENCHMARKS.md
    .venv/bin/python -m bench.shutdown_soak --stops 3 --out /tmp/soak.md
"""
from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench.report import machine_info, update_section
from warpd_ros.testing import ros_tooling as tooling
from warpd_ros.testing.processes import use_private_domain

SECTION = "shutdown_soak"
SIGNALS = {"INT": signal.SIGINT, "TERM": signal.SIGTERM}


def stop_once(env: dict, sig: int, after_s: float, log_path: Path, context, wait_s: float = 40.0) -> dict:
    """One launch, stopped by `sig` to the launch process after `after_s` seconds; what happened."""
    tap = tooling.CommandTap(context)
    try:
        launch = tooling.start_launch(env, log_path=log_path)
        deadline = time.monotonic() + 60  # after_s counts from when launch has started every node
        while time.monotonic() < deadline and len(tooling.read_launch_log(log_path.read_text()).started) < 3:
            time.sleep(0.05)
        time.sleep(after_s)
        outcome = tooling.stop_and_read(launch, sig, log_path, wait_s)
        time.sleep(0.3)  # the last command in flight reaches the tap
    finally:
        tap.close()
    hold = tap.last_command is None or all(v == 0.0 for v in tap.last_command)
    return {"signal": signal.Signals(sig).name, "after_s": after_s, "launch_exit": launch.returncode,
            "nodes": len(outcome.started), "clean": len(outcome.finished_cleanly), "died": outcome.died,
            "aborts": outcome.aborts, "escalations": outcome.escalations, "commands": tap.commands,
            "last_command": tap.last_command, "last_is_hold": hold, "ok": outcome.clean and hold,
            "successes": outcome.successes}


def soak(stops: int, signals: list[str], min_s: float, max_s: float, seed: int, workdir: Path) -> list[dict]:
    from warpd_ros.testing.standin import ros_context

    env = use_private_domain()
    tooling.become_subreaper()  # adopt the nodes a SIGTERMed launch leaves behind, to read their exit codes
    print("colcon build of warpd_ros into a scratch workspace ...", flush=True)
    install = tooling.build_workspace(workdir / "ws")
    launch_env = tooling.sourced_env(install, env)
    rng = random.Random(seed)
    rows = []
    with ros_context() as context:
        for name in signals:
            for i in range(stops):
                after = round(rng.uniform(min_s, max_s), 2)
                row = stop_once(launch_env, SIGNALS[name], after, workdir / f"launch_{name}_{i}.log", context)
                rows.append(row)
                print(f"{name:>4} #{i + 1:<3} after {after:5.2f} s: {row['clean']}/{row['nodes']} finished cleanly, "
                      f"died {row['died'] or '-'}, aborts {row['aborts']}, escalations {row['escalations']}, "
                      f"last command {row['last_command']} ({'hold' if row['last_is_hold'] else 'NOT a hold'})",
                      flush=True)
    return rows


def markdown(rows: list[dict], args) -> str:
    lines = [f"`python -m bench.shutdown_soak --stops {args.stops}` — {machine_info()}", "",
             "Each stop: `ros2 launch warpd_ros sim.launch.py` from a colcon workspace, stopped a random "
             f"{args.min_s:g}–{args.max_s:g} s after launch started the nodes (from their imports and checkpoint "
             "loading to a busy graph) by a signal to the launch process alone.", "",
             "| signal | stops | every node finished cleanly | aborts | nodes died | escalations | last command = hold |",
             "|---|---|---|---|---|---|---|"]
    for name in args.signals:
        mine = [r for r in rows if r["signal"] == SIGNALS[name].name]
        lines.append(f"| SIG{name} | {len(mine)} | {sum(r['clean'] == r['nodes'] > 0 for r in mine)}/{len(mine)} | "
                     f"{sum(r['aborts'] for r in mine)} | {sum(len(r['died']) for r in mine)} | "
                     f"{sum(r['escalations'] for r in mine)} | {sum(r['last_is_hold'] for r in mine)}/{len(mine)} |")
    ok = all(r["ok"] for r in rows)
    lines += ["", f"Goal (zero aborts, every node finished cleanly, last command the hold): "
                  f"**{'met' if ok else 'MISSED'}**."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stops", type=int, default=20, help="stops per signal (default 20)")
    parser.add_argument("--signals", default="INT,TERM", help="comma-separated: INT, TERM (default both)")
    parser.add_argument("--min-s", type=float, default=0.0,
                        help="earliest stop, seconds after launch started every node (0: the nodes still import)")
    parser.add_argument("--max-s", type=float, default=10.0, help="latest stop (s after the nodes started)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the section here instead of BENCHMARKS.md")
    args = parser.parse_args(argv)
    args.signals = [s.strip().upper() for s in args.signals.split(",") if s.strip()]
    unknown = [s for s in args.signals if s not in SIGNALS]
    if unknown or args.stops < 1 or not 0 <= args.min_s <= args.max_s:
        parser.error(f"bad --signals {unknown} / --stops / --min-s..--max-s")
    reason = tooling.tooling_missing()
    if reason:
        print(f"shutdown_soak: cannot run: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="warpd_soak_") as tmp:
        rows = soak(args.stops, args.signals, args.min_s, args.max_s, args.seed, Path(tmp))
    written = update_section(SECTION, markdown(rows, args), **({"path": args.out} if args.out else {}))
    print(f"wrote {written}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
