"""The numpy executor of a GeneratedPolicy: the forward pass the controller runs at up to 1 kHz.

Numpy rather than torch because a generated policy is a small MLP: at these sizes the cost is
per-call overhead, not arithmetic, and a numpy ufunc costs well under a microsecond where a torch
op costs several. The controller also must not need torch installed.

Everything that does not depend on the observation happens once, in the constructor: the policy
is validated, W and b are copied into contiguous float32 arrays this object owns (a message buffer
that is reused or mutated later can never change a running policy), the observation scale becomes
a ``1/std`` multiplier, and per-layer work buffers are allocated. ``select_action`` then runs
in-place ufuncs (``out=``) into those buffers and allocates only the action it returns; the
observation's 1/std and (with an identity output) the action's std and mean are folded into the
first and last layers' weights once, so a call runs fewer ufuncs.

Arithmetic is float32 throughout, following the layout and forward pass documented at the top of
``msg/PolicyWeights.msg``.
"""
from __future__ import annotations

import math

import numpy as np

from warpd_core.runtime.policy_spec import GeneratedPolicy, MLPArchitecture

_GELU_SCALE = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


def _relu(h: np.ndarray, scratch: np.ndarray | None = None) -> None:
    np.maximum(h, 0, out=h)


def _tanh(h: np.ndarray, scratch: np.ndarray | None = None) -> None:
    np.tanh(h, out=h)


def _elu(h: np.ndarray, scratch: np.ndarray | None = None) -> None:
    """ELU with alpha 1, written as max(x, 0) + expm1(min(x, 0)) so it runs in place."""
    s = np.empty_like(h) if scratch is None else scratch
    np.minimum(h, 0, out=s)
    np.expm1(s, out=s)
    np.maximum(h, 0, out=h)
    np.add(h, s, out=h)


def _gelu(h: np.ndarray, scratch: np.ndarray | None = None) -> None:
    """GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    The same function as torch ``nn.GELU(approximate="tanh")``, which the hypernetwork uses;
    the exact erf form would need scipy and differs by up to ~1e-3.
    """
    s = np.empty_like(h) if scratch is None else scratch
    np.multiply(h, h, out=s)
    np.multiply(s, _GELU_CUBIC, out=s)
    np.add(s, 1, out=s)
    np.multiply(s, h, out=s)  # x + 0.044715 x^3
    np.multiply(s, _GELU_SCALE, out=s)
    np.tanh(s, out=s)
    np.add(s, 1, out=s)
    np.multiply(h, s, out=h)
    np.multiply(h, 0.5, out=h)


_HIDDEN = {"relu": _relu, "tanh": _tanh, "elu": _elu, "gelu": _gelu}
_OUTPUT = {"identity": None, "tanh": _tanh}


class MLPPolicy:
    """Runs one validated GeneratedPolicy on observations, one at a time or in batches.

    Not thread-safe: ``select_action`` writes into work buffers shared by every call on this
    instance. Use one instance per thread; construction is cheap.
    """

    def __init__(self, policy: GeneratedPolicy):
        policy.validate()
        arch = policy.architecture
        self._architecture = arch
        self._policy_id = policy.policy_id
        self._hidden = _HIDDEN[arch.activation]
        self._output = _OUTPUT[arch.output_activation]
        self._obs_mean = np.array(policy.obs_mean, np.float32)
        self._obs_scale = (1.0 / policy.obs_std.astype(np.float64)).astype(np.float32)
        self._action_mean = np.array(policy.action_mean, np.float32)
        self._action_std = np.array(policy.action_std, np.float32)
        self._layers = [(np.array(w, np.float32, order="C"), np.array(b, np.float32)) for w, b in policy.layers()]
        self._x = np.empty(arch.obs_dim, np.float32)
        self._finite = np.empty(arch.obs_dim, bool)
        # select_action's layers, with what is linear folded in once (in float64), so each call runs fewer
        # ufuncs (at these sizes each costs about as much as a matrix-vector product):
        # - the 1/std of the observation scales the first layer's columns: W1 (x - mean) / std = (W1 diag(1/std))
        #   (x - mean). The mean stays a subtraction: folded into the bias it would cancel in float32.
        # - with an identity output, y * action_std + action_mean folds into the last layer:
        #   W' = diag(std) W, b' = std * b + mean.
        steps = [(w.astype(np.float64), b.astype(np.float64)) for w, b in self._layers]
        steps[0] = (steps[0][0] * self._obs_scale.astype(np.float64)[None, :], steps[0][1])
        self._fold_output = self._output is None
        if self._fold_output:
            std, mean = self._action_std.astype(np.float64), self._action_mean.astype(np.float64)
            steps[-1] = (steps[-1][0] * std[:, None], steps[-1][1] * std + mean)
        steps = [(np.ascontiguousarray(w, np.float32), b.astype(np.float32)) for w, b in steps]
        # (W, b, output buffer, activation scratch) per hidden layer; the last layer needs no scratch.
        self._hidden_steps = [(w, b, np.empty(w.shape[0], np.float32), np.empty(w.shape[0], np.float32))
                              for w, b in steps[:-1]]
        w, b = steps[-1]
        self._last_step = (w, b, np.empty(w.shape[0], np.float32))

    @property
    def architecture(self) -> MLPArchitecture:
        return self._architecture

    @property
    def policy_id(self) -> int:
        return self._policy_id

    def __call__(self, obs) -> np.ndarray:
        """A policy is a callable obs -> action (what the episode runner expects)."""
        return self.select_action(obs)

    def select_action(self, obs) -> np.ndarray:
        """The action for one observation of shape (obs_dim,), as a new float64 array.

        Raises ValueError for a wrong shape or a NaN/Inf observation (including finite float64
        values beyond float32 range); what to do then, e.g. hold, is the caller's decision.
        """
        obs = np.asarray(obs)
        if obs.shape != self._x.shape:
            raise ValueError(f"observation must have shape ({self._architecture.obs_dim},), got {obs.shape}")
        x = self._x
        # obs - mean, cast to float32 on the way out (float64 beyond float32 range turns into inf, refused
        # below; NaN/inf minus a finite mean stays non-finite)
        np.subtract(obs, self._obs_mean, out=x, casting="same_kind")
        np.isfinite(x, out=self._finite)
        # count_nonzero is the cheapest reduction over a bool array (~3x faster than .all() here).
        if np.count_nonzero(self._finite) != x.size:
            raise ValueError("observation contains NaN/Inf")
        for w, b, h, scratch in self._hidden_steps:
            np.dot(w, x, out=h)  # np.dot: less dispatch overhead than np.matmul for matrix @ vector
            np.add(h, b, out=h)
            self._hidden(h, scratch)
            x = h
        w, b, y = self._last_step
        np.dot(w, x, out=y)
        np.add(y, b, out=y)
        if not self._fold_output:
            self._output(y)
            np.multiply(y, self._action_std, out=y)
            np.add(y, self._action_mean, out=y)
        return y.astype(np.float64)

    def select_actions(self, obs_batch) -> np.ndarray:
        """Actions for a batch of observations shaped (B, obs_dim), as a new (B, action_dim) float64 array."""
        obs_dim = self._architecture.obs_dim
        x = np.asarray(obs_batch, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != obs_dim:
            raise ValueError(f"observation batch must have shape (B, {obs_dim}), got {x.shape}")
        bad_rows = np.flatnonzero(~np.isfinite(x).all(axis=1))
        if bad_rows.size:
            raise ValueError(f"observation contains NaN/Inf (batch rows {bad_rows[:10].tolist()})")
        x = (x - self._obs_mean) * self._obs_scale
        for w, b in self._layers[:-1]:
            x = x @ w.T + b
            self._hidden(x)
        w, b = self._layers[-1]
        y = x @ w.T + b
        if self._output is not None:
            self._output(y)
        return (y * self._action_std + self._action_mean).astype(np.float64)

    def flops_per_action(self) -> int:
        """Floating-point operations of one forward pass, counting a multiply-add as two.

        FLOPs = 2*obs_dim                         (subtract mean, multiply by 1/std)
              + sum over layers of 2*in*out + out (W x as in*out multiply-adds, plus the bias add)
              + 2*action_dim                      (multiply by action_std, add action_mean)
        Activations are not counted: they are element-wise comparisons or transcendental
        functions whose cost is not a multiply-add and is small next to the matrix products.
        """
        arch = self._architecture
        layers = sum(2 * i * o + o for o, i in arch.layer_shapes())
        return 2 * arch.obs_dim + layers + 2 * arch.action_dim
