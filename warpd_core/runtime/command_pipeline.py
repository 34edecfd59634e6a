"""What the controller publishes each tick, as one pure function: clip -> limits -> finite -> hold.

The controller node, hil-check's analysis, the fault scenarios and the benchmarks all need the same
answer to "given this action, what command goes to the robot?". It lives here once, without ROS, so
every one of them calls it instead of re-deriving a clip and hoping the details agree:

1. **clip** the policy's action to +-action_limit (the live, operator-tunable bound);
2. **command limits** per joint (:func:`limit_command`: velocity, position envelope, rate);
3. **finite check**: a non-finite action is never published; that tick falls back to
4. **hold**: :func:`hold_command` (zeros, or the last good command for a short while), still inside
   the position/velocity envelope at the measured position.

:class:`Mode` is the one vocabulary of controller modes; ``warpd_ros.modes`` maps it to the
``ControllerStatus.MODE_*`` codes on the wire, once.

Two command interfaces, as ros2_control's forward command controllers name them:
- **velocity** (above): an action is joint velocities; HOLD is zero velocity (or the last command briefly).
- **position**: an action is joint position targets; step 1 does not apply (action_limit is a velocity),
  step 2 is :func:`limit_position_values` (targets inside the position limits, moving no faster than the
  velocity limit), and HOLD is the *measured position at the moment the HOLD began* (`hold_position`,
  latched by the caller) — never zeros, which a position controller would execute as "go to 0 rad".
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from warpd_core.runtime.command_limits import JointLimits, limit_command, limit_position_values, limit_values

_INF = math.inf


class Mode(str, enum.Enum):
    """Controller modes. A str Enum, so logs and diagnostics print "HOLD", "RUN", "SHADOW"."""

    HOLD = "HOLD"      # no valid policy, policy expired, or joint states stale/invalid: the hold command
    RUN = "RUN"        # the active policy drives the robot
    SHADOW = "SHADOW"  # the active policy drives; a candidate runs beside it, unactuated

    def __str__(self) -> str:
        return self.value


HOLD_ZERO_VELOCITY, HOLD_LAST_COMMAND = "zero_velocity", "last_command"
HOLD_MODES = (HOLD_ZERO_VELOCITY, HOLD_LAST_COMMAND)
VELOCITY, POSITION = "velocity", "position"
COMMAND_INTERFACES = (VELOCITY, POSITION)

REASON_NO_POLICY = "no valid policy"
REASON_EXPIRED = "policy expired"
REASON_STALE = "joint states stale"


def inputs_ok(mode: Mode, reason: str) -> bool:
    """False when the controller held because of its inputs (stale or invalid joint states / task
    features), True when it runs or holds because of the policy (none, expired)."""
    return mode != Mode.HOLD or reason in (REASON_NO_POLICY, REASON_EXPIRED)


def hold_command(hold_mode: str, n_joints: int, last_command: np.ndarray | None,
                 last_command_ns: int | None, now_ns: int, stale_timeout_s: float,
                 inputs_ok: bool = True) -> np.ndarray:
    """The joint-velocity command published in HOLD.

    zero_velocity: zeros. last_command: the last command computed by a policy, repeated for at
    most stale_timeout_s after it was computed, and only while the inputs are fine (`inputs_ok`:
    the HOLD is about the policy — none, expired, one non-finite action — not about stale or
    invalid joint states); zeros otherwise. A velocity command is motion, not a hold: a brief gap
    (a late successor, one bad action) is bridged smoothly, but the robot is never kept moving
    blind — from the moment joint states are found stale or invalid the command is zero, so no
    command outlives the last good joint state by more than stale_timeout_s.
    """
    if (hold_mode == HOLD_LAST_COMMAND and inputs_ok and last_command is not None
            and last_command_ns is not None and now_ns - last_command_ns <= stale_timeout_s * 1e9):
        return last_command
    return np.zeros(n_joints)


class TickCommand(NamedTuple):
    """One tick's outcome: the command to publish, and the policy's command when the policy drove it
    (None when the tick held), which the caller remembers for hold_mode=last_command. Immutable (a
    NamedTuple: built every tick, ~4x cheaper than a frozen dataclass)."""

    command: np.ndarray
    policy_command: np.ndarray | None


@dataclass(frozen=True)
class CommandPipeline:
    """The controller's settings that turn an action into a command. Immutable: a parameter change
    (action_limit, control rate) makes a new one with :meth:`with_changes`; a tick never sees a mix."""

    limits: JointLimits
    action_limit: float
    dt: float  # the control period (s): the rate limit and the one-period position envelope use it
    hold_mode: str = HOLD_ZERO_VELOCITY  # velocity interface only; position always holds where the joint is
    stale_timeout_s: float = 0.1
    command_interface: str = VELOCITY

    def __post_init__(self):
        if self.command_interface not in COMMAND_INTERFACES:
            raise ValueError(f"command_interface must be one of {COMMAND_INTERFACES}, got {self.command_interface!r}")
        if not (math.isfinite(self.action_limit) and self.action_limit >= 0):
            raise ValueError(f"action_limit must be finite and >= 0, got {self.action_limit}")
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt must be > 0, got {self.dt}")
        if self.hold_mode not in HOLD_MODES:
            raise ValueError(f"hold_mode must be one of {HOLD_MODES}, got {self.hold_mode!r}")

    @classmethod
    def for_joints(cls, joint_names, action_limit: float, dt: float = 1e-3, **kwargs) -> "CommandPipeline":
        """A pipeline with no joint limits beyond the clip: what an unconfigured controller runs."""
        return cls(JointLimits.create(joint_names), float(action_limit), float(dt), **kwargs)

    def with_changes(self, **changes) -> "CommandPipeline":
        return replace(self, **changes)

    @property
    def n_joints(self) -> int:
        return len(self.limits.joint_names)

    def policy_command(self, action, q, previous) -> np.ndarray | None:
        """clip -> limits of a policy's action at positions `q` after the command `previous` (None: no
        rate limit); None when the action is missing or not finite (the tick must hold)."""
        values = self._policy_values(action, q, previous)
        return None if values is None else np.array(values)

    def _policy_values(self, action, q, previous) -> list | None:
        """:meth:`policy_command` as a list of finite floats, in one pass over Python floats: this runs
        every control tick, and for a handful of joints a loop is several times cheaper than numpy calls
        (the finite check, the clip and the limits each cost ~1-2 µs as ufuncs on 3 elements)."""
        if action is None:
            return None
        values = np.asarray(action, dtype=np.float64).reshape(-1).tolist()
        if self.command_interface == POSITION:
            return self._position_values(values, q, previous)
        limit = self.action_limit
        clipped = []
        for v in values:
            if not -_INF < v < _INF:  # NaN compares False: not finite, the tick must hold
                return None
            clipped.append(-limit if v < -limit else limit if v > limit else v)
        n = self.n_joints
        positions = np.asarray(q, dtype=np.float64).reshape(-1).tolist() if q is not None else None
        if positions is None or len(positions) < n or len(clipped) < n:
            # not what a controller passes; the numpy path raises as it always did
            return limit_command(np.array(clipped), q, previous, self.limits, self.dt).tolist()
        before = None if previous is None else np.asarray(previous, dtype=np.float64).reshape(-1).tolist()
        return limit_values(clipped, positions, before, self.limits.rows, self.dt)

    def _position_values(self, targets: list, q, previous) -> list | None:
        n = self.n_joints
        if len(targets) != n or q is None or not all(-_INF < v < _INF for v in targets):
            return None  # the tick must hold
        positions = np.asarray(q, dtype=np.float64).reshape(-1).tolist()
        before = None if previous is None else np.asarray(previous, dtype=np.float64).reshape(-1).tolist()
        return limit_position_values(targets, positions, before, self.limits.rows, self.dt)

    def hold(self, q, last_command, last_command_ns, now_ns: int, inputs_good: bool,
             hold_position=None) -> np.ndarray:
        """The hold command. Velocity: not rate-limited (stopping is never delayed), but a held
        last_command still passes the position/velocity envelope at the latest position. Position:
        `hold_position` (the measured position when the HOLD began), else `q`; ValueError when neither
        is known, since no position command is safe then (the caller publishes nothing)."""
        if self.command_interface == POSITION:
            held = hold_position if hold_position is not None else q
            if held is None:
                raise ValueError("a position HOLD needs a measured joint position")
            return np.array(held, dtype=np.float64).reshape(-1)
        command = hold_command(self.hold_mode, self.n_joints, last_command, last_command_ns, now_ns,
                               self.stale_timeout_s, inputs_good)
        if command.any():
            command = limit_command(command, q, None, self.limits, self.dt)
        return command

    def tick(self, mode: Mode, reason: str, action, q, previous, last_command, last_command_ns,
             now_ns: int, hold_position=None) -> TickCommand:
        """The command for one tick. `action` is the active policy's raw output (ignored in HOLD);
        `previous` the command published last tick; `hold_position` the position latched when this
        HOLD began (position interface). The result is always finite."""
        values = self._policy_values(action, q, previous) if mode != Mode.HOLD else None
        if values is not None:
            # finite by construction (clipped finite values inside bounds that contain 0); checked on the
            # floats regardless, which is cheaper than a ufunc on the array: never publish NaN
            if all(-_INF < v < _INF for v in values):
                policy = np.array(values)
                return TickCommand(policy, policy)
            return TickCommand(self.hold(q, None, None, now_ns, False, hold_position), None)
        command = self.hold(q, last_command, last_command_ns, now_ns, inputs_ok(mode, reason), hold_position)
        if not np.isfinite(command).all():  # cannot happen (both paths are finite); never publish NaN regardless
            if self.command_interface == POSITION:
                raise ValueError("no finite position to hold")
            command = np.zeros(self.n_joints)
        return TickCommand(command, None)


class LimitedExecution:
    """A robot that executes each command within a controller's limits, as a driver's rate limiter does
    (libfranka's, ros2_control joint_limits): the command passes :meth:`CommandPipeline.policy_command`
    from the command executed before it.

    Why: demonstrations must show the states the deployed controller will produce, so warpd_sim applies
    it while recording and in-process evaluation applies it beside deployment; one home for both.
    """

    def __init__(self, pipeline: CommandPipeline):
        self.pipeline = pipeline
        self._previous: np.ndarray | None = None
        self.reset()

    def reset(self) -> None:
        """A robot at rest: a velocity ramps up from zero, a position target moves on from the measured position."""
        self._previous = None if self.pipeline.command_interface == POSITION else np.zeros(self.pipeline.n_joints)

    def execute(self, command, q) -> np.ndarray | None:
        """`command` within the limits at joint positions `q`; None for a command that cannot be executed
        (missing, not finite: the caller applies its no-command action and calls :meth:`held`)."""
        limited = self.pipeline.policy_command(command, q, self._previous)
        if limited is not None:
            self._previous = limited
        return limited

    def held(self) -> None:
        """The robot stopped (zero velocity) or holds a position: the next command is limited from there."""
        self.reset()
