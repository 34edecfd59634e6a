"""The fault scenarios about joint states: stopped, stamped long ago, delayed, NaN, of other joints,
missing one."""
from __future__ import annotations

import time

from warpd_core.runtime.command_pipeline import REASON_STALE, Mode
from warpd_ros.modes import status_mode
from warpd_ros.testing.faults.graph import (FAULT_S, HOLD_MARGIN_S, NOMINAL, FaultGraph, FaultReport,
                                            check_only_holds, check_runs_again, command_figures, fmt_ms,
                                            hold_then_recover, is_hold, sleep_until)
from warpd_ros.testing.standin import JointStateFeed


# ---------------------------------------------------------------------------------------------- joint states
def joint_states_stop(graph: FaultGraph) -> FaultReport:
    """The joint state stream stops (driver dead, cable out): HOLD within stale_timeout_s of the
    last joint state, RUN again when states resume."""
    report = FaultReport("joint states stop")
    t_start = time.monotonic()
    _, expected = graph.run_fresh_policy()
    graph.robot.feed = None
    time.sleep(0.05)  # a publish in progress when the feed stopped has finished
    t_last = graph.robot.last_state_sent
    timeout = graph.stale_timeout_s
    hold_then_recover(graph, report, t_start=t_start, t_onset=t_last, reason=REASON_STALE, expected=expected,
                       hold_within=(timeout - 0.015, timeout + HOLD_MARGIN_S),
                       clear=lambda: setattr(graph.robot, "feed", NOMINAL),
                       onset_what="the last joint state")
    return report


def joint_states_old_stamps(graph: FaultGraph) -> FaultReport:
    """Joint states keep arriving on time but their stamps are 0.5 s old (a driver replaying a
    buffer, or its clock behind): the data is older than stale_timeout_s when it arrives, so HOLD
    within stale_timeout_s; RUN again when fresh states return."""
    report = FaultReport("joint states with old stamps")
    t_start = time.monotonic()
    _, expected = graph.run_fresh_policy()
    t_onset = time.monotonic()
    graph.robot.feed = JointStateFeed(NOMINAL.names, NOMINAL.q, NOMINAL.qd, stamp_lag_s=0.5)
    hold_then_recover(graph, report, t_start=t_start, t_onset=t_onset, reason=REASON_STALE, expected=expected,
                       hold_within=(0.0, graph.stale_timeout_s + HOLD_MARGIN_S),
                       clear=lambda: setattr(graph.robot, "feed", NOMINAL),
                       onset_what="the first old-stamped state")
    return report


def joint_states_delayed(graph: FaultGraph) -> FaultReport:
    """The link delays delivery by 0.3 s (> stale_timeout_s): nothing arrives for 0.3 s, then every
    state arrives 0.3 s after it was stamped. HOLD within stale_timeout_s of the last timely state,
    and stay in HOLD while the states are late; RUN again when delivery is timely."""
    report = FaultReport("joint states delayed 0.3 s")
    delay = 0.3
    t_start = time.monotonic()
    _, expected = graph.run_fresh_policy()
    graph.robot.feed = None
    time.sleep(0.02)
    t_last = graph.robot.last_state_sent
    timeout = graph.stale_timeout_s
    robot = graph.robot
    # the gap: HOLD within stale_timeout_s of the last timely state
    t_hold = robot.wait_command(is_hold, t_last, timeout + 3.0)
    report.time_to_hold_s = None if t_hold is None else t_hold - t_last
    report.check(f"HOLD (zero command) within {(timeout + HOLD_MARGIN_S) * 1e3:.0f} ms of the last timely state",
                 t_hold is not None and report.time_to_hold_s <= timeout + HOLD_MARGIN_S, fmt_ms(report.time_to_hold_s))
    sleep_until(t_last + delay)
    graph.robot.feed = JointStateFeed(NOMINAL.names, NOMINAL.q, NOMINAL.qd, stamp_lag_s=delay)
    t_late = time.monotonic()
    status = robot.wait_for_status(lambda s: True, 2.0, since=t_late + 0.2)
    report.check(f"ControllerStatus HOLD, mode_reason {REASON_STALE!r} while the states arrive late",
                 status is not None and status_mode(status) == Mode.HOLD and status.mode_reason == REASON_STALE,
                 "none" if status is None else f"mode {status_mode(status)}, {status.mode_reason!r}")
    sleep_until(t_late + FAULT_S)
    t_clear = time.monotonic()
    graph.robot.feed = NOMINAL
    check_only_holds(report, robot, t_late + 0.02, t_clear, "while the states arrive late")
    t_run = check_runs_again(report, robot, expected, t_clear, "RUN again with the policy's command once delivery "
                             "is timely")
    command_figures(graph, report, t_start, t_last, t_run)
    return report


def _invalid_joint_states(graph: FaultGraph, fault: str, feed: JointStateFeed, reason: str) -> FaultReport:
    report = FaultReport(fault)
    t_start = time.monotonic()
    _, expected = graph.run_fresh_policy()
    t_onset = time.monotonic()
    graph.robot.feed = feed
    hold_then_recover(graph, report, t_start=t_start, t_onset=t_onset, reason=reason, expected=expected,
                       hold_within=(0.0, 0.01 + HOLD_MARGIN_S),  # the next state (<=10 ms) is refused at once
                       clear=lambda: setattr(graph.robot, "feed", NOMINAL),
                       onset_what="the first bad joint state")
    return report


def joint_states_nan(graph: FaultGraph) -> FaultReport:
    """A joint state with NaN in a position and Inf in a velocity: HOLD at once, reason reported."""
    q, qd = list(NOMINAL.q), list(NOMINAL.qd)
    q[1], qd[2] = float("nan"), float("inf")
    return _invalid_joint_states(graph, "joint states carry NaN/Inf",
                                 JointStateFeed(NOMINAL.names, tuple(q), tuple(qd)), "joint_state_nonfinite")


def joint_states_wrong_names(graph: FaultGraph) -> FaultReport:
    """Joint states of another robot (no name matches): HOLD at once, reason reported."""
    return _invalid_joint_states(graph, "joint states with wrong joint names",
                                 JointStateFeed(("joint_a", "joint_b", "joint_c"), NOMINAL.q, NOMINAL.qd),
                                 "joint_names")


def joint_states_missing_joint(graph: FaultGraph) -> FaultReport:
    """Joint states that lack one of the controller's joints: HOLD at once, reason reported."""
    return _invalid_joint_states(graph, "joint states missing a joint",
                                 JointStateFeed(NOMINAL.names[:2], NOMINAL.q[:2], NOMINAL.qd[:2]), "joint_names")


