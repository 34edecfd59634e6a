"""Episodes of the whole sim graph (sim + controller + planner, as `warpd bringup sim` starts it), with the
mode each one took and how long it ran on a policy planned before its reset; and the demonstrations'
mode shares they are held against. Shared by bench/graph_modes.py and test/test_graph_modes.py."""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from warpd_ros.testing.benchmarks_md import BENCHMARKS_MD


@dataclass
class GraphEpisode:
    episode: int
    seed: int
    success: bool
    mode: str  # '' when the episode timed out undecided
    time_s: float  # sim seconds from reset to success or timeout
    reset_stamp_ns: int
    # Stamp of the first policy planned at or after the reset (planner clock; None: none came), and the
    # wall seconds from the RESET's arrival to that policy's: meanwhile the controller runs an older one
    # (which the sim applies unless episode_start=controller_runs holds the world).
    first_policy_stamp_ns: int | None = None
    pre_reset_policy_s: float | None = None


@dataclass
class GraphRun:
    episodes: list[GraphEpisode] = field(default_factory=list)
    sim_log: list[str] = field(default_factory=list)  # the sim's per-episode lines
    wall_s: float = 0.0

    def successes(self) -> list[GraphEpisode]:
        return [e for e in self.episodes if e.success]

    def mode_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self.successes():
            counts[e.mode] = counts.get(e.mode, 0) + 1
        return counts


class EpisodeListener:
    """Records EpisodeEvents and the arrival of every PolicyWeights on a TestNode. `controlled_only`: drop
    episodes reset before the first policy arrived (a sim with episode_start=immediately runs those
    while the planner still loads)."""

    def __init__(self, test_node, controlled_only: bool = False):
        from warpd_ros import qos, topics
        from warpd_ros.msg import EpisodeEvent, PolicyWeights

        self._kinds = EpisodeEvent
        self._controlled_only, self._first_policy_at = controlled_only, None
        self.episodes: list[GraphEpisode] = []
        self._open: dict[int, tuple[int, float]] = {}  # episode -> (reset stamp ns, reset arrival)
        self._pending: dict[int, tuple[int | None, float | None]] = {}  # episode -> (first policy stamp, delay)
        node = test_node.node
        node.create_subscription(EpisodeEvent, topics.EPISODE_EVENTS, self._on_event, qos.EVENTS_QOS)
        node.create_subscription(PolicyWeights, topics.POLICY_WEIGHTS, self._on_policy, qos.policy_swap_qos(depth=50))

    def _on_event(self, msg) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        if msg.event == self._kinds.RESET:
            self._open[msg.episode] = (stamp, time.monotonic())
            self._pending[msg.episode] = (None, None)
        elif msg.event in (self._kinds.SUCCESS, self._kinds.TIMEOUT):
            reset_stamp, reset_at = self._open.pop(msg.episode, (0, 0.0))
            first_stamp, delay = self._pending.pop(msg.episode, (None, None))
            if self._controlled_only and (self._first_policy_at is None or reset_at < self._first_policy_at):
                return
            self.episodes.append(GraphEpisode(
                int(msg.episode), int(msg.seed), msg.event == self._kinds.SUCCESS, msg.mode,
                float(msg.episode_time), reset_stamp, first_stamp, delay))

    def _on_policy(self, msg) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        now = time.monotonic()
        self._first_policy_at = self._first_policy_at or now
        for episode, (reset_stamp, reset_at) in self._open.items():
            if self._pending.get(episode, (None,))[0] is None and stamp >= reset_stamp:
                self._pending[episode] = (stamp, now - reset_at)


def run_graph(episodes: int, level: float = 0.0, seed: int = 0, env: dict | None = None,
              sim_overrides: dict | None = None, planner_overrides: dict | None = None,
              timeout_s: float | None = None, progress=None) -> GraphRun:
    """Start the sim graph from config/sim.yaml, let the sim run `episodes` episodes (seeds seed..)
    at perturbation `level` and stop the graph. `env` is the nodes' environment (a private domain,
    loopback), and this process must already use the same domain. `progress(run)` after each episode.
    With sim_overrides episode_start=immediately, episodes reset before the first policy arrived are
    not counted (and so the seeds start later)."""
    from warpd_core.errors import WarpdError
    from warpd_ros.bringup import Bringup, graph_environment, plan
    from warpd_ros.testing.standin import TestNode, ros_context

    sim = {"max_episodes": episodes, "seed": seed, "perturbation_level": level, **(sim_overrides or {})}
    controlled_only = sim.get("episode_start") == "immediately"
    if controlled_only:
        sim["max_episodes"] = 0  # as many as it takes: the first ones do not count
    overrides = [("warpd_sim", k, str(v)) for k, v in sim.items()]
    overrides += [("warpd_planner", k, str(v)) for k, v in (planner_overrides or {}).items()]
    children = plan("sim", None, overrides)
    env = dict(env) if env is not None else graph_environment()
    run = GraphRun()
    sim_lines = run.sim_log

    def keep(line: str) -> bool:
        if "warpd_sim" in line and "episode" in line or "ERROR" in line or "Traceback" in line:
            sim_lines.append(line)
        return False

    graph = Bringup(children, env, show=keep)
    timeout_s = timeout_s if timeout_s is not None else 120.0 + 10.0 * episodes
    start = time.monotonic()
    with ros_context() as context:
        listener_node = TestNode(context, "warpd_graph_modes_listener")
        listener = EpisodeListener(listener_node, controlled_only)
        try:
            with graph.running(grace=5.0):
                seen = 0
                deadline = start + timeout_s
                while len(listener.episodes) < episodes:
                    listener_node.spin_until(lambda: len(listener.episodes) > seen, 0.5)
                    if len(listener.episodes) > seen:
                        seen = len(listener.episodes)
                        if progress is not None:
                            run.episodes = listener.episodes
                            progress(run)
                    dead = graph.first_dead()
                    if dead is not None:
                        raise WarpdError(f"{dead.name} died (exit code {dead.proc.returncode}):\n"
                                         + "\n".join(dead.tail))
                    if time.monotonic() > deadline:
                        raise WarpdError(f"only {seen} of {episodes} episodes within {timeout_s:g} s")
        finally:
            listener_node.close()
    run.episodes = list(listener.episodes[:episodes])
    run.wall_s = time.monotonic() - start
    return run


# ---- the demonstrations ------------------------------------------------------------------------
def demo_mode_shares(checkpoint: str | Path) -> tuple[dict[str, float], str]:
    """(mode -> share of the successful demonstrations the checkpoint was trained on, where it came from):
    counted from the dataset when it is on this machine, else the shares BENCHMARKS.md's warpd_eval
    section recorded from it (bench/warpd_eval.py), rounded to whole percent there."""
    from warpd_core.policies.warpd.checkpoint import read_metadata

    path = read_metadata(str(checkpoint))["config"]["data"]["path"]
    try:
        from warpd_core.eval.sweep import demo_mode_counts

        counts = demo_mode_counts(path)
        total = sum(counts.values())
        return {m: c / total for m, c in counts.items()}, f"dataset {path} ({total} successful episodes)"
    except Exception:  # noqa: BLE001 - the dataset is not shipped; fall back to the recorded shares
        pass
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else ""
    match = re.search(r"<!-- bench:warpd_eval:start -->.*?Demonstrations: ([^\n]*?)\.\s*\n", text, re.S)
    if not match:
        raise FileNotFoundError(f"neither the dataset {path} nor BENCHMARKS.md's warpd_eval section is here")
    shares = {m: int(p) / 100 for m, p in re.findall(r"(\w+) (\d+)%", match.group(1))}
    return shares, f"BENCHMARKS.md warpd_eval section (from dataset {path})"


def binomial_bound(p: float, n: int, sigmas: float = 3.0) -> float:
    """Half-width of `sigmas` binomial standard deviations of a share p over n episodes."""
    return sigmas * math.sqrt(p * (1.0 - p) / max(n, 1))
