"""hil-check's analysis and verdict on synthetic recordings, without ROS.

A small simulated graph (a 500 Hz driver, a 1 kHz controller running one policy and then
swapping to another, 10 Hz status reports, a fault test that cuts the states for a second) is
written straight into `analysis.Samples`; each fault injected into it must fail exactly the checks
that judge that fault, and the nominal recording must pass every check.
"""
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from conftest import REPO
from warpd_core.runtime.command_pipeline import Mode
from warpd_ros.hil_check.analysis import (Commands, JointStates, Policy, Samples, Status, analyse,
                                          hold_reaction, policy_age_at_commands, swap_latencies)
from warpd_ros.hil_check.report import FAIL, PASS, judge
from warpd_ros.hil_check.thresholds import THRESHOLDS, load_thresholds

pytestmark = pytest.mark.once  # hil-check's analysis of recorded samples: no ROS node involved

S = 1_000_000_000
MS = 1_000_000
JOINTS = ["shoulder", "elbow"]
LIMIT = 1.5
FEATURES = np.array([0.25])
T0, T1 = 1 * S, 3 * S  # the measurement window
CUT, RESTORE = int(3.3 * S), int(4.3 * S)  # the fault test, after the window as in a real run
THRESHOLD_VALUES = load_thresholds(REPO / "config" / "hil.yaml")


@dataclass
class Gain:
    """A policy: action = gain * q + offset, on the observation (q, qd, features)."""

    gain: float
    offset: tuple = (0.0, 0.0)

    def select_action(self, obs):
        return self.gain * np.asarray(obs[:2]) + np.asarray(self.offset)


OLD = Gain(0.5)
NEW = Gain(-0.5, (2.0, 0.0))  # its first joint asks for ~1.85, beyond action_limit: the command is clipped
SWAP_STAMP = 2 * S
SWITCH_DELAY = 5 * MS  # the controller drives with NEW from SWAP_STAMP + this


def recording(state_delay=0.5 * MS, state_every=1, state_gap=None, command_gap=None, mode=Mode.RUN,
              period_error_p99=1e-4, missed_per_report=0, swaps=True, stale_timeout=0.1 * S, moves_blind=False):
    """Samples of the simulated graph; each keyword injects one fault."""
    sent = np.arange(0, 5 * S, 2 * MS, dtype=np.int64)[::state_every]  # the driver samples at 500 Hz
    keep = (sent < CUT) | (sent >= RESTORE)
    if state_gap is not None:
        keep &= (sent < state_gap[0]) | (sent >= state_gap[1])
    sent = sent[keep]
    recv = sent + int(state_delay)
    q = np.stack([0.3 + 0.1 * np.sin(sent * 1e-9), np.full(sent.size, -0.2)], axis=1)
    joints = [(qi, np.zeros(2)) for qi in q]
    states = JointStates(recv, sent, list(range(sent.size)), sent.copy(), joints)

    cmd_sent = np.arange(MS // 2, 5 * S, MS, dtype=np.int64)  # the controller ticks at 1 kHz
    if command_gap is not None:
        cmd_sent = cmd_sent[(cmd_sent < command_gap[0]) | (cmd_sent >= command_gap[1])]
    data = []
    for t in cmd_sent:
        i = int(np.searchsorted(recv, t, side="right")) - 1
        if i < 0 or (t - recv[i] > stale_timeout and not moves_blind):
            data.append(np.zeros(2))  # HOLD: no or stale joint states
            continue
        policy = NEW if swaps and t >= SWAP_STAMP + SWITCH_DELAY else OLD
        action = policy.select_action(np.concatenate((q[i], np.zeros(2), FEATURES)))
        data.append(np.clip(action, -LIMIT, LIMIT))
    commands = Commands(cmd_sent + 200_000, cmd_sent, list(range(cmd_sent.size)), data)

    statuses = [Status(int(t), mode, "joint states stale" if mode == Mode.HOLD else "", period_error_p99,
                       2 * period_error_p99, k * missed_per_report, 1000.0, 1000.0)
                for k, t in enumerate(range(50 * MS, 5 * S, 100 * MS))]
    policies = [Policy(int(0.5 * S) + MS, int(0.5 * S), OLD), Policy(SWAP_STAMP + MS, SWAP_STAMP, NEW)]
    return Samples(states, commands, statuses, policies, [(0, FEATURES)])


CONTROLLER = {"joint_names": JOINTS, "action_limit": LIMIT, "control_rate_hz": 1000.0, "swap_mode": "replace"}
FAULT = {"tested": True, "why": "", "cut_ns": CUT, "cut_done_ns": CUT + MS, "restore_ns": RESTORE,
         "restored_ns": RESTORE + MS, "end_ns": RESTORE + S // 2}


def verdict(samples, fault=FAULT, controller=CONTROLLER):
    measured = analyse(samples, T0, T1, controller, fault)
    return measured, {r["check"]: r for r in judge(measured, THRESHOLD_VALUES)}


def failed(rows):
    return {name for name, r in rows.items() if r["result"] == FAIL}


def test_the_nominal_recording_passes_every_check():
    m, rows = verdict(recording())
    assert [r["result"] for r in rows.values()] == [PASS] * len(THRESHOLDS), rows
    assert m["joint_states"]["rate_hz"] == pytest.approx(500, rel=0.01)
    assert m["joint_states"]["max_gap_ms"] == pytest.approx(2.0)
    assert m["commands"]["rate_hz"] == pytest.approx(1000, rel=0.01) and m["commands"]["lost_here"] == 0
    assert m["stamps_usable"] and m["state_age_ms"]["p99"] == pytest.approx(0.5)
    assert m["run_share"] == 1.0 and m["missed_ticks"] == 0 and m["hold_reasons"] == []
    swaps = m["swaps"]
    assert (swaps["policies_seen"], swaps["measured"]) == (1, 1)
    # the first tick with NEW (ticks fall on x.5 ms), then 0.2 ms on the wire
    assert swaps["latencies_ms"] == [pytest.approx(SWITCH_DELAY * 1e-6 + 0.5 + 0.2)]
    hold = m["hold"]
    assert hold["reaction_s"] == pytest.approx(0.1, abs=0.003) and hold["moving_after_hold"] == 0
    assert hold["driving_before_cut"] and hold["states_resumed"]


@pytest.mark.parametrize("fault, checks", [
    ({"state_gap": (int(1.5 * S), int(1.6 * S))}, {"joint-state max gap"}),
    ({"state_every": 2}, {"joint-state rate"}),  # a lossy link: 250 Hz, every gap 4 ms
    ({"state_delay": 60 * MS}, {"state -> command latency p99"}),
    # a silent controller: the states meanwhile wait for a command too
    ({"command_gap": (int(2.5 * S), int(2.6 * S))},
     {"command max gap (received here)", "state -> command latency p99"}),
    ({"period_error_p99": 0.05}, {"loop period error p99 (controller)"}),
    ({"missed_per_report": 50}, {"missed ticks (controller)"}),
    ({"swaps": False}, {"policy swap latency p99"}),
    ({"stale_timeout": 0.2 * S}, {"HOLD reaction (fault test)"}),
    ({"moves_blind": True}, {"HOLD reaction (fault test)"}),
])
def test_each_fault_fails_exactly_its_checks(fault, checks):
    _, rows = verdict(recording(**fault))
    assert failed(rows) == checks, {name: rows[name]["why"] for name in failed(rows)}
    assert all(rows[name]["why"] for name in checks)


def test_a_slow_link_is_blamed_on_the_state_age():
    _, rows = verdict(recording(state_delay=60 * MS))
    why = rows["state -> command latency p99"]["why"]
    assert "ms old when it arrives" in why and "60.0 ms old" in why


def test_a_holding_controller_fails_the_run_share_with_its_reason():
    m, rows = verdict(recording(mode=Mode.HOLD))
    assert m["run_share"] == 0.0 and m["hold_reasons"] == ["joint states stale"]
    row = rows["controller driving (RUN/SHADOW)"]
    assert row["result"] == FAIL and "joint states stale" in row["why"]
    assert verdict(recording(mode=Mode.SHADOW))[0]["run_share"] == 1.0  # SHADOW drives too


def test_swaps_compare_with_the_controllers_clipped_command():
    samples = recording()
    swaps = swap_latencies(samples, T0, T1, CONTROLLER)
    assert swaps["measured"] == 1
    # with a larger action_limit the controller would have sent NEW's unclipped ~1.85: no match
    wider = swap_latencies(samples, T0, T1, {**CONTROLLER, "action_limit": 3.0})
    assert (wider["measured"], wider["not_found"]) == (0, 1)
    # a shadow controller does not drive new policies: not measured, and said why
    shadow = swap_latencies(samples, T0, T1, {**CONTROLLER, "swap_mode": "shadow"})
    assert shadow["policies_seen"] == 0 and "shadow" in shadow["why"]


def test_plan_to_command_age_counts_from_the_stamp_of_the_policy_that_computed_each_command():
    samples = recording()
    swaps = swap_latencies(samples, T0, T1, CONTROLLER)
    (stamp, found), = swaps["switches"]
    assert (found - stamp) * 1e-6 == pytest.approx(swaps["latencies_ms"][0])
    cmd = samples.commands.recv
    age = policy_age_at_commands(swaps["switches"], cmd, T0, T1)
    after = cmd[(cmd >= found) & (cmd <= T1)]
    assert age.size == after.size and np.allclose(age, (after - stamp) * 1e-6)
    # a later switch restarts the age; commands before the first measured switch are not counted
    later = (found + 100 * MS, found + 105 * MS)
    age2 = policy_age_at_commands([later, (stamp, found)], cmd, T0, T1)
    expected = np.where(after >= later[1], after - later[0], after - stamp) * 1e-6
    assert np.allclose(age2, expected)
    assert policy_age_at_commands([], cmd, T0, T1).size == 0


def test_a_non_finite_action_is_never_taken_for_a_command():
    samples = recording()
    nan = Gain(float("nan"))
    samples.policies[1] = Policy(SWAP_STAMP + MS, SWAP_STAMP, nan)
    swaps = swap_latencies(samples, T0, T1, CONTROLLER)
    assert (swaps["policies_seen"], swaps["measured"], swaps["not_found"]) == (1, 0, 1)


def test_a_refused_policy_is_not_a_swap():
    samples = recording()
    samples.policies[1] = Policy(SWAP_STAMP + MS, SWAP_STAMP, None)
    assert swap_latencies(samples, T0, T1, CONTROLLER)["policies_seen"] == 0


def test_hold_reaction_needs_a_driving_controller_and_states_before_the_cut():
    samples = recording()
    st, cm = samples.states, samples.commands
    zeros = [np.zeros(2)] * len(cm.data)
    assert "not driving" in hold_reaction(FAULT, st.recv, zeros, cm.recv)["why"]
    early = {**FAULT, "cut_ns": CUT + S // 2, "restore_ns": RESTORE}
    assert "already stopped" in hold_reaction(early, st.recv, cm.data, cm.recv)["why"]
    _, rows = verdict(samples, fault={"tested": False, "why": "not tested (needs the emulator)"})
    assert rows["HOLD reaction (fault test)"]["result"] == "SKIP"


def test_the_analysis_imports_without_ros():
    """analysis, stats, report and thresholds in a process where importing any ROS module fails."""
    script = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("rclpy", "rosidl_runtime_py", "sensor_msgs", "std_msgs", "builtin_interfaces") \\
                or name.startswith("warpd_ros.msg"):
            raise ImportError("ROS module imported: " + name)
sys.meta_path.insert(0, Block())
import warpd_ros.hil_check.analysis, warpd_ros.hil_check.report, warpd_ros.hil_check.thresholds
import warpd_ros.hil_check
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


POSITION_CONTROLLER = {**CONTROLLER, "command_interface": "position", "position_lower": [-1.0],
                       "position_upper": [1.0], "velocity_limit": [2.0]}


def position_recording():
    """The simulated graph with a position interface: targets inside [-1, 1] moving at most 2 rad/s * 1 ms per
    tick from the previous command; HOLD holds the position of the last state, never zeros."""
    from warpd_core.runtime.command_limits import JointLimits, limit_position_values

    samples = recording()
    st, cm = samples.states, samples.commands
    rows = JointLimits.create(JOINTS, -1.0, 1.0, 2.0).rows
    data, previous, held = [], None, None
    for t in cm.sent:
        i = int(np.searchsorted(st.recv, t, side="right")) - 1
        q = st.joints[i][0]
        if t - st.recv[i] > 0.1 * S:  # stale: hold where the joints were
            held = q if held is None else held
            data.append(np.array(held))
        else:
            held = None
            policy = NEW if t >= SWAP_STAMP + SWITCH_DELAY else OLD
            target = policy.select_action(np.concatenate((q, np.zeros(2), FEATURES)))
            data.append(np.array(limit_position_values(list(target), list(q), previous, rows, 1e-3)))
        previous = list(data[-1])
    samples.commands = type(cm)(cm.recv, cm.sent, cm.seq, data)
    return samples


def test_a_position_interface_holds_the_last_position_and_its_swaps_are_found():
    samples = position_recording()
    measured, rows = verdict(samples, controller=POSITION_CONTROLLER)
    hold = measured["hold"]
    assert hold["tested"] and hold["driving_before_cut"] and hold["moving_after_hold"] == 0, hold
    assert 0.1 <= hold["reaction_s"] <= 0.102
    assert rows["HOLD reaction (fault test)"]["result"] != FAIL
    assert measured["swaps"]["measured"] == 1 and 0 < measured["swaps"]["latencies_ms"][0] <= 10
    # judged as a velocity interface, that HOLD (no zeros) is no HOLD at all
    velocity = analyse(samples, T0, T1, CONTROLLER, FAULT)
    assert "no HOLD command (zeros)" in velocity["hold"]["why"]
