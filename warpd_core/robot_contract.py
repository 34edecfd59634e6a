"""The robot contract: what a dataset or checkpoint was made for, so nothing runs it on another robot.

A policy trained on `[q, qd]` of joints A, B, C in that order, commanding their velocities at 50 Hz,
with the goal's x, y in the `world` frame as task features, does the wrong thing (quietly) on a robot
whose joints come in the order B, A, C, that takes position targets, or whose goal arrives in
another frame. Matching counts is not enough; this record holds the names, in order, and says what
differs. It travels from the dataset (import-bag, collect) into every checkpoint trained on it, and
the planner and controller compare it with their own configuration before anything is commanded.

Names carry the contract where older files have no record (see :meth:`RobotContract.from_names`):
observations are `q_<joint>` ..., `qd_<joint>` ..., then the task features; actions are `<joint>_vel`
(velocity interface) or `<joint>_pos` (position interface).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from warpd_core.errors import WarpdError

VELOCITY, POSITION = "velocity", "position"
COMMAND_INTERFACES = (VELOCITY, POSITION)
ACTION_SUFFIX = {VELOCITY: "_vel", POSITION: "_pos"}
DEFAULT_FRAME = "world"
GOAL_AXES = {"goal_x": 0, "goal_y": 1, "goal_z": 2}  # task features a goal position fills in


def interface_of_actions(joint_names, action_names) -> str | None:
    """The command interface that action names `<joint><suffix>` spell out for these joints, or None."""
    for interface, suffix in ACTION_SUFFIX.items():
        if tuple(action_names) == tuple(f"{j}{suffix}" for j in joint_names):
            return interface
    return None


@dataclass(frozen=True)
class RobotContract:
    joint_names: tuple[str, ...]  # observed and commanded, in this order
    command_interface: str  # "velocity" | "position"
    control_rate_hz: float | None  # the rate the demonstrations were recorded at; None = unknown
    task_feature_names: tuple[str, ...] = ()  # observation entries after [q, qd]
    task_frame: str = DEFAULT_FRAME  # the frame goal positions among the task features are expressed in

    def __post_init__(self):
        if self.command_interface not in COMMAND_INTERFACES:
            raise WarpdError(f"command interface {self.command_interface!r} is not one of {COMMAND_INTERFACES}")

    @property
    def n_task_features(self) -> int:
        return len(self.task_feature_names)

    def obs_names(self) -> tuple[str, ...]:
        return (*(f"q_{j}" for j in self.joint_names), *(f"qd_{j}" for j in self.joint_names),
                *self.task_feature_names)

    def action_names(self) -> tuple[str, ...]:
        return tuple(f"{j}{ACTION_SUFFIX[self.command_interface]}" for j in self.joint_names)

    @classmethod
    def from_names(cls, obs_names, action_names, control_dt: float | None,
                   task_frame: str | None = None) -> RobotContract:
        """The contract the names of a dataset or checkpoint spell out (see the module docstring)."""
        obs_names, action_names = tuple(obs_names), tuple(action_names)
        joints = tuple(n[2:] for n in obs_names if n.startswith("q_"))
        velocities = tuple(n[3:] for n in obs_names if n.startswith("qd_"))
        n = len(joints)
        if not joints or velocities != joints or obs_names[:2 * n] != tuple(f"q_{j}" for j in joints) + tuple(
                f"qd_{j}" for j in joints):
            raise WarpdError(f"observation names {list(obs_names)[:8]}... do not start with q_<joint>..., qd_<joint>...",
                             "a robot contract needs joint-space observations")
        interface = interface_of_actions(joints, action_names)
        if interface is None:
            raise WarpdError(f"action names {list(action_names)} are not <joint>_vel or <joint>_pos for the joints "
                             f"{list(joints)}", "the command interface cannot be told from these names")
        rate = None if not control_dt else round(1.0 / control_dt, 6)
        return cls(joints, interface, rate, obs_names[2 * n:], task_frame or DEFAULT_FRAME)

    def to_json(self) -> dict:
        return {"joint_names": list(self.joint_names), "command_interface": self.command_interface,
                "control_rate_hz": self.control_rate_hz, "task_feature_names": list(self.task_feature_names),
                "task_frame": self.task_frame}

    @classmethod
    def from_json(cls, data: dict, source: str) -> RobotContract:
        try:
            return cls(tuple(data["joint_names"]), data["command_interface"], data["control_rate_hz"],
                       tuple(data["task_feature_names"]), data["task_frame"])
        except (KeyError, TypeError) as exc:
            raise WarpdError(f"{source}: malformed robot contract ({exc})", "re-train to write a new one") from None

    def differences(self, joint_names=None, command_interface: str | None = None,
                    n_task_features: int | None = None, control_rate_hz: float | None = None) -> list[str]:
        """What differs between this contract and a configuration (None = not compared), in words."""
        problems = []
        if joint_names is not None and tuple(joint_names) != self.joint_names:
            problems.append(_joint_difference(self.joint_names, tuple(joint_names)))
        if command_interface is not None and command_interface != self.command_interface:
            problems.append(f"command interface: trained for {self.command_interface}, configured for "
                            f"{command_interface}")
        if n_task_features is not None and n_task_features != self.n_task_features:
            names = ", ".join(self.task_feature_names) or "none"
            problems.append(f"task features: trained with {self.n_task_features} ({names}), configured for "
                            f"{n_task_features}")
        if (control_rate_hz is not None and self.control_rate_hz is not None
                and not math.isclose(control_rate_hz, self.control_rate_hz, rel_tol=1e-3)):
            problems.append(f"rate: trained at {self.control_rate_hz:g} Hz, configured for {control_rate_hz:g} Hz")
        return problems

    def require(self, what: str, hint: str, **configured) -> None:
        """Raise a WarpdError naming every difference from `configured` (see :meth:`differences`)."""
        problems = self.differences(**configured)
        if problems:
            raise WarpdError(f"{what} does not match this robot: " + "; ".join(problems), hint)


def _joint_difference(trained: tuple[str, ...], configured: tuple[str, ...]) -> str:
    if set(trained) == set(configured):
        return (f"joint order: trained as [{', '.join(trained)}], configured as [{', '.join(configured)}] "
                "(same joints, another order: every observation and command would go to the wrong joint)")
    missing = [j for j in trained if j not in configured]
    extra = [j for j in configured if j not in trained]
    parts = [f"trained for [{', '.join(trained)}], configured for [{', '.join(configured)}]"]
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if extra:
        parts.append(f"not trained on {', '.join(extra)}")
    return "joints: " + "; ".join(parts)


def goal_features(feature_names, position) -> list[float]:
    """Task features from a goal position (x, y, z in the contract's frame): each feature named goal_x,
    goal_y or goal_z takes that coordinate. Other names cannot come from a position."""
    names = tuple(feature_names)
    if other := [n for n in names if n not in GOAL_AXES]:
        raise WarpdError(f"task features {other} cannot be filled in from a goal position",
                         f"only {', '.join(GOAL_AXES)} can; publish the others on the task features topic")
    return [float(position[GOAL_AXES[n]]) for n in names]


CHECKPOINT_KEYS = ("warpd", "warpd_dp")  # the safetensors header keys of WARPD and Diffusion Policy records
_MAX_HEADER = 16 * 1024 * 1024


def contract_from_record(record: dict, source: str) -> RobotContract:
    """The contract in a checkpoint's JSON record (written by training), or, for checkpoints from before
    the record existed, the one their observation and action names spell out (rate unknown)."""
    stored = (record.get("extra") or {}).get("robot")
    if stored:
        return RobotContract.from_json(stored, source)
    return RobotContract.from_names(record["obs_names"], record["action_names"], None)


def read_checkpoint_contract(path) -> RobotContract:
    """The robot contract of a checkpoint file, read from its safetensors header alone: no torch, no
    tensors (the controller checks it at configure time and must not load an ML stack for that)."""
    import json
    import struct
    from pathlib import Path

    path = Path(path).expanduser()
    try:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size > _MAX_HEADER:
                raise ValueError(f"header of {size} bytes")
            header = json.loads(f.read(size))
    except FileNotFoundError:
        raise WarpdError(f"checkpoint {path} does not exist", "train one with `warpd train --config ...`") from None
    except (OSError, ValueError, struct.error) as exc:
        raise WarpdError(f"{path} is not a readable safetensors checkpoint ({exc})") from None
    metadata = header.get("__metadata__") or {}
    for key in CHECKPOINT_KEYS:
        if key in metadata:
            return contract_from_record(json.loads(metadata[key]), str(path))
    raise WarpdError(f"{path} is a safetensors file but not a warpd checkpoint")
