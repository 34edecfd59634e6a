"""Position commands learned as steps from the measured position, published as absolute targets.

Why: on a position interface a demonstration's command is the measured position plus a small step
(0.01-0.03 rad per 20 ms on the Panda). Learned as absolute targets, the generated policy's error
(0.03-0.07 rad RMS, measured on recorded Panda data) was larger than the step it had to encode, and
the arm ran away from the demonstrations (0/50 in the sim). Learned as steps (target - q), the error
is a fraction of the step.

The published policy still outputs targets, so the PolicyWeights contract, the controller and every
consumer that runs it stay as they are: the decoded MLP is widened by one pass-through unit per
commanded joint in every hidden layer. The first layer's unit j computes q_j - mean_j + SHIFT (positive
wherever |q_j - mean_j| < SHIFT - 5, so ReLU, ELU and GELU pass it unchanged), later layers copy it,
and the output layer adds q_j back:

    learned   y  = MLP(x_n)                          (normalised step; action stats are the steps')
    runtime   y' = y + (p_j + mean_j - SHIFT) / s_j  with p_j = q_j - mean_j + SHIFT
    command   y' * s_j + m_j = step_j + q_j          (the runtime's usual de-normalisation)

Costs n extra units per hidden layer (n = joints). Rounding: float32 around SHIFT is 4e-6 rad.
"""
from __future__ import annotations

import numpy as np

from warpd_core.errors import WarpdError
from warpd_core.runtime.policy_spec import MLPArchitecture

NONE, JOINT_POSITION, AUTO = "none", "joint_position", "auto"
ACTION_OFFSETS = (NONE, JOINT_POSITION, AUTO)
SHIFT = 32.0  # rad: keeps a pass-through unit positive for any joint within 27 rad of its training mean
PASSES_POSITIVE_VALUES = ("relu", "elu", "gelu")  # identity on [5, inf) in float32; tanh is not


def offset_indices(mode: str, obs_names, action_names, activation: str) -> tuple[int, ...] | None:
    """Where each action's measured position sits in the observation, or None for absolute actions.

    `auto` offsets position actions (`<joint>_pos` with an observed `q_<joint>`) and nothing else."""
    if mode not in ACTION_OFFSETS:
        raise WarpdError(f"policy.action_offset is {mode!r}", f"use one of {', '.join(ACTION_OFFSETS)}")
    obs_names, action_names = list(obs_names), list(action_names)
    positions = [f"q_{a[:-len('_pos')]}" if a.endswith("_pos") else None for a in action_names]
    offsettable = all(p is not None and p in obs_names for p in positions)
    if mode == NONE or (mode == AUTO and not offsettable):
        return None
    if not offsettable:
        raise WarpdError("policy.action_offset joint_position needs position actions <joint>_pos with an observed "
                         f"q_<joint> each; actions are {action_names}", "use action_offset none (or auto)")
    if activation not in PASSES_POSITIVE_VALUES:
        raise WarpdError(f"policy.action_offset {mode} cannot run with activation {activation!r}",
                         f"use one of {', '.join(PASSES_POSITIVE_VALUES)}, or action_offset none")
    return tuple(obs_names.index(p) for p in positions)


def learned_actions(obs: np.ndarray, actions: np.ndarray, indices: tuple[int, ...] | None) -> np.ndarray:
    """Demonstrated actions (T, A) as the policy learns them: the step from the measured position."""
    return actions if indices is None else actions - obs[:, list(indices)]


def runtime_architecture(learned: MLPArchitecture, indices: tuple[int, ...] | None) -> MLPArchitecture:
    """The published MLP: every hidden layer wider by one pass-through unit per joint."""
    if indices is None:
        return learned
    n, sizes = len(indices), learned.layer_sizes
    return MLPArchitecture((sizes[0], *(h + n for h in sizes[1:-1]), sizes[-1]), learned.activation,
                           learned.output_activation)


def with_pass_through(learned: MLPArchitecture, weights: np.ndarray, indices: tuple[int, ...], obs_mean: np.ndarray,
                      obs_std: np.ndarray, action_std: np.ndarray) -> np.ndarray:
    """Flat learned weights (PolicyWeights layout) -> the flat weights of `runtime_architecture`, which
    output step + q (module docstring). Computed in float64, returned as float32."""
    idx = np.asarray(indices)
    n = len(idx)
    q_std, q_mean, a_std = (np.asarray(v, np.float64)[s] for v, s in ((obs_std, idx), (obs_mean, idx),
                                                                        (action_std, slice(None))))
    flat, offset, parts = np.asarray(weights, np.float64), 0, []
    shapes = learned.layer_shapes()
    for k, (out_dim, in_dim) in enumerate(shapes):
        w = flat[offset:offset + out_dim * in_dim].reshape(out_dim, in_dim)
        offset += out_dim * in_dim
        b = flat[offset:offset + out_dim]
        offset += out_dim
        first, last = k == 0, k == len(shapes) - 1
        if first and last:  # no hidden layer: the output reads q straight from the normalised input
            w, b = w.copy(), b.copy()
            w[np.arange(n), idx] += q_std / a_std
            b = b + q_mean / a_std
        elif first:  # (h + n) x obs: unit j = std_j * x_n[idx_j] + SHIFT = q_j - mean_j + SHIFT
            rows = np.zeros((n, in_dim))
            rows[np.arange(n), idx] = q_std
            w, b = np.vstack([w, rows]), np.concatenate([b, np.full(n, SHIFT)])
        elif not last:  # (h + n) x (h_prev + n): the learned block, and the units copied
            w = np.block([[w, np.zeros((out_dim, n))], [np.zeros((n, in_dim)), np.eye(n)]])
            b = np.concatenate([b, np.zeros(n)])
        else:  # actions x (h + n): add (p_j + mean_j - SHIFT) / s_j
            w = np.hstack([w, np.diag(1.0 / a_std)])
            b = b + (q_mean - SHIFT) / a_std
        parts += [w.reshape(-1), b]
    return np.concatenate(parts).astype(np.float32)
