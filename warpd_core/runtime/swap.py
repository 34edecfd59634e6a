"""Policy swaps and controller modes, without ROS: what the warpd controller node decides, and why.

The controller node (``warpd_ros/nodes/controller.py``) is thin glue around this module, so every
decision it makes can be unit-tested and fuzzed without a ROS graph:

- :func:`check_policy` decides whether a received policy may be run at all (its auth tag, validation
  against the controller's :class:`ControllerSpec`, clock checks, replay protection per planner).
- :class:`ActivePolicy` is one accepted policy, ready to run; :class:`PolicySlot` holds the active
  policy and an optional shadow candidate and swaps them with a single reference assignment.
- :func:`decide_mode` says whether the controller may drive the robot this tick (RUN / SHADOW) or
  must HOLD, with a human-readable reason; what each tick then publishes is
  ``warpd_core/runtime/command_pipeline.py`` (clip -> limits -> finite -> hold).
- :class:`LoopTimer` keeps the control loop's timing statistics.

All times are integer nanoseconds on one clock chosen by the caller (the node uses its ROS clock,
so policy stamps, expiry and joint-state freshness compare like with like, also under sim time).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from warpd_core.errors import PolicyValidationError
from warpd_core.runtime.command_pipeline import REASON_EXPIRED, REASON_NO_POLICY, REASON_STALE, Mode
from warpd_core.runtime.mlp_runtime import MLPPolicy
from warpd_core.runtime.policy_spec import GeneratedPolicy
from warpd_core.runtime.signing import PolicyVerifier

@dataclass(frozen=True)
class ControllerSpec:
    """What the controller feeds a policy and what it expects back.

    Observation = [q (joint order), qd (joint order), task features]; action = one joint velocity
    per joint, in joint order. `max_policy_age_s` > 0 refuses policies stamped longer ago than that
    (the replay window: a controller that restarted has no policy_id history, but an old recorded
    message is still too old); 0 accepts any age.
    """

    joint_names: tuple[str, ...]
    n_task_features: int
    max_clock_skew_s: float = 0.5
    max_policy_age_s: float = 0.0
    command_interface: str = "velocity"  # what this controller's commands mean to the robot

    def __post_init__(self):
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        if not self.joint_names:
            raise ValueError("a controller needs at least one joint")
        if len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"joint_names has duplicates: {list(self.joint_names)}")
        if self.command_interface not in ("velocity", "position"):
            raise ValueError(f"command_interface must be velocity or position, got {self.command_interface!r}")
        if self.n_task_features < 0:
            raise ValueError(f"n_task_features must be >= 0, got {self.n_task_features}")
        if not (math.isfinite(self.max_clock_skew_s) and self.max_clock_skew_s >= 0):
            raise ValueError(f"max_clock_skew_s must be finite and >= 0, got {self.max_clock_skew_s}")
        if not (math.isfinite(self.max_policy_age_s) and self.max_policy_age_s >= 0):
            raise ValueError(f"max_policy_age_s must be finite and >= 0, got {self.max_policy_age_s}")

    @property
    def obs_dim(self) -> int:
        return 2 * len(self.joint_names) + self.n_task_features

    @property
    def action_dim(self) -> int:
        return len(self.joint_names)


def check_policy(policy: GeneratedPolicy, spec: ControllerSpec, now_ns: int,
                 last_accepted: Mapping[str, int], verifier: PolicyVerifier | None = None) -> None:
    """Raise PolicyValidationError(reason, message) unless `policy` may be installed now.

    Order matters: first the auth tag (`verifier`; none = tags ignored), so nothing of an
    unauthenticated message is interpreted; then the architecture (a handful of integers) is
    validated and compared with the spec before any array is looked at, so a message declaring
    absurd sizes costs nothing; then the arrays (`policy.validate()`), then the clocks (future
    stamp, expiry, the max_policy_age_s window), then replay. `last_accepted` maps planner_id ->
    the last policy_id accepted from that planner; it is not modified here (the caller records an
    id only once the policy is really installed).
    """
    if verifier is not None:
        verifier.check(policy)
    arch = policy.architecture
    arch.validate()
    if arch.obs_dim != spec.obs_dim or arch.action_dim != spec.action_dim:
        raise PolicyValidationError(
            "architecture_mismatch",
            f"policy maps {arch.obs_dim} -> {arch.action_dim} but this controller needs "
            f"{spec.obs_dim} -> {spec.action_dim} ({len(spec.joint_names)} joints, "
            f"{spec.n_task_features} task features)")
    if policy.joint_names and tuple(policy.joint_names) != spec.joint_names:
        raise PolicyValidationError(
            "joint_names", f"policy was made for joints {list(policy.joint_names)}, "
                           f"this controller drives {list(spec.joint_names)}")
    interface = policy.command_interface or ("velocity" if spec.command_interface == "velocity" else "")
    if interface != spec.command_interface:
        raise PolicyValidationError(
            "command_interface", f"policy commands {interface or 'an unstated interface'}, this controller drives "
                                 f"the {spec.command_interface} interface")
    policy.validate()
    skew_ns = int(spec.max_clock_skew_s * 1e9)
    if policy.stamp_ns > now_ns + skew_ns:
        raise PolicyValidationError(
            "future_stamp", f"policy stamp is {(policy.stamp_ns - now_ns) / 1e9:.3f} s in the future "
                            f"(more than max_clock_skew_s={spec.max_clock_skew_s}); are the clocks synchronised?")
    expires = expires_at_ns(policy)
    if expires is not None and expires < now_ns:
        raise PolicyValidationError(
            "expired", f"policy expired {(now_ns - expires) / 1e9:.3f} s ago "
                       f"(valid_for {policy.valid_for_s:.3f} s from its stamp)")
    if spec.max_policy_age_s > 0 and now_ns - policy.stamp_ns > spec.max_policy_age_s * 1e9:
        raise PolicyValidationError(
            "stale_stamp", f"policy stamp is {(now_ns - policy.stamp_ns) / 1e9:.3f} s old (more than "
                           f"max_policy_age_s={spec.max_policy_age_s}); a replayed recording, or clocks out of sync?")
    last = last_accepted.get(policy.planner_id)
    if last is not None and policy.policy_id <= last:
        raise PolicyValidationError(
            "replayed", f"policy_id {policy.policy_id} from planner {policy.planner_id!r} is not newer than "
                        f"the last accepted one ({last})")


def expires_at_ns(policy: GeneratedPolicy) -> int | None:
    """stamp + valid_for, or None when valid_for is 0 ("until replaced")."""
    if policy.valid_for_s <= 0:
        return None
    return policy.stamp_ns + int(round(policy.valid_for_s * 1e9))


@dataclass(frozen=True)
class ActivePolicy:
    """An accepted policy, ready to run. Immutable: a swap replaces it, never edits it.

    `executor` owns copies of the weights (see MLPPolicy), so a message buffer reused later
    cannot change it. It is not thread-safe: only the control loop may call it.
    """

    executor: MLPPolicy
    policy_id: int
    planner_id: str
    task: str
    stamp_ns: int
    expires_at_ns: int | None

    @property
    def run_reason(self) -> str:
        """decide_mode's RUN reason for this policy, built once (not a new string every tick)."""
        reason = self.__dict__.get("_run_reason")
        if reason is None:
            reason = f"running policy {self.policy_id}"
            object.__setattr__(self, "_run_reason", reason)
        return reason

    @classmethod
    def from_policy(cls, policy: GeneratedPolicy) -> "ActivePolicy":
        return cls(MLPPolicy(policy), int(policy.policy_id), policy.planner_id, policy.task,
                   int(policy.stamp_ns), expires_at_ns(policy))

    def expired(self, now_ns: int) -> bool:
        return self.expires_at_ns is not None and now_ns > self.expires_at_ns


@dataclass(frozen=True)
class SlotState:
    """One consistent (active, shadow) pair; the control loop reads it once per tick."""

    active: ActivePolicy | None = None
    shadow: ActivePolicy | None = None


class PolicySlot:
    """Holds the active policy and an optional shadow candidate.

    Every change builds a new immutable :class:`SlotState` and publishes it with ONE reference
    assignment, which is atomic under the GIL: a reader (the control loop) that takes ``state``
    once per tick sees either the old pair or the new one, never a mix, and needs no lock.
    Writers (install / set_shadow / promote) must be serialised by the caller; in the node they
    all run on the one executor thread.
    """

    def __init__(self):
        self.state = SlotState()

    @property
    def active(self) -> ActivePolicy | None:
        return self.state.active

    @property
    def shadow(self) -> ActivePolicy | None:
        return self.state.shadow

    def install(self, new: ActivePolicy) -> None:
        """Make `new` the active policy (the shadow candidate, if any, stays)."""
        self.state = SlotState(new, self.state.shadow)

    def set_shadow(self, candidate: ActivePolicy | None) -> None:
        self.state = SlotState(self.state.active, candidate)

    def promote(self) -> ActivePolicy:
        """Make the shadow candidate active and clear the shadow; ValueError if there is none."""
        state = self.state
        if state.shadow is None:
            raise ValueError("there is no shadow candidate to promote")
        self.state = SlotState(state.shadow, None)
        return state.shadow

    def clear(self) -> None:
        self.state = SlotState()


REASON_EPISODE_ENDED = "episode ended"
REASON_EPISODE_POLICY = "no policy planned for this episode yet"


class EpisodeGate:
    """HOLD between episodes: from an episode's end (SUCCESS/TIMEOUT) until the active policy is one
    stamped at or after the next episode's RESET.

    Without it a robot runs the last episode's policy, planned for where that episode ended, while
    an operator puts it back at a start posture and until the planner's first plan for the new
    episode arrives: motion nobody asked for, and a start that is no longer the one planned from.
    """

    def __init__(self):
        self._ended = False
        self._reset_ns: int | None = None  # set by a RESET until a policy stamped at or after it is active

    def end(self) -> None:
        self._ended, self._reset_ns = True, None

    def reset(self, stamp_ns: int) -> None:
        self._ended, self._reset_ns = False, stamp_ns

    def hold_reason(self, active: ActivePolicy | None) -> str | None:
        """Why this tick must HOLD for the episode's sake, or None (the gate is open from then on)."""
        if self._ended:
            return REASON_EPISODE_ENDED
        if self._reset_ns is None:
            return None
        if active is not None and active.stamp_ns >= self._reset_ns:
            self._reset_ns = None
            return None
        return REASON_EPISODE_POLICY


def state_time_ns(arrival_ns: int, stamp_ns: int, use_stamp: bool = True) -> int:
    """The time a joint state describes, for judging whether it is fresh.

    Arrival alone would let a link that delivers every state late (or a driver replaying old
    states) keep the controller in RUN on stale data; so the older of the header stamp and the
    arrival time counts. A stamp in the future cannot make a state fresher than its arrival.
    Unstamped states (stamp 0), or `use_stamp=False` (clocks that cannot be synchronised),
    fall back to arrival.
    """
    if not use_stamp or stamp_ns <= 0:
        return arrival_ns
    return min(arrival_ns, stamp_ns)


def decide_mode(now_ns: int, active: ActivePolicy | None, last_state_ns: int | None,
                state_error: str | None, stale_timeout_s: float,
                shadow: ActivePolicy | None = None) -> tuple[Mode, str]:
    """(mode, reason) for this tick. HOLD unless a valid policy and fresh, valid inputs exist.

    HOLD reasons, first match wins: "no valid policy", "policy expired", "joint states stale"
    (none received yet, or the last one arrived more than stale_timeout_s ago), or `state_error`
    (the reason code of the last joint state / task features, e.g. "joint_state_nonfinite").
    Otherwise SHADOW when an unexpired shadow candidate runs beside the active policy, else RUN.
    """
    if active is None:
        return Mode.HOLD, REASON_NO_POLICY
    if active.expired(now_ns):
        return Mode.HOLD, REASON_EXPIRED
    if last_state_ns is None or now_ns - last_state_ns > stale_timeout_s * 1e9:
        return Mode.HOLD, REASON_STALE
    if state_error:
        return Mode.HOLD, state_error
    if shadow is not None and not shadow.expired(now_ns):
        return Mode.SHADOW, f"shadow candidate {shadow.policy_id} beside active {active.policy_id}"
    return Mode.RUN, active.run_reason


class LoopTimer:
    """Control-loop timing: period error statistics over a window, and missed ticks since start.

    ``tick(t_ns)`` is called once per control tick with a monotonic time; it stores the period in
    a preallocated ring buffer (no allocation on the control path). ``window_stats()`` summarises
    the periods since the previous call (the status window; at most `capacity` of them) and starts
    a new window. A tick whose period exceeds twice the nominal one counts as missed.
    """

    def __init__(self, rate_hz: float, capacity: int = 8192):
        self._periods = np.zeros(capacity, np.float64)
        self._capacity = capacity
        self.missed_ticks = 0
        self.ticks = 0
        self.set_rate(rate_hz)

    def set_rate(self, rate_hz: float) -> None:
        """New nominal rate: the next tick starts a fresh measurement (no period across the change)."""
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate must be > 0, got {rate_hz}")
        self.rate_hz = float(rate_hz)
        self.nominal_ns = 1e9 / self.rate_hz
        self._missed_ns = 2 * self.nominal_ns  # a period longer than this is a missed tick
        self._last_ns: int | None = None
        self._count = 0  # periods in the current window (may exceed capacity; the ring keeps the newest)

    @property
    def last_tick_ns(self) -> int | None:
        """Time of the latest tick (None before the first one after start or a rate change)."""
        return self._last_ns

    def tick(self, t_ns: int) -> None:
        last, self._last_ns = self._last_ns, t_ns
        self.ticks += 1
        if last is None:
            return
        period = t_ns - last
        count = self._count
        self._periods[count % self._capacity] = period
        self._count = count + 1
        if period > self._missed_ns:
            self.missed_ticks += 1

    def window_stats(self, reset: bool = True) -> dict:
        """period_error_p50/p99/max (s), loop_rate_hz and periods over the window; zeros if empty."""
        n = min(self._count, self._capacity)
        if reset:
            self._count = 0
        if n == 0:
            return {"periods": 0, "loop_rate_hz": 0.0, "period_error_p50": 0.0,
                    "period_error_p99": 0.0, "period_error_max": 0.0}
        periods = self._periods[:n]
        errors = np.abs(periods - self.nominal_ns) * 1e-9
        p50, p99 = np.percentile(errors, (50, 99))
        return {"periods": n, "loop_rate_hz": float(n / (periods.sum() * 1e-9)),
                "period_error_p50": float(p50), "period_error_p99": float(p99),
                "period_error_max": float(errors.max())}
