"""The graph of the fault scenarios, their report, and the checks they share (see :mod:`.` for the
scenarios themselves, shared by test/test_faults.py and bench/faults.py).

The graph is the sim graph of config/sim.yaml, each node started as `python -m warpd_ros.nodes.<node>`
with bringup's command line (warpd_ros.bringup.plan): warpd_controller always runs; warpd_sim and
warpd_planner only in the scenarios about them. A RobotStandIn in this process plays robot and
planner otherwise (fixed joint states at 100 Hz, latched task features, synthetic policies) and
records every command, ControllerStatus and diagnostic.

Each scenario starts from a known point (a fresh policy RUNning on good joint states), injects one
fault, removes it, and returns a FaultReport: named checks (survived = all of them hold) and the
figures of the reliability table. Times come from the commands, which the controller publishes at
1 kHz: under hold_mode zero_velocity a HOLD command is all zeros (at once: a stop is never
rate-limited), and a RUN command is exactly the running policy's action for the observation, which
the stand-in knows, once the controller's acceleration limit has brought the command there.
"""
from __future__ import annotations

import math
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from warpd_core.runtime.command_pipeline import Mode, inputs_ok
from warpd_ros.modes import status_mode
from warpd_ros.testing.policies import PIPELINE_PARAMETERS, expected_command, pipeline_from_parameters, \
    planner_like_policy
from warpd_ros.testing.processes import start_node, stop_process
from warpd_ros.testing.standin import CONTROLLER, NOMINAL, TASK, RobotStandIn, observation

SIM, PLANNER = "warpd_sim", "warpd_planner"
CONTROLLER_PARAMETERS = (*PIPELINE_PARAMETERS, "stale_timeout_s", "hold_mode")
LAYERS = (8, 64, 64, 3)  # the size and activation the WARPD planner generates for reach_around
PLANNER_ID = "fault_injector"

# Timing tolerances. A HOLD is due one tick (1 ms) after its cause; the margin covers that, the
# transport of the command (<1 ms) and the scheduling stalls of a loaded 2-core VM (tens of ms).
HOLD_MARGIN_S = 0.06
FAULT_S = 0.5  # how long a fault lasts once the controller holds
STEADY_S = 0.3  # commands checked after recovery: RUN must last, not flicker
START_TIMEOUT_S = 60.0  # a node process starting on a loaded machine (torch, MuJoCo imports)
WARMUP_S = 2.0  # discovery stalls of a few hundred ms happen in the first seconds after start
STALL_S = 0.05  # a stall of the test process this long can fake a late HOLD or stale joint states

# Missed control ticks a 100 swaps/s burst may add per second to what the same controller misses
# without swaps in the seconds around it, beyond counting noise. The budget is from BENCHMARKS.md,
# "Controller timing (1 kHz loop, policy swaps)" (bench/controller_timing.py): a bare 1 kHz rclpy timer
# on this machine missed 23 ticks in 30 s (0.77/s), the controller under 10 swaps/s 13 in 30 s; rounded
# up to 1/s. Rates are medians of 1-s windows: other processes' load spikes cost the controller tens to
# hundreds of ticks in one second now and then (measured here: 5-8 per 3 s, then 175 in the next 3 s),
# swaps or not; a median ignores a spike, a burst that costs ticks every second does not. The quiet
# reference is the quieter of the spans before and after the burst (load only ever adds misses), and
# missed ticks arrive like a Poisson count, so the check allows 3 standard deviations of it on top:
#   median(burst) <= quiet + budget + 3 * sqrt(quiet + budget)
# (quiet 2/s: up to 8/s; a burst costing 6 more ticks every second fails).
MISSED_TICKS_PER_S_BUDGET = 1.0
# A controller missing more ticks than this in some second of a scenario shows that other processes
# loaded the machine meanwhile (on its own it misses ~1/s): a failure then earns a second attempt.
LOADED_MISSED_PER_S = 5.0
BURST_RATE_HZ = 100.0
BURST_S = 3.0


class ScenarioError(RuntimeError):
    """A scenario could not reach its starting point (a node did not start, the controller never ran)."""


@dataclass
class Check:
    what: str
    ok: bool
    detail: str = ""
    # A speed goal (missed ticks against the BENCHMARKS.md budget), not a behaviour: the benchmark judges
    # it; the test does not, because on a shared 2-core machine other processes move it (see the brief's
    # rule: speed goals are checked by benchmarks, never by timed unit tests).
    budget: bool = False


@dataclass
class FaultReport:
    """What one fault did. Times in seconds; None where the event never came (or does not apply)."""

    fault: str
    checks: list[Check] = field(default_factory=list)
    time_to_hold_s: float | None = None
    time_to_recover_s: float | None = None
    commands_during_fault: int = 0
    nonfinite_commands: int = 0
    max_abs_command: float = float("nan")
    attempts: int = 1
    stand_in_stall_s: float = 0.0  # the longest stall of the test process during the scenario
    max_missed_per_s: int = 0  # the controller's worst second for missed ticks during the scenario
    notes: list[str] = field(default_factory=list)  # figures beyond the table's columns

    def check(self, what: str, ok, detail: str = "", budget: bool = False) -> bool:
        self.checks.append(Check(what, bool(ok), detail, budget))
        return bool(ok)

    @property
    def survived(self) -> bool:
        """Every behaviour check held (what test/test_faults.py asserts)."""
        behaviour = [c for c in self.checks if not c.budget]
        return bool(behaviour) and all(c.ok for c in behaviour)

    @property
    def within_budget(self) -> bool:
        """Every speed-budget figure met (what bench/faults.py reports)."""
        return all(c.ok for c in self.checks if c.budget)

    def explain(self) -> str:
        lines = [f"{self.fault}: {'survived' if self.survived else 'FAILED'} (attempt {self.attempts}; the test "
                 f"process stalled up to {self.stand_in_stall_s * 1e3:.0f} ms, the controller missed up to "
                 f"{self.max_missed_per_s} ticks in a second)"]
        lines += [f"  [{'ok' if c.ok else ('OVER BUDGET' if c.budget else 'FAIL')}] {c.what}"
                  + (f" ({c.detail})" if c.detail else "") for c in self.checks]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- graph
class FaultGraph:
    """The node processes of the scenarios and the stand-in that drives and watches them.

    The environment (loopback discovery, a private ROS_DOMAIN_ID) must be set by the caller
    (test/conftest.py, or bench/faults.py). Processes are started from bringup's plan of the sim
    graph, so they run with config/sim.yaml exactly as `warpd bringup sim` runs them.
    """

    def __init__(self, log_dir: Path):
        import rclpy
        from rclpy.context import Context

        from warpd_ros.bringup import plan

        self.log_dir = Path(log_dir)
        self.children = {child.name: child for child in plan("sim")}
        self.procs: dict[str, subprocess.Popen] = {}
        self._next_id = 1
        self.context = Context()
        rclpy.init(context=self.context)
        self.robot = None
        try:
            self.robot = RobotStandIn(self.context, NOMINAL, TASK, controller=CONTROLLER)
            self.start_controller()
            # what the controller really runs with (config/sim.yaml over its defaults), from itself
            self.controller_params = self.robot.get_parameters(CONTROLLER, CONTROLLER_PARAMETERS)
        except BaseException:
            self.close()
            raise
        if self.controller_params["hold_mode"] != "zero_velocity":
            self.close()
            raise ScenarioError("the scenarios tell HOLD by its zero command: config/sim.yaml must keep "
                                "warpd_controller.hold_mode zero_velocity")
        self.joints = tuple(self.controller_params["joint_names"])
        self.obs = observation(self.joints)
        self.pipeline = pipeline_from_parameters(self.controller_params)
        self.stale_timeout_s = float(self.controller_params["stale_timeout_s"])
        self.action_limit = float(self.controller_params["action_limit"])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        if self.robot is not None:
            self.robot.close()
        self.context.try_shutdown()

    # ---------------------------------------------------------------- processes
    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def log_tail(self, name: str, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path(name).read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self, name: str) -> float:
        """Start node `name` of the sim graph; the monotonic time it was started."""
        started = time.monotonic()
        self.procs[name] = start_node(self.children[name].argv, self.log_path(name))
        return started

    def kill(self, name: str) -> float:
        """SIGKILL (a crash: no clean shutdown, no DDS goodbye); the monotonic time of the kill."""
        proc = self.procs.pop(name)
        killed = time.monotonic()
        stop_process(proc, signal.SIGKILL)
        return killed

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            stop_process(proc)

    def alive(self, name: str) -> bool:
        return name in self.procs and self.procs[name].poll() is None

    def start_controller(self) -> float:
        started = self.start(CONTROLLER)
        if self.robot.wait_for_status(lambda s: True, START_TIMEOUT_S, since=started) is None:
            raise ScenarioError(f"no ControllerStatus within {START_TIMEOUT_S} s of starting the controller:\n"
                                + self.log_tail(CONTROLLER))
        time.sleep(WARMUP_S)
        return started

    # ---------------------------------------------------------------- policies
    def new_policy(self, valid_for_s: float = 0.0, weights_seed: int | None = None):
        """A fresh synthetic policy (next id) and the command the controller must publish for it.
        `weights_seed` fixes the weights (the same seed, the same action) under a new id."""
        policy_id = self.next_policy_id()
        policy = planner_like_policy(self.joints, policy_id, layers=LAYERS, planner=PLANNER_ID,
                                     weights_id=policy_id if weights_seed is None else 0,
                                     seed=0 if weights_seed is None else 1000 + weights_seed,
                                     valid_for_s=valid_for_s, action_scale=2.0)  # synthetic outputs are small
        return policy, self.command_of(policy)

    def next_policy_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def command_of(self, policy) -> np.ndarray:
        """The command the controller publishes for `policy` on the stand-in's observation (once settled)."""
        return expected_command(policy, self.obs, self.pipeline)

    def run_fresh_policy(self, valid_for_s: float = 0.0, weights_seed: int | None = None) -> tuple[int, np.ndarray]:
        """The starting point of a scenario: good joint states and task features, a new policy sent and
        RUNning with its exact command. (policy_id, its command); ScenarioError if it does not get there."""
        if not self.alive(CONTROLLER):
            self.procs.pop(CONTROLLER, None)
            self.start_controller()
        self.robot.feed = NOMINAL
        self.robot.send_task_features(TASK)  # a sim may have sent others since
        policy, expected = self.new_policy(valid_for_s, weights_seed)
        sent = self.robot.send_policy(policy)
        status = self.robot.wait_for_status(lambda s: status_mode(s) == Mode.RUN
                                            and s.active_policy_id == policy.policy_id, 10.0, since=sent)
        if status is None or self.robot.wait_command(lambda c: is_command(c, expected), sent, 5.0) is None:
            last = self.robot.status()
            raise ScenarioError(f"the controller did not RUN policy {policy.policy_id} before the fault "
                                f"(last status: mode {last and status_mode(last)}, "
                                f"{getattr(last, 'mode_reason', '')!r})\n" + self.log_tail(CONTROLLER))
        return policy.policy_id, expected


# ---------------------------------------------------------------------------------------------- commands
def is_hold(command) -> bool:
    return not command.data.any()


def is_command(command, expected, atol: float = 1e-6) -> bool:
    return command.data.shape == expected.shape and np.allclose(command.data, expected, rtol=0, atol=atol)


def settled(commands: list) -> list:
    """The commands equal to the one before them: the rate limit moves a command towards a new action a
    little every tick, so repeats are the commands that reached their policy's action."""
    return [c for prev, c in zip(commands, commands[1:]) if np.array_equal(prev.data, c.data)]


def missed_per_second(robot: RobotStandIn, t0: float, t1: float) -> list[int]:
    """Missed control ticks in each whole second of [t0, t1], from ControllerStatus.missed_ticks (a count
    since the controller started) in the statuses received at the seconds' bounds. A second across a
    controller restart (the count starts again at 0) is left out rather than counted negative."""
    with robot.lock:
        statuses = [(t, m.missed_ticks) for t, m in robot.statuses if t0 <= t <= t1 + 0.15]
    bounds = [next((n for t, n in statuses if t >= t0 + k), None) for k in range(int(round(t1 - t0)) + 1)]
    return [b - a for a, b in zip(bounds, bounds[1:]) if a is not None and b is not None and b >= a]


def wait_other_state(robot: RobotStandIn, after: float, timeout: float, predicate=lambda msg: True):
    """The receive time of the first joint state from another node (a sim) after `after` that satisfies
    `predicate`, or None."""
    deadline = time.monotonic() + timeout
    while True:
        with robot.lock:
            found = next((t for t, m in robot.other_states if t >= after and predicate(m)), None)
        if found is not None or time.monotonic() >= deadline:
            return found
        time.sleep(0.01)


def in_mode(mode: Mode):
    """A ControllerStatus predicate: the controller is in `mode`."""
    return lambda s: status_mode(s) == mode


def sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.monotonic()))


def level_of(value) -> int:
    """A DiagnosticStatus level as an int (rclpy gives the byte field and its constants as bytes)."""
    return ord(value) if isinstance(value, bytes) else int(value)


def fmt_ms(seconds) -> str:
    return "never" if seconds is None else f"{seconds * 1e3:.1f} ms"


# ---------------------------------------------------------------------------------------------- shared checks
def command_figures(graph: FaultGraph, report: FaultReport, t_start: float, t_fault: float,
                    t_recovered: float | None) -> None:
    """The table's figures and the two checks every fault shares: nothing non-finite, nothing above
    action_limit, over every command since the scenario began."""
    everything = graph.robot.commands_between(t_start)
    during = graph.robot.commands_between(t_fault, t_recovered if t_recovered is not None else math.inf)
    report.commands_during_fault = len(during)
    report.nonfinite_commands = sum(not np.isfinite(c.data).all() for c in everything)
    finite = [np.abs(c.data).max() for c in during if np.isfinite(c.data).all() and c.data.size]
    report.max_abs_command = float(max(finite)) if finite else float("nan")
    peak = max((np.abs(c.data).max() for c in everything if np.isfinite(c.data).all() and c.data.size), default=0.0)
    report.check("no non-finite command", report.nonfinite_commands == 0,
                 f"{report.nonfinite_commands} of {len(everything)}")
    report.check(f"every |command| <= action_limit {graph.action_limit:g}", peak <= graph.action_limit + 1e-9,
                 f"max {peak:.4g}")
    gaps, gap = np.diff([c.t for c in everything]), ""
    if gaps.size:  # for the reader of a failure: was the stream itself interrupted, and when?
        i = int(gaps.argmax())
        gap = f"; longest gap {gaps[i] * 1e3:.0f} ms, {everything[i].t - t_fault:+.3f} s from the onset"
    report.check("commands kept coming", len(everything) > 0 and len(during) > 0,
                 f"{len(everything)} in all, {len(during)} during the fault{gap}")


def check_only_holds(report: FaultReport, robot: RobotStandIn, t0: float, t1: float, when: str) -> None:
    """Check that every command received in [t0, t1) was a HOLD (zeros): "only zero commands `when`"."""
    held = robot.commands_between(t0, t1)
    moving = [c for c in held if not is_hold(c)]
    report.check(f"only zero commands {when}", held and not moving, f"{len(moving)} of {len(held)} non-zero")


def check_runs_again(report: FaultReport, robot: RobotStandIn, expected: np.ndarray, since: float, what: str,
                     timeout: float = 5.0) -> float | None:
    """Wait for the policy's command after `since`, time the recovery from `since`, check it came (`what`);
    the receive time of that command, or None."""
    t_run = robot.wait_command(lambda c: is_command(c, expected), since, timeout)
    report.time_to_recover_s = None if t_run is None else t_run - since
    report.check(what, t_run is not None, fmt_ms(report.time_to_recover_s))
    return t_run


def restart_until_run(graph: FaultGraph, report: FaultReport, node: str, held_since: float, what: str,
                      run_check: str) -> tuple[float, float | None]:
    """Restart `node` after the fault, check that only zero commands went out from `held_since` until
    the controller RUNs again on its output, and time that recovery. Returns (restart time, first RUN
    command time or None)."""
    robot = graph.robot
    t_restart = graph.start(node)
    t_run = robot.wait_command(lambda c: not is_hold(c), t_restart, START_TIMEOUT_S)
    check_only_holds(report, robot, held_since, t_run or math.inf, f"while no {what} runs")
    report.time_to_recover_s = None if t_run is None else t_run - t_restart
    report.check(run_check, t_run is not None,
                 fmt_ms(report.time_to_recover_s) + f" from the restart (includes the {what}'s start-up)")
    return t_restart, t_run


def hold_then_recover(graph: FaultGraph, report: FaultReport, *, t_start: float, t_onset: float,
                      hold_within: tuple[float, float], reason: str, expected: np.ndarray, clear,
                      onset_what: str, recover_timeout: float = 5.0) -> None:
    """The common course of a fault: HOLD within `hold_within` s of `t_onset` (zero commands, status
    and diagnostics naming `reason`), held for FAULT_S, then `clear()` and RUN again with the policy's
    exact command."""
    robot = graph.robot
    low, high = hold_within
    t_hold = robot.wait_command(is_hold, t_onset, high + 1.0)
    report.time_to_hold_s = None if t_hold is None else t_hold - t_onset
    report.check(f"HOLD (zero command) {low * 1e3:.0f}..{high * 1e3:.0f} ms after {onset_what}",
                 t_hold is not None and low <= report.time_to_hold_s <= high, fmt_ms(report.time_to_hold_s))
    since = t_hold if t_hold is not None else t_onset
    patience = 2.0 if t_hold is not None else 0.0  # no HOLD command: no HOLD status to wait for either
    status = robot.wait_for_status(in_mode(Mode.HOLD), patience, since=since)
    report.check(f"ControllerStatus HOLD, mode_reason {reason!r}", status is not None and status.mode_reason == reason,
                 "no HOLD status" if status is None else f"mode_reason {status.mode_reason!r}")
    level = "WARN" if inputs_ok(Mode.HOLD, reason) else "ERROR"
    diag = robot.wait_diagnostic(lambda d: f"HOLD: {reason}" in d.message, since, patience)
    report.check(f"diagnostics {level} 'HOLD: {reason}'",
                 diag is not None and level_of(diag.level) == level_of(getattr(diag, level)),
                 "none" if diag is None else f"level {level_of(diag.level)}: {diag.message!r}")
    sleep_until(since + FAULT_S)
    t_clear = time.monotonic()
    clear()
    check_only_holds(report, robot, since, t_clear, "while the fault lasts")
    t_run = check_runs_again(report, robot, expected, t_clear, "RUN again with the policy's command once the fault "
                             "is gone", recover_timeout)
    if t_run is not None:
        time.sleep(STEADY_S)
        after = robot.commands_between(t_run, t_run + STEADY_S)
        wrong = [c for c in after if not is_command(c, expected)]
        report.check(f"and keeps RUNning for {STEADY_S:g} s", after and not wrong,
                     f"{len(wrong)} of {len(after)} differ")
        status = robot.wait_for_status(lambda s: True, 2.0, since=t_run + 0.05)
        report.check("ControllerStatus RUN after recovery", status is not None and status_mode(status) == Mode.RUN,
                     "none" if status is None else f"mode {status_mode(status)}, {status.mode_reason!r}")
    command_figures(graph, report, t_start, t_onset, t_run)
