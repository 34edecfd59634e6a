"""Timing relative to the platform: the controller's 1 kHz loop held against a bare rclpy timer.

Absolute figures for a 1 kHz loop (zero missed ticks, p99 period error in the tens of µs) need a
real-time host. On a shared VM what can be held is the *ratio* to what any rclpy loop gets on the
same machine at the same time. This module has both halves, for bench/controller_timing.py and
its tests:

- :func:`compare_to_platform`: the pass/miss arithmetic (missed ticks <= ratio x the bare timer's,
  p99 period error <= the bare timer's + a margin) and by how much a goal is missed. Pure, no ROS.
- :class:`BareTimerNode` / :func:`main`: the bare timer, run like a node
  (``python -m warpd_ros.testing.platform_timing``): :func:`warpd_ros.ros_env.run_node` (the same
  executor, one BLAS thread, the spin_once loop, the signal handling), gc collected and frozen
  after start as the controller's entry does, a steady-clock timer at ``--rate`` whose callback
  only feeds :class:`warpd_core.runtime.swap.LoopTimer` (the controller's own statistics), and
  every ``1/--status-rate`` s one JSON line on stdout: the window's statistics, the cumulative
  missed ticks and the wall-clock time, so a benchmark can cut its windows on the clock the
  controller stamps its ControllerStatus with.
- ``--io``: the same timer doing the controller's traffic and nothing else: it takes the joint states
  (into arrays), decodes every PolicyWeights it is sent (as raw bytes, as the controller does) and
  publishes one command per tick on the controller's command topic. Against it the benchmark can tell
  what rclpy's I/O at the controller's rates costs on this machine from what the controller adds.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
from dataclasses import dataclass

MISSED_RATIO = 1.2  # controller missed ticks <= this x the bare timer's (issue 13, item 5)
P99_MARGIN_US = 100.0  # controller p99 period error <= the bare timer's + this


@dataclass(frozen=True)
class PlatformComparison:
    """The controller against the bare timer over the same span (same run, same load)."""

    bare_missed: int
    ctrl_missed: int
    bare_p99_us: float
    ctrl_p99_us: float
    missed_ratio_goal: float = MISSED_RATIO
    p99_margin_goal_us: float = P99_MARGIN_US

    @property
    def missed_ratio(self) -> float:
        """ctrl / bare missed ticks; 1.0 when neither missed any, inf when only the controller did."""
        if self.bare_missed > 0:
            return self.ctrl_missed / self.bare_missed
        return 1.0 if self.ctrl_missed == 0 else math.inf

    @property
    def missed_allowed(self) -> float:
        return self.missed_ratio_goal * self.bare_missed

    @property
    def missed_ok(self) -> bool:
        # a tolerance for the float product (1.2 * 5 = 6.000000000000001); counts are integers
        return self.ctrl_missed <= self.missed_allowed + 1e-9

    @property
    def missed_excess(self) -> float:
        """Ticks beyond the allowance (0 when met)."""
        return max(0.0, self.ctrl_missed - self.missed_allowed)

    @property
    def p99_diff_us(self) -> float:
        return self.ctrl_p99_us - self.bare_p99_us

    @property
    def p99_ok(self) -> bool:
        return self.p99_diff_us <= self.p99_margin_goal_us

    @property
    def p99_excess_us(self) -> float:
        """µs beyond bare + margin (0 when met; NaN inputs give NaN and fail)."""
        excess = self.p99_diff_us - self.p99_margin_goal_us
        return excess if excess > 0 or excess != excess else 0.0

    @property
    def ok(self) -> bool:
        return self.missed_ok and self.p99_ok

    def missed_verdict(self) -> str:
        ratio = "n/a (neither missed a tick)" if self.bare_missed == 0 and self.ctrl_missed == 0 else \
            f"{self.missed_ratio:.2f}x"
        if self.missed_ok:
            return f"PASS ({self.ctrl_missed} vs {self.bare_missed}: {ratio} ≤ {self.missed_ratio_goal:g}x)"
        return (f"MISSED by {self.missed_excess:.1f} ticks ({self.ctrl_missed} vs {self.bare_missed}: {ratio} > "
                f"{self.missed_ratio_goal:g}x, allowed {self.missed_allowed:.1f})")

    def p99_verdict(self) -> str:
        text = (f"{self.ctrl_p99_us:.0f} - {self.bare_p99_us:.0f} = {self.p99_diff_us:+.0f} µs")
        if self.p99_ok:
            return f"PASS ({text} ≤ +{self.p99_margin_goal_us:.0f} µs)"
        return f"MISSED by {self.p99_excess_us:.0f} µs ({text} > +{self.p99_margin_goal_us:.0f} µs)"


def compare_to_platform(bare_missed: int, ctrl_missed: int, bare_p99_us: float, ctrl_p99_us: float,
                        missed_ratio: float = MISSED_RATIO, p99_margin_us: float = P99_MARGIN_US
                        ) -> PlatformComparison:
    if bare_missed < 0 or ctrl_missed < 0:
        raise ValueError(f"missed tick counts must be >= 0, got {bare_missed}, {ctrl_missed}")
    return PlatformComparison(int(bare_missed), int(ctrl_missed), float(bare_p99_us), float(ctrl_p99_us),
                              float(missed_ratio), float(p99_margin_us))


# ---------------------------------------------------------------------------------------- the bare timer
def window_line(t_wall: float, stats: dict, missed_total: int, **extra) -> str:
    """One status line of the bare timer (what :func:`parse_window_line` reads back); `t_wall`: the wall
    clock (s) when the window closed, the clock the controller stamps its ControllerStatus with; `extra`:
    more counts (the I/O twin's policies decoded)."""
    return json.dumps({"t": t_wall, "missed": int(missed_total), **stats, **extra})


def parse_window_line(line: str) -> dict | None:
    """A bare-timer status line as a dict, or None for anything else on its stdout."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if "t" in record and "missed" in record else None


def make_bare_timer_node(rate_hz: float, status_rate_hz: float, out=None, io: bool = False):
    """A node with nothing but a steady-clock timer at `rate_hz` feeding a LoopTimer, and a status
    timer printing :func:`window_line` to `out` (default stdout) at `status_rate_hz`. With `io`, the
    timer also does the controller's traffic (see the module docstring): the I/O twin."""
    from rclpy.clock import Clock, ClockType
    from rclpy.node import Node

    from warpd_core.runtime.swap import LoopTimer

    stream = sys.stdout if out is None else out

    class BareTimerNode(Node):
        def __init__(self):
            super().__init__("bench_io_twin" if io else "bench_bare_timer")
            self.loop = LoopTimer(rate_hz)
            steady = Clock(clock_type=ClockType.STEADY_TIME)
            tick, clock = self.loop.tick, time.monotonic_ns
            self.create_timer(1.0 / rate_hz, self._on_io_tick if io else lambda: tick(clock()), clock=steady)
            self.create_timer(1.0 / status_rate_hz, self._on_status, clock=steady)
            if io:
                self._start_io()

        def _start_io(self) -> None:
            import numpy as np
            from rclpy.serialization import deserialize_message
            from sensor_msgs.msg import JointState
            from std_msgs.msg import Float64MultiArray

            from warpd_ros import topics
            from warpd_ros.msg import PolicyWeights
            from warpd_ros.qos import COMMAND_QOS, SENSOR_QOS, policy_swap_qos

            self.q = self.qd = np.zeros(0)
            self.policies_decoded = 0

            def on_state(msg):
                self.q, self.qd = np.asarray(msg.position), np.asarray(msg.velocity)

            def on_policy(data):
                deserialize_message(data, PolicyWeights)
                self.policies_decoded += 1

            self.create_subscription(JointState, topics.JOINT_STATES, on_state, SENSOR_QOS)
            self.create_subscription(PolicyWeights, topics.POLICY_WEIGHTS, on_policy, policy_swap_qos(), raw=True)
            self._cmd_pub = self.create_publisher(Float64MultiArray, topics.JOINT_COMMANDS, COMMAND_QOS)
            self._cmd = Float64MultiArray()

        def _on_io_tick(self) -> None:
            self.loop.tick(time.monotonic_ns())
            if self.qd.size:  # once the joints are known, as the controller (active only on joint states)
                self._cmd.data = (0.0 * self.qd).tolist()  # one value per joint, never a motion
                self._cmd_pub.publish(self._cmd)

        def _on_status(self) -> None:
            extra = {"policies": self.policies_decoded} if io else {}
            print(window_line(time.time(), self.loop.window_stats(), self.loop.missed_ticks, **extra), file=stream,
                  flush=True)

    return BareTimerNode()


def main(argv=None) -> int:
    from warpd_ros.ros_env import run_node

    parser = argparse.ArgumentParser(description="a bare rclpy timer node, the platform reference")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--status-rate", type=float, default=1.0)
    parser.add_argument("--io", action="store_true",
                        help="also do the controller's traffic: take joint states and PolicyWeights, publish a zero "
                             "command per tick on its command topic (the I/O twin)")
    args, ros_args = parser.parse_known_args(argv)

    def build():
        node = make_bare_timer_node(args.rate, args.status_rate, io=args.io)
        gc.collect()  # as the controller's entry does after building its node
        gc.freeze()
        return node

    return run_node(build, "bench_io_twin" if args.io else "bench_bare_timer", ros_args or None)


if __name__ == "__main__":
    sys.exit(main())
