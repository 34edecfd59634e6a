"""Deterministic stand-in policies for transport tests, benchmarks and the round-trip demo.

A receiver can rebuild exactly what a sender sent from (layer_sizes, policy_id, seed) alone, so
a round trip can be checked bit for bit without shipping a checksum. They are random MLPs, not
trained ones: never actuate a robot with them.
"""
from __future__ import annotations

import numpy as np

from warpd_core.runtime.policy_spec import GeneratedPolicy, MLPArchitecture


def synthetic_policy(layer_sizes, policy_id: int = 1, seed: int = 0, latent_dim: int = 16,
                     task: str = "synthetic", valid_for_s: float = 1.0) -> GeneratedPolicy:
    arch = MLPArchitecture(tuple(layer_sizes))
    rng = np.random.default_rng([seed, policy_id])
    return GeneratedPolicy(
        architecture=arch,
        weights=(rng.standard_normal(arch.n_params()) * 0.1).astype(np.float32),
        obs_mean=rng.standard_normal(arch.obs_dim).astype(np.float32),
        obs_std=rng.uniform(0.5, 2.0, arch.obs_dim).astype(np.float32),
        action_mean=np.zeros(arch.action_dim, np.float32),
        action_std=np.ones(arch.action_dim, np.float32),
        latent=rng.standard_normal(latent_dim).astype(np.float32),
        policy_id=policy_id,
        task=task,
        valid_for_s=valid_for_s,
    )


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two float32 arrays are identical bit for bit (NaN payloads and -0.0 included)."""
    a = np.ascontiguousarray(a, np.float32)
    b = np.ascontiguousarray(b, np.float32)
    return a.shape == b.shape and bool(np.array_equal(a.view(np.uint32), b.view(np.uint32)))
