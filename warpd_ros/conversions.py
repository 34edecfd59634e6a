"""The one place where ROS messages become numpy and back: PolicyWeights, JointState, commands, and
the 4x4 link poses /tf carries (TransformStamped).

Fast path for the big arrays (see shared notes): ``float32[]`` fields are ``array.array('f')``;
building one from bytes costs ~0.2 ms for 70k floats where assigning a numpy array costs ~8 ms,
and reading back with ``np.frombuffer`` is a zero-copy view. Views handed out are read-only, so a
consumer cannot silently edit the message it came from.
"""
from __future__ import annotations

from array import array

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import TransformStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from transforms3d.quaternions import mat2quat, quat2mat

from warpd_core.errors import PolicyValidationError
from warpd_core.runtime.policy_spec import GeneratedPolicy, MLPArchitecture, as_float32_vector
from warpd_ros.msg import PolicyWeights

_INT32_MAX = 2**31 - 1


def to_float32_field(values, name: str = "array") -> array:
    """A ``float32[]`` message field from any 1-D sequence of numbers, bit-exact for float32 input."""
    vec = np.ascontiguousarray(as_float32_vector(values, name))
    return array("f", vec.tobytes())


def from_float32_field(field) -> np.ndarray:
    """A read-only float32 view of a ``float32[]`` message field (no copy for ``array('f')``)."""
    if isinstance(field, array) and field.typecode == "f":
        view = np.frombuffer(field, dtype=np.float32)
    else:  # a list or other sequence a user assigned by hand
        view = np.asarray(field, dtype=np.float32).reshape(-1)
    view.flags.writeable = False
    return view


def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    sec, nanosec = divmod(int(ns), 1_000_000_000)
    if not -(2**31) <= sec <= _INT32_MAX:
        raise PolicyValidationError("stamp", f"stamp {ns} ns does not fit builtin_interfaces/Time")
    return Time(sec=sec, nanosec=nanosec)


def duration_to_s(duration: Duration) -> float:
    return float(duration.sec) + float(duration.nanosec) * 1e-9


def s_to_duration(seconds: float) -> Duration:
    if not (np.isfinite(seconds) and 0 <= seconds <= _INT32_MAX):
        raise PolicyValidationError("valid_for", f"valid_for must be within 0..{_INT32_MAX} s, got {seconds}")
    total_ns = int(round(seconds * 1e9))
    sec, nanosec = divmod(total_ns, 1_000_000_000)
    return Duration(sec=sec, nanosec=nanosec)


def policy_to_msg(policy: GeneratedPolicy, validate: bool = True) -> PolicyWeights:
    """Pack a generated policy into a PolicyWeights message (validated first by default)."""
    if validate:
        policy.validate()
    arch = policy.architecture
    msg = PolicyWeights()
    msg.header.stamp = ns_to_stamp(policy.stamp_ns)
    msg.policy_id = int(policy.policy_id)
    msg.planner_id = policy.planner_id
    msg.task = policy.task
    msg.joint_names = list(policy.joint_names)
    msg.command_interface = policy.command_interface
    msg.layer_sizes = array("I", arch.layer_sizes)
    msg.activation = arch.activation
    msg.output_activation = arch.output_activation
    msg.obs_mean = to_float32_field(policy.obs_mean, "obs_mean")
    msg.obs_std = to_float32_field(policy.obs_std, "obs_std")
    msg.action_mean = to_float32_field(policy.action_mean, "action_mean")
    msg.action_std = to_float32_field(policy.action_std, "action_std")
    msg.weights = to_float32_field(policy.weights, "weights")
    msg.latent = to_float32_field(policy.latent, "latent")
    msg.valid_for = s_to_duration(policy.valid_for_s)
    msg.auth_tag = array("B", policy.auth_tag)
    return msg


def msg_to_policy(msg: PolicyWeights, validate: bool = True) -> GeneratedPolicy:
    """Unpack a PolicyWeights message; arrays are read-only views into the message.

    With ``validate`` (the default) the result is guaranteed runnable, or PolicyValidationError
    says why not; the architecture is checked before any array is looked at, so absurd declared
    sizes cost nothing.
    """
    arch = MLPArchitecture(tuple(msg.layer_sizes), msg.activation, msg.output_activation)
    if validate:
        arch.validate()
    policy = GeneratedPolicy(
        architecture=arch,
        weights=from_float32_field(msg.weights),
        obs_mean=from_float32_field(msg.obs_mean),
        obs_std=from_float32_field(msg.obs_std),
        action_mean=from_float32_field(msg.action_mean),
        action_std=from_float32_field(msg.action_std),
        latent=from_float32_field(msg.latent),
        policy_id=int(msg.policy_id),
        planner_id=msg.planner_id,
        task=msg.task,
        joint_names=tuple(msg.joint_names),
        command_interface=msg.command_interface,
        stamp_ns=stamp_to_ns(msg.header.stamp),
        valid_for_s=duration_to_s(msg.valid_for),
        auth_tag=bytes(msg.auth_tag),
    )
    if validate:
        policy.validate()
    return policy


class JointStateError(ValueError):
    """A JointState the controller must not act on. `reason` is a short stable code."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class JointIndex:
    """Maps a JointState's name order onto the controller's joint order, cached per name list.

    Drivers publish joints in their own order (and may change it); the policy needs a fixed one.
    """

    def __init__(self, joint_names):
        self.joint_names = tuple(joint_names)
        self._cache: tuple[tuple[str, ...], np.ndarray] | None = None

    def index(self, names) -> np.ndarray:
        names = tuple(names)
        if self._cache is None or self._cache[0] != names:
            missing = [j for j in self.joint_names if j not in names]
            if missing:
                raise JointStateError("joint_names", f"joint state lacks {missing} (has {list(names)})")
            self._cache = (names, np.array([names.index(j) for j in self.joint_names]))
        return self._cache[1]

    def read(self, msg: JointState) -> tuple[np.ndarray, np.ndarray]:
        """(positions, velocities) in controller order; JointStateError if unusable."""
        index = self.index(msg.name)
        n = len(msg.name)
        if len(msg.position) != n or len(msg.velocity) != n:
            raise JointStateError("joint_state_size", f"joint state has {n} names but {len(msg.position)} "
                                  f"positions and {len(msg.velocity)} velocities")
        q = np.asarray(msg.position, dtype=np.float64)[index]
        qd = np.asarray(msg.velocity, dtype=np.float64)[index]
        if not (np.isfinite(q).all() and np.isfinite(qd).all()):
            raise JointStateError("joint_state_nonfinite", "joint state contains NaN or Inf")
        return q, qd


def joint_state_msg(names, positions, velocities, stamp_ns: int) -> JointState:
    msg = JointState()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.name = list(names)
    msg.position = [float(v) for v in positions]
    msg.velocity = [float(v) for v in velocities]
    return msg


def float64_array_msg(values) -> Float64MultiArray:
    """Commands / task features; refuses non-finite values (nothing non-finite may leave a node)."""
    array_ = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.isfinite(array_).all():
        raise ValueError("refusing to publish NaN/Inf")
    return Float64MultiArray(data=array_.tolist())


def transform_stamped_msg(parent: str, child: str, matrix, stamp_ns: int) -> TransformStamped:
    """`child`'s frame in `parent`'s (a 4x4 rigid transform) as tf carries it."""
    msg = TransformStamped()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id, msg.child_frame_id = parent, child
    t = msg.transform
    t.translation.x, t.translation.y, t.translation.z = (float(v) for v in np.asarray(matrix)[:3, 3])
    w, x, y, z = mat2quat(np.asarray(matrix)[:3, :3])
    sign = -1.0 if w < 0 else 1.0  # one of the two equal quaternions: w >= 0
    t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w = (sign * float(c) for c in (x, y, z, w))
    return msg


def transform_to_matrix(transform) -> np.ndarray:
    """A geometry_msgs/Transform (or a TransformStamped's .transform) as a 4x4 matrix."""
    r, v = transform.rotation, transform.translation
    out = np.eye(4)
    out[:3, :3] = quat2mat(np.array([r.w, r.x, r.y, r.z]) / np.linalg.norm([r.w, r.x, r.y, r.z]))
    out[:3, 3] = (v.x, v.y, v.z)
    return out


def goal_pose_features(msg, feature_names, frame: str) -> np.ndarray:
    """Task features from a goal PoseStamped (or PointStamped): goal_x/goal_y/goal_z take the position's
    coordinates (warpd_core.robot_contract.goal_features). ValueError when the goal is in another frame
    than the one the policy was trained in (no tf here: transform it before publishing) or not finite."""
    from warpd_core.errors import WarpdError
    from warpd_core.robot_contract import goal_features

    stated = msg.header.frame_id
    if stated and stated.lstrip("/") != frame.lstrip("/"):
        raise ValueError(f"goal in frame {stated!r}, but the policy's task features are in {frame!r}")
    p = msg.pose.position if hasattr(msg, "pose") else msg.point
    position = (p.x, p.y, p.z)
    if not np.isfinite(position).all():
        raise ValueError("goal position has NaN or Inf")
    try:
        return np.array(goal_features(feature_names, position))
    except WarpdError as exc:
        raise ValueError(str(exc)) from None


def default_goal_features(n_task_features: int) -> tuple[str, ...]:
    """Feature names a goal fills in when no checkpoint says: goal_x, goal_y[, goal_z] (reach_around, Panda)."""
    from warpd_core.robot_contract import GOAL_AXES

    return tuple(GOAL_AXES)[:n_task_features] if n_task_features <= len(GOAL_AXES) else ()
