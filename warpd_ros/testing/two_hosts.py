"""The sim graph on one host, or split over two (planner on host A; sim + controller on host B, as a
robot's own computer), and what hil-check's recorder sees of it from the controller's host.

The two hosts are network namespaces joined by a veth pair (:mod:`.netns`), Fast DDS over UDPv4
between them. The measurement is hil-check's own recorder and analysis (no second copy), run as
``python -m warpd_ros.testing.two_hosts`` inside the controller's namespace, with EpisodeEvents
beside it: swap latency (policy stamp -> first command equal to that policy's output),
plan-to-command age (how old the running policy is at each command), episode success, and the
ControllerStatus counters. Shared by test/test_two_hosts.py and bench/two_hosts.py.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from warpd_ros.testing import netns

MODULE = "warpd_ros.testing.two_hosts"
READY_TIMEOUT_S = 120.0  # the planner imports torch and loads the checkpoint; slow on a busy 2-core machine
WARM_UP_S = 2.0  # multi-process start-ups may stall a subscriber once in the first seconds


@dataclass(frozen=True)
class Layout:
    """Where each node (and the recorder, beside the controller) runs: a namespace host, or None for
    this machine's own network with the usual loopback settings."""

    name: str
    transport: str
    planner: netns.Host | None
    robot: netns.Host | None  # sim, controller, recorder

    def host_of(self, node: str) -> netns.Host | None:
        return self.planner if node == "warpd_planner" else self.robot


ONE_HOST_TRANSPORT = "Fast DDS builtin transports (shared memory, UDP on loopback), discovery LOCALHOST"
VETH_TRANSPORT = "Fast DDS UDPv4 only over a veth pair, unicast discovery to the two addresses (no shared memory)"


def one_host() -> Layout:
    return Layout("one host", ONE_HOST_TRANSPORT, None, None)


def two_hosts(pair: netns.VethPair) -> Layout:
    return Layout("two hosts", VETH_TRANSPORT, pair.a, pair.b)


def one_host_udp(pair: netns.VethPair) -> Layout:
    """Everything in one namespace with the same UDP-only profile: the transport's share, without the split."""
    return Layout("one host, UDP only", VETH_TRANSPORT.replace("over a veth pair", "on one address"), pair.b, pair.b)


def _pdeathsig():
    """Child processes get SIGTERM if the test or bench dies without stopping them (Linux)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec():
        prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    return preexec


class Placement:
    """Starts processes of a layout: wraps their command in ``ip netns exec`` with the host's Fast DDS
    profile where the layout puts them in a namespace."""

    def __init__(self, layout: Layout, workdir: Path, domain_id: int):
        self.layout, self.workdir, self.domain_id = layout, Path(workdir), domain_id
        self._profiles: dict[str, Path] = {}

    def argv(self, host: netns.Host | None, argv: list[str]) -> list[str]:
        if host is None:
            return list(argv)
        if host.netns not in self._profiles:
            self._profiles[host.netns] = netns.write_profile(host, self.workdir, self.domain_id)
        return host.wrap(argv, netns.host_environment(self._profiles[host.netns], self.domain_id))

    def start(self, name: str, host: netns.Host | None, argv: list[str], **popen) -> subprocess.Popen:
        from warpd_ros.testing.processes import start_node

        log = self.workdir / f"{name}.log"
        return start_node(self.argv(host, argv), log, env=_env(self.domain_id), preexec_fn=_pdeathsig(), **popen)


def _env(domain_id: int) -> dict:
    import os

    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), PYTHONUNBUFFERED="1")
    env.pop("ROS_STATIC_PEERS", None)
    return env


def start_graph(placement: Placement, seed: int = 0, episodes: int = 0, planner_overrides: dict | None = None) -> dict:
    """The sim graph's nodes (bringup's command lines, config/sim.yaml), each on its layout's host;
    sim and planner seeded with `seed` (episode k: seed + k); the sim stops stepping after `episodes` (0: never)."""
    from warpd_ros.bringup import plan

    overrides = [("warpd_sim", "seed", str(seed)), ("warpd_sim", "max_episodes", str(episodes)),
                 ("warpd_planner", "seed", str(seed))]
    overrides += [("warpd_planner", k, str(v)) for k, v in (planner_overrides or {}).items()]
    procs = {}
    try:
        for child in plan("sim", None, overrides):
            procs[child.name] = placement.start(child.name, placement.layout.host_of(child.name), child.argv)
    except BaseException:
        stop_graph(procs)
        raise
    return procs


def stop_graph(procs: dict) -> dict:
    """Stop every node (SIGINT, then SIGKILL); their return codes (None: killed)."""
    from warpd_ros.testing.processes import stop_process

    return {name: stop_process(proc, group=True) for name, proc in procs.items()}


def record(placement: Placement, duration: float, episodes: int = 0, timeout: float | None = None) -> dict:
    """Run the recorder beside the controller for `duration` s after the graph drives (and until
    `episodes` episodes finished, when given); the measured numbers (see :func:`measure`)."""
    out = placement.workdir / "recorder.json"
    argv = [sys.executable, "-m", MODULE, "--duration", str(duration), "--episodes", str(episodes),
            "--json", str(out)]
    proc = placement.start("recorder", placement.layout.robot, argv)
    limit = timeout if timeout is not None else READY_TIMEOUT_S + WARM_UP_S + duration + 60.0 + 30.0 * episodes
    try:
        code = proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        from warpd_ros.testing.processes import stop_process

        stop_process(proc, group=True)
        raise RuntimeError(f"the recorder did not finish within {limit:g} s; see {placement.workdir / 'recorder.log'}")
    if code != 0 or not out.exists():
        raise RuntimeError(f"the recorder exited with {code}: {_tail(placement.workdir / 'recorder.log')}")
    return json.loads(out.read_text())


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def logs(workdir: Path) -> str:
    """The last lines of every process log in `workdir` (for an assertion message)."""
    return "\n".join(f"--- {p.name}\n{_tail(p, 15)}" for p in sorted(Path(workdir).glob("*.log")))


# -------------------------------------------------------------------------- the recorder process

def measure(duration: float, episodes: int = 0) -> dict:
    """In this process (on the controller's host): wait for the controller to drive, warm up, record
    for `duration` s (longer until `episodes` finished), analyse with hil-check's analysis."""
    import numpy as np

    from warpd_ros.graph import TOPICS, default_config, read_params_file
    from warpd_ros.hil_check.analysis import analyse, policy_age_at_commands
    from warpd_ros.hil_check.recorder import Session, controller_settings, driving, init_context, to_samples
    from warpd_ros.hil_check.stats import percentiles
    from warpd_ros.ros_env import require_ros

    rclpy = require_ros()
    from warpd_ros import qos
    from warpd_ros.msg import EpisodeEvent

    context = init_context(rclpy, None)
    session = Session(rclpy, context, dict(TOPICS))
    finished: list = []  # (received ns, EpisodeEvent) for SUCCESS/TIMEOUT
    session.node.create_subscription(
        EpisodeEvent, TOPICS["episode_events"],
        lambda m: finished.append((time.time_ns(), m)) if m.event in (EpisodeEvent.SUCCESS, EpisodeEvent.TIMEOUT)
        else None, qos.EVENTS_QOS)
    try:
        rec = session.rec
        ready = session.spin_for(READY_TIMEOUT_S, until=lambda: bool(
            rec.states and rec.commands and rec.statuses and driving(rec.statuses[-1][1])))
        if not ready:
            raise RuntimeError(f"the controller did not drive within {READY_TIMEOUT_S:g} s "
                               f"(states {len(rec.states)}, commands {len(rec.commands)}, statuses {len(rec.statuses)})")
        controller = controller_settings(session, read_params_file(default_config("sim")))
        session.spin_for(WARM_UP_S)
        t0 = time.time_ns()
        session.spin_for(duration)
        if episodes:
            session.spin_for(30.0 * episodes, until=lambda: len(finished) >= episodes)
        t1 = time.time_ns()
        samples = to_samples(rec, controller["joint_names"])
        measured = analyse(samples, t0, t1, controller, {"tested": False, "why": "not tested here"})
        swaps = measured["swaps"]
        age = policy_age_at_commands(swaps["switches"], samples.commands.recv, t0, t1)
        statuses = [s for _, s in rec.statuses]
        last = statuses[-1]
        successes = [m for _, m in finished if m.event == EpisodeEvent.SUCCESS]
        return {
            "window_s": (t1 - t0) * 1e-9,
            "swap_latency_ms": swaps["stats_ms"],
            "swaps": {k: swaps[k] for k in ("policies_seen", "measured", "ambiguous", "not_found", "blind")},
            "receive_to_switch_ms": percentiles(swaps["receive_to_switch_ms"]),
            "plan_to_command_age_ms": percentiles(age),
            "state_to_command_ms": measured["state_to_command_ms"],
            "joint_states": measured["joint_states"], "commands": measured["commands"],
            "policies_received": len(rec.policies),
            "policy_planners": sorted({m.planner_id for _, m in rec.policies}),
            "policy_bytes": int(np.median([len(m.weights) * 4 for _, m in rec.policies])) if rec.policies else 0,
            "episodes": [{"episode": int(m.episode), "seed": int(m.seed), "success": m.event == EpisodeEvent.SUCCESS,
                          "time_s": float(m.episode_time)} for _, m in finished],
            "episodes_finished": len(finished), "episodes_succeeded": len(successes),
            "controller": {"swaps_accepted": int(last.swaps_accepted), "swaps_rejected": int(last.swaps_rejected),
                           "active_policy_id": int(last.active_policy_id), "missed_ticks": int(last.missed_ticks),
                           "run_share": measured.get("run_share")},
            "notes": measured["notes"],
            "raw": {"swap_latency_ms": swaps["latencies_ms"], "receive_to_switch_ms": swaps["receive_to_switch_ms"],
                    "plan_to_command_age_ms": np.round(age, 3).tolist()},  # for pooling runs
        }
    finally:
        session.close()
        context.try_shutdown()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=measure.__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="measurement window, s (default 10)")
    parser.add_argument("--episodes", type=int, default=0, help="extend the window until this many episodes ended")
    parser.add_argument("--json", type=Path, required=True, help="write the numbers here")
    args = parser.parse_args(argv)
    result = measure(args.duration, args.episodes)
    args.json.write_text(json.dumps(result, indent=1, default=float))
    return 0


def workdir(prefix: str = "warpd-two-hosts-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


if __name__ == "__main__":
    sys.exit(main())
