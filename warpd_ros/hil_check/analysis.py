"""What a hil-check recording says, in numbers: pure numpy over plain records, no ROS.

The recorder (recorder.py) turns what it received into :class:`Samples` at its boundary — receive
and send times as int64 ns arrays, joint positions in the controller's order, commands as float64
arrays, controller modes as :class:`Mode`, policies as runnable executors — so every number the
verdict judges can be computed, and unit-tested, from synthetic arrays.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from warpd_core.runtime.command_limits import JointLimits
from warpd_core.runtime.command_pipeline import POSITION, CommandPipeline, Mode
from warpd_ros.hil_check.stats import (blind_intervals, lost, percentiles, spans_mask, spans_overlap,
                                       state_to_command, stream_stats, usable_stamps)

SWAP_TOLERANCE = 1e-6  # |command - policy(state)| within this counts as "that policy's command"
SWAP_SEARCH_S = 0.5  # look this long after a policy's stamp for its first command
STATE_CANDIDATES = 4  # states received before a command that the controller may have used
DRIVING = (Mode.RUN, Mode.SHADOW)


@dataclass
class Stream:
    """One fast stream as received here, one entry per sample, in the order taken."""

    recv: np.ndarray  # int64 ns: the middleware's receive time
    sent: np.ndarray  # int64 ns: the publisher's send (source) time
    seq: list  # publication sequence numbers; None where the middleware gives none


@dataclass
class JointStates(Stream):
    stamp: np.ndarray  # int64 ns: header stamps (when the driver sampled the state)
    joints: list  # (q, qd) in the controller's joint order, or None for a state it cannot use


@dataclass
class Commands(Stream):
    data: list  # float64 arrays, as published


@dataclass(frozen=True)
class Status:
    """The fields of one ControllerStatus that hil-check judges, with its mode as a Mode."""

    recv: int
    mode: Mode
    mode_reason: str
    period_error_p99: float  # s
    period_error_max: float  # s
    missed_ticks: int  # since the controller started
    loop_rate_hz: float
    target_rate_hz: float


@dataclass(frozen=True)
class Policy:
    recv: int
    stamp: int  # ns, the PolicyWeights header stamp
    executor: object | None  # select_action(obs) -> action (an MLPPolicy); None: the controller refuses it too


@dataclass
class Samples:
    states: JointStates
    commands: Commands
    statuses: list = field(default_factory=list)  # Status, in arrival order
    policies: list = field(default_factory=list)  # Policy, in arrival order
    features: list = field(default_factory=list)  # (received ns, np.ndarray) of the task features


def analyse(samples: Samples, t0: int, t1: int, controller: dict, fault: dict) -> dict:
    """The measured numbers of the window [t0, t1] (ns) that `judge` compares with the thresholds."""
    window_s = (t1 - t0) * 1e-9
    out: dict = {"window_s": window_s, "controller": controller, "notes": []}
    st, cm = samples.states, samples.commands
    state_recv, cmd_recv = st.recv, cm.recv
    blind = blind_intervals([(st.sent, state_recv), (cm.sent, cmd_recv)])
    out["blind_spans"] = [((a - t0) * 1e-9, (b - a) * 1e-6) for a, b in blind]  # (start s after t0, length ms)
    blind_in_window = [(a, b) for a, b in blind if b >= t0 and a <= t1]
    if blind_in_window:
        total = sum(min(b, t1) - max(a, t0) for a, b in blind_in_window) * 1e-6
        worst = max(blind_in_window, key=lambda span: span[1] - span[0])
        out["notes"].append(f"hil-check itself was not scheduled for {total:.0f} ms in all (longest "
                            f"{(worst[1] - worst[0]) * 1e-6:.0f} ms at +{(worst[0] - t0) * 1e-9:.1f} s): states and "
                            "commands, sent on time, arrived late at once; that time is left out of the stream checks")
    in_window = (state_recv >= t0) & (state_recv <= t1) & ~spans_mask(state_recv, blind)

    # 1. the streams
    for key, stream in (("joint_states", st), ("commands", cm)):
        out[key] = stream_stats(stream.recv, t0, t1, blind)
        out[key]["lost_here"] = lost(s for r, s in zip(stream.recv.tolist(), stream.seq) if t0 <= r <= t1)
    for key in ("joint_states", "commands"):
        if out[key]["lost_here"]:
            out["notes"].append(f"{out[key]['lost_here']} {key.replace('_', ' ')} were published but not received "
                                f"by hil-check (it was too slow): rates and gaps may look worse than they are")

    # 2. state -> command latency
    stamps_ok = usable_stamps(state_recv[in_window], st.stamp[in_window])
    if not stamps_ok and in_window.any():
        out["notes"].append("joint-state stamps are not on this machine's clock (unset, or clocks not synchronised): "
                            "latency is measured from when each state was received here")
    stamp = st.stamp if stamps_ok else state_recv
    lat = state_to_command(state_recv[in_window], stamp[in_window], cmd_recv)
    seen = ~spans_mask(lat["command_recv"], blind)
    out["state_to_command_ms"] = percentiles(lat["latency"][seen])
    out["state_age_ms"] = percentiles(lat["age"][seen])
    out["state_reaction_ms"] = percentiles(lat["reaction"][seen])
    out["stamps_usable"] = stamps_ok

    # 3. loop timing: the controller's own windows, and command intervals here
    out.update(loop_timing(samples.statuses, t0, t1))
    nominal_ns = 1e9 / out.get("target_rate_hz", controller.get("control_rate_hz", 1000.0))
    received = cmd_recv[(cmd_recv >= t0) & (cmd_recv <= t1)]
    intervals = np.diff(received)[~spans_overlap(received[:-1], received[1:], blind)]
    out["command_interval_error_us"] = percentiles(np.abs(intervals - nominal_ns) * 1e-3)

    # 4. swaps
    out["swaps"] = swap_latencies(samples, t0, t1, controller, blind)

    # 5. HOLD
    positions = None
    if controller.get("command_interface") == POSITION:  # a HOLD holds the last measured position
        positions = [None if j is None else np.asarray(j[0], dtype=np.float64) for j in st.joints]
    out["hold"] = hold_reaction(fault, state_recv, cm.data, cmd_recv, blind, positions) if fault.get("tested") else \
        {"tested": False, "why": fault.get("why", "not tested")}
    return out


def loop_timing(statuses: list, t0: int, t1: int) -> dict:
    """The controller's own timing and modes from the status reports received in [t0, t1] ({} when none)."""
    window = [m for m in statuses if t0 <= m.recv <= t1]
    before = [m for m in statuses if m.recv < t0]
    out: dict = {"status_reports": len(window)}
    if not window:
        return out
    p99s = np.array([m.period_error_p99 for m in window]) * 1e6
    base = before[-1] if before else window[0]
    out["period_error_p99_us"] = {"worst_window": float(p99s.max()), "median_window": float(np.median(p99s)),
                                  "max_us": float(max(m.period_error_max for m in window) * 1e6),
                                  "windows": p99s.tolist()}
    out["missed_ticks"] = int(window[-1].missed_ticks - base.missed_ticks)
    out["missed_ticks_per_s"] = out["missed_ticks"] / ((t1 - t0) * 1e-9)
    out["loop_rate_hz_min"] = float(min(m.loop_rate_hz for m in window))
    out["target_rate_hz"] = float(window[-1].target_rate_hz)
    out["run_share"] = sum(m.mode in DRIVING for m in window) / len(window)
    out["hold_reasons"] = sorted({m.mode_reason for m in window if m.mode == Mode.HOLD})
    return out


def _features_at(features: list, t: int):
    value = None
    for recv, values in features:
        if recv <= t:
            value = values
        else:
            break
    if value is None and features:
        value = features[0][1]  # latched: the graph's features were there before this process subscribed
    return value


def swap_latencies(samples: Samples, t0: int, t1: int, controller: dict, blind=()) -> dict:
    """Stamp -> first command of the new policy, for every policy stamped within [t0, t1].

    A command counts as the new policy's when it equals (within SWAP_TOLERANCE, after the
    controller's command pipeline) what the new policy computes for one of the last
    STATE_CANDIDATES states received before the command (or the one after: the controller may have
    seen it first), while the previous policy computes something else for every one of them.
    """
    result = {"policies_seen": 0, "measured": 0, "ambiguous": 0, "not_found": 0, "blind": 0, "latencies_ms": [],
              "receive_to_switch_ms": [], "switches": []}
    if controller.get("swap_mode") == "shadow":
        result["why"] = "the controller is in swap_mode shadow (new policies do not drive until promoted)"
        return result
    states, commands = samples.states, samples.commands
    state_recv, cmd_recv = states.recv, commands.recv
    policies = sorted(samples.policies, key=lambda p: p.recv)
    dt = 1.0 / float(controller.get("control_rate_hz", 1000.0))
    position = controller.get("command_interface") == POSITION
    if position:  # targets: inside the position limits, at most velocity_limit * dt from the previous command
        limits = JointLimits.create(controller["joint_names"], *(controller.get(k, inf) for k, inf in (
            ("position_lower", -np.inf), ("position_upper", np.inf), ("velocity_limit", np.inf))))
        pipeline = CommandPipeline(limits, float(controller["action_limit"]), dt, command_interface=POSITION)
    else:  # no joint limits configured here: the pipeline is the controller's clip to +-action_limit
        pipeline = CommandPipeline.for_joints(controller["joint_names"], float(controller["action_limit"]), dt=dt)
    obs_cache: dict[int, tuple | None] = {}

    def obs_of(i: int):
        if i not in obs_cache:
            features = _features_at(samples.features, int(state_recv[i]))
            joints = states.joints[i]
            obs_cache[i] = None if joints is None or features is None else \
                (joints[0], np.concatenate((joints[0], joints[1], features)))
        return obs_cache[i]

    def actions(executor, candidates, previous_command=None):
        outs = []
        for i in candidates:
            obs = obs_of(i)
            if obs is None:
                continue
            q, x = obs
            try:
                action = executor.select_action(x)
            except ValueError:
                continue
            if np.shape(action) != (pipeline.n_joints,):
                outs.append(np.asarray(action))  # not this controller's joints: the shape check skips it
                continue
            command = pipeline.policy_command(action, q, previous=previous_command)
            if command is not None:  # a non-finite action is never published
                outs.append(command)
        return outs

    previous = None
    for k, policy in enumerate(policies):
        executor = policy.executor
        if executor is None:  # the controller refuses it too; not a swap
            continue
        stamp, recv = policy.stamp, policy.recv
        old, previous = previous, executor
        if not (t0 <= stamp <= t1) or old is None:
            continue
        result["policies_seen"] += 1
        next_stamp = policies[k + 1].stamp if k + 1 < len(policies) else None
        end = stamp + int(SWAP_SEARCH_S * 1e9)
        if next_stamp is not None:
            end = min(end, next_stamp)
        first = int(np.searchsorted(cmd_recv, stamp, side="left"))
        found, ambiguous = None, False
        for j in range(first, cmd_recv.size):
            if cmd_recv[j] > end:
                break
            command = np.asarray(commands.data[j], dtype=np.float64)
            s = int(np.searchsorted(state_recv, cmd_recv[j], side="right"))
            candidates = range(max(0, s - STATE_CANDIDATES), min(state_recv.size, s + 1))
            before = np.asarray(commands.data[j - 1], dtype=np.float64) if position and j > 0 else None
            new_actions, old_actions = actions(executor, candidates, before), actions(old, candidates, before)
            if not new_actions or any(a.shape != command.shape for a in new_actions):
                continue
            matches_new = any(np.max(np.abs(a - command)) <= SWAP_TOLERANCE for a in new_actions)
            matches_old = any(np.max(np.abs(a - command)) <= SWAP_TOLERANCE for a in old_actions)
            if matches_new and matches_old:
                ambiguous = True
                continue
            if matches_new:
                found = int(cmd_recv[j])
                break
        if found is None:
            result["ambiguous" if ambiguous else "not_found"] += 1
            continue
        if spans_overlap(np.array([stamp]), np.array([found]), blind)[0]:
            result["blind"] += 1  # hil-check stalled meanwhile: the latency would be its own
            continue
        result["measured"] += 1
        result["latencies_ms"].append((found - stamp) * 1e-6)
        result["receive_to_switch_ms"].append((found - recv) * 1e-6)
        result["switches"].append((stamp, found))  # ns: the policy's stamp, its first command received here
    result["stats_ms"] = percentiles(result["latencies_ms"])
    return result


def policy_age_at_commands(switches, cmd_recv: np.ndarray, t0: int, t1: int) -> np.ndarray:
    """Plan-to-command age, ms: for each command received in [t0, t1] after the first measured swap, the
    time since the stamp of the policy that computed it (the latest one whose first command came at or
    before it). What a robot runs is this old; an unmeasured swap counts toward its predecessor's age."""
    if not switches:
        return np.zeros(0)
    switches = sorted(switches, key=lambda s: s[1])
    found = np.array([f for _, f in switches], dtype=np.int64)
    stamps = np.array([s for s, _ in switches], dtype=np.int64)
    recv = cmd_recv[(cmd_recv >= max(t0, int(found[0]))) & (cmd_recv <= t1)]
    which = np.searchsorted(found, recv, side="right") - 1
    return (recv - stamps[which]) * 1e-6


def hold_reaction(fault: dict, state_recv: np.ndarray, commands: list, cmd_recv: np.ndarray, blind=(),
                  positions: list | None = None) -> dict:
    """Last joint state before the cut -> first HOLD command; and no motion until states return.

    `commands` are the commands' values (arrays), aligned with their receive times `cmd_recv`. The HOLD
    command of a velocity interface is all zeros; of a position interface (`positions`: each joint
    state's positions, aligned with `state_recv`) the position of the last state before the cut, and
    "motion" is any command other than the one it holds.
    """
    out = {"tested": True}
    before = state_recv[state_recv <= fault["restore_ns"]]
    if before.size == 0:
        return {**out, "why": "no joint states before the cut"}
    last_state = int(before.max())
    if last_state < fault["cut_ns"] - int(0.05e9):
        return {**out, "why": "joint states had already stopped before the cut"}
    out["last_state_after_cut_ms"] = (last_state - fault["cut_ns"]) * 1e-6
    held = np.zeros_like(np.asarray(commands[0], dtype=np.float64)) if commands else None
    if positions is not None:
        held = positions[int(np.flatnonzero(state_recv == last_state)[0])]

    def is_hold(c) -> bool:
        c = np.asarray(c, dtype=np.float64)
        return held is not None and c.shape == held.shape and bool(np.all(np.abs(c - held) <= 1e-9))

    lead = [np.asarray(c) for t, c in zip(cmd_recv, commands) if last_state - int(0.1e9) <= t <= last_state]
    out["driving_before_cut"] = bool(lead) and not all(is_hold(c) for c in lead)
    if not out["driving_before_cut"]:
        return {**out, "why": "the controller was not driving before the cut (its commands were already the HOLD "
                              "command)"}
    # Commands received before the restore request were computed without new states: no state can be
    # published while drop_rate is 1 (a state still in a delay line is covered by `last_state`).
    end = fault["restore_ns"]
    out["outage_s"] = (end - last_state) * 1e-9
    hold = None
    moving_after_hold = 0
    for t, c in zip(cmd_recv, commands):
        if t <= last_state or t >= end:
            continue
        holding = is_hold(c)
        if hold is None and holding:
            hold = int(t)
        elif hold is not None and not holding:
            moving_after_hold += 1
    resumed = state_recv[state_recv > end]
    out["states_resumed"] = bool(resumed.size)
    if hold is None:
        return {**out, "why": f"no HOLD command ({'the last measured position' if positions is not None else 'zeros'}) "
                              f"during the {out['outage_s']:.2f} s without joint states"}
    out["reaction_s"] = (hold - last_state) * 1e-9
    out["moving_after_hold"] = moving_after_hold
    if spans_overlap(np.array([last_state]), np.array([hold]), blind)[0]:
        return {**out, "tested": False, "why": "not measured: hil-check itself stalled during the fault test; rerun"}
    return out
