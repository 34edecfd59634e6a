"""The numeric contract of a generated policy: an MLP architecture plus its flat weights.

This is the numpy twin of ``warpd_ros/msg/PolicyWeights.msg``. The planner fills it, the
message conversion carries it, and the controller runs it only after :meth:`validate` passed.
Validation lives here, once, so every producer and consumer rejects the same things for the
same stated reason.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from warpd_core.errors import PolicyValidationError

ACTIVATIONS = ("relu", "tanh", "elu", "gelu")
OUTPUT_ACTIVATIONS = ("identity", "tanh")

# Bounds that reject absurd declared sizes before anything is allocated. A WARPD policy is a
# *small* MLP (the default is ~10^4..10^5 parameters); these leave two orders of magnitude room.
MAX_LAYER_ENTRIES = 16
MAX_LAYER_WIDTH = 4096
MAX_PARAMS = 4_000_000


def as_float32_vector(values, name: str) -> np.ndarray:
    """`values` as a 1-D float32 array (no copy when it already is one), or a clear error."""
    try:
        arr = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise PolicyValidationError("dtype", f"{name} must be numbers convertible to float32: {exc}") from None
    if arr.ndim != 1:
        raise PolicyValidationError("shape", f"{name} must be a flat 1-D array, got shape {arr.shape}")
    return arr


@dataclass(frozen=True)
class MLPArchitecture:
    """[obs_dim, hidden..., action_dim] with a hidden and an output activation."""

    layer_sizes: tuple[int, ...]
    activation: str = "relu"
    output_activation: str = "identity"

    def __post_init__(self):
        object.__setattr__(self, "layer_sizes", tuple(int(s) for s in self.layer_sizes))

    @property
    def obs_dim(self) -> int:
        return self.layer_sizes[0]

    @property
    def action_dim(self) -> int:
        return self.layer_sizes[-1]

    def layer_shapes(self) -> list[tuple[int, int]]:
        """(out, in) of every weight matrix, in order."""
        return [(o, i) for i, o in zip(self.layer_sizes[:-1], self.layer_sizes[1:])]

    def n_params(self) -> int:
        """Length of the flat weight vector: sum over layers of out*in + out."""
        return sum(o * i + o for o, i in self.layer_shapes())

    def validate(self) -> None:
        sizes = self.layer_sizes
        if not 2 <= len(sizes) <= MAX_LAYER_ENTRIES:
            raise PolicyValidationError(
                "architecture",
                f"layer_sizes needs 2..{MAX_LAYER_ENTRIES} entries [obs_dim, hidden..., action_dim], got {len(sizes)}",
            )
        bad = [s for s in sizes if not 1 <= s <= MAX_LAYER_WIDTH]
        if bad:
            raise PolicyValidationError(
                "architecture", f"layer_sizes {list(sizes)} has widths outside 1..{MAX_LAYER_WIDTH}: {bad}"
            )
        if self.n_params() > MAX_PARAMS:
            raise PolicyValidationError(
                "architecture", f"layer_sizes {list(sizes)} needs {self.n_params()} parameters, more than {MAX_PARAMS}"
            )
        if self.activation not in ACTIVATIONS:
            raise PolicyValidationError(
                "activation", f"unknown activation {self.activation!r}; known: {', '.join(ACTIVATIONS)}"
            )
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise PolicyValidationError(
                "activation",
                f"unknown output activation {self.output_activation!r}; known: {', '.join(OUTPUT_ACTIVATIONS)}",
            )


@dataclass
class GeneratedPolicy:
    """One generated policy with everything needed to run it and to tell where it came from."""

    architecture: MLPArchitecture
    weights: np.ndarray
    obs_mean: np.ndarray
    obs_std: np.ndarray
    action_mean: np.ndarray
    action_std: np.ndarray
    latent: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    policy_id: int = 0
    planner_id: str = ""
    task: str = ""
    joint_names: tuple[str, ...] = ()
    command_interface: str = ""  # "velocity" | "position"; "" = unknown (older planners), read as velocity
    stamp_ns: int = 0
    valid_for_s: float = 0.0
    auth_tag: bytes = b""

    def __post_init__(self):
        for name in ("weights", "obs_mean", "obs_std", "action_mean", "action_std", "latent"):
            setattr(self, name, as_float32_vector(getattr(self, name), name))
        self.joint_names = tuple(self.joint_names)
        self.auth_tag = bytes(self.auth_tag)

    def validate(self) -> None:
        """Raise PolicyValidationError unless this policy is safe to evaluate.

        Checks the architecture, that every array has the length the architecture implies, that
        all values are finite, that scales are strictly positive, and that ``valid_for_s`` is a
        finite non-negative duration. Freshness against a clock is the consumer's job (it owns
        the clock).
        """
        arch = self.architecture
        arch.validate()
        expected = arch.n_params()
        if self.weights.size != expected:
            raise PolicyValidationError(
                "weights_size",
                f"weights has {self.weights.size} values but layer_sizes {list(arch.layer_sizes)} needs {expected}",
            )
        for name, dim in (("obs_mean", arch.obs_dim), ("obs_std", arch.obs_dim),
                          ("action_mean", arch.action_dim), ("action_std", arch.action_dim)):
            arr = getattr(self, name)
            if arr.size != dim:
                raise PolicyValidationError(
                    "normalisation_size", f"{name} has {arr.size} values but the architecture needs {dim}"
                )
            if not np.isfinite(arr).all():
                raise PolicyValidationError("normalisation_nonfinite", f"{name} contains NaN or Inf")
        for name in ("obs_std", "action_std"):
            if not (getattr(self, name) > 0).all():
                raise PolicyValidationError("normalisation_scale", f"{name} must be strictly positive")
        if not np.isfinite(self.weights).all():
            bad = int(np.size(self.weights) - np.count_nonzero(np.isfinite(self.weights)))
            raise PolicyValidationError("weights_nonfinite", f"weights contain {bad} NaN/Inf values")
        if not np.isfinite(self.latent).all():
            raise PolicyValidationError("latent_nonfinite", "latent contains NaN or Inf")
        if not (math.isfinite(self.valid_for_s) and self.valid_for_s >= 0):
            raise PolicyValidationError("valid_for", f"valid_for must be finite and >= 0 s, got {self.valid_for_s}")
        if self.joint_names and len(set(self.joint_names)) != len(self.joint_names):
            raise PolicyValidationError("joint_names", f"joint_names has duplicates: {list(self.joint_names)}")

    def layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(W, b) views into the flat weights, W shaped (out, in). Call after validate()."""
        out, offset = [], 0
        for o, i in self.architecture.layer_shapes():
            w = self.weights[offset:offset + o * i].reshape(o, i)
            offset += o * i
            b = self.weights[offset:offset + o]
            offset += o
            out.append((w, b))
        return out
