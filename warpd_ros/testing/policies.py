"""Synthetic policies of the kinds tests and benchmarks send to a controller, and the command the
controller must publish for one.

Every builder starts from :func:`warpd_core.runtime.synthetic.synthetic_policy` (deterministic random
MLPs, never for a real robot). The expected command always comes from the controller's own
:class:`CommandPipeline` (clip -> joint limits -> finite check), built from the parameters the
controller under test reports, so no test re-derives a clip with a limit of its own.
"""
from __future__ import annotations

import time

import numpy as np

from warpd_core.runtime.command_limits import JointLimits
from warpd_core.runtime.command_pipeline import CommandPipeline
from warpd_core.runtime.mlp_runtime import MLPPolicy
from warpd_core.runtime.policy_spec import GeneratedPolicy, MLPArchitecture
from warpd_core.runtime.synthetic import synthetic_policy

from warpd_ros.testing.standin import JOINTS

PLANNER_LAYERS = (8, 64, 64, 3)  # the size the WARPD planner generates for reach_around (with elu)
LIMIT_PARAMETERS = ("position_lower", "position_upper", "velocity_limit", "acceleration_limit", "effort_limit")
PIPELINE_PARAMETERS = ("joint_names", "action_limit", "control_rate_hz", *LIMIT_PARAMETERS)


def policy_for(joints=JOINTS, policy_id: int = 1, *, layers=(8, 16, 16, 3), seed: int = 0,
               weights_id: int | None = None, planner: str = "test_planner", task: str = "reach_around",
               valid_for_s: float = 30.0, stamp_ns: int | None = None, activation: str | None = None,
               action_scale: float = 1.0) -> GeneratedPolicy:
    """A synthetic policy for a controller with `joints`, stamped now unless `stamp_ns` is given.

    The weights are those of (`weights_id`, `seed`) (default: the policy_id), so two policies may share
    weights under different ids. `activation` overrides the hidden activation; `action_scale` sets
    action_std (synthetic outputs are small: 2.0 makes clipping at a small action_limit visible)."""
    policy = synthetic_policy(layers, policy_id if weights_id is None else weights_id, seed=seed, task=task,
                              valid_for_s=valid_for_s)
    policy.policy_id = policy_id
    if activation is not None:
        policy.architecture = MLPArchitecture(tuple(layers), activation)
    policy.planner_id, policy.joint_names = planner, tuple(joints)
    policy.stamp_ns = time.time_ns() if stamp_ns is None else stamp_ns
    if action_scale != 1.0:
        policy.action_std = np.full(layers[-1], action_scale, np.float32)
    return policy


def clipping_policy(joints=JOINTS, policy_id: int = 1, **kwargs) -> GeneratedPolicy:
    """A policy whose actions are large enough (action_std 2) that clipping at a small action_limit shows."""
    return policy_for(joints, policy_id, action_scale=2.0, **kwargs)


def planner_like_policy(joints=JOINTS, policy_id: int = 1, *, layers=PLANNER_LAYERS, **kwargs) -> GeneratedPolicy:
    """A policy of the architecture the WARPD planner generates (elu hidden layers)."""
    return policy_for(joints, policy_id, layers=layers, activation="elu", **kwargs)


def hostile_policy(joints, policy_id: int, gain: float = 1e6, planner: str = "hostile") -> GeneratedPolicy:
    """A well-formed linear policy: action = `gain` * q[0] on every joint (the sign follows the first joint)."""
    n = len(joints)
    obs_dim = 2 * n + 2
    w = np.zeros((n, obs_dim), np.float32)
    w[:, 0] = 1.0
    return GeneratedPolicy(MLPArchitecture((obs_dim, n)), np.concatenate([w.ravel(), np.zeros(n, np.float32)]),
                           np.zeros(obs_dim), np.ones(obs_dim), np.zeros(n), np.full(n, gain), policy_id=policy_id,
                           planner_id=planner, task="reach_around", joint_names=tuple(joints),
                           stamp_ns=time.time_ns(), valid_for_s=0.0)


def policy_message(policy: GeneratedPolicy, key: bytes | None = None, validate: bool = True):
    """`policy` as a PolicyWeights message, signed with `key` (its auth tag) when one is given."""
    from array import array

    from warpd_core.runtime.signing import policy_tag
    from warpd_ros.conversions import policy_to_msg

    msg = policy_to_msg(policy, validate=validate)
    if key is not None:
        msg.auth_tag = array("B", policy_tag(policy, key))
    return msg


# ------------------------------------------------------------------ what the controller must publish
def pipeline_from_parameters(params: dict) -> CommandPipeline:
    """The controller's command pipeline, from its parameters as it reports them (joint_names and
    action_limit at least; control_rate_hz and the joint limits where given, as the controller reads them)."""
    limits = JointLimits.create(params["joint_names"], **{k: params[k] for k in LIMIT_PARAMETERS if k in params})
    rate = float(params.get("control_rate_hz", 1000.0))
    return CommandPipeline(limits, float(params["action_limit"]), 1.0 / rate)


def expected_command(policy: GeneratedPolicy, obs: np.ndarray, pipeline: CommandPipeline) -> np.ndarray | None:
    """The command a controller running `pipeline` publishes for `policy` at observation `obs` once it has
    settled (no rate limit left to apply); None if the action is not finite (the tick holds)."""
    action = MLPPolicy(policy).select_action(obs)
    return pipeline.policy_command(action, np.asarray(obs[:pipeline.n_joints], np.float64), None)
