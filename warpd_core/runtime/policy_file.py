"""A generated policy on disk: safetensors arrays + JSON metadata, never pickle.

What `warpd sample` writes, and what tools can load, validate, run or publish later.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from warpd_core.errors import WarpdError
from warpd_core.runtime.policy_spec import GeneratedPolicy, MLPArchitecture

ARRAYS = ("weights", "obs_mean", "obs_std", "action_mean", "action_std", "latent")
FORMAT = "warpd-policy-v1"


def save_policy(policy: GeneratedPolicy, path: str | Path) -> Path:
    policy.validate()
    path = Path(path)
    arch = policy.architecture
    meta = {"format": FORMAT, "layer_sizes": list(arch.layer_sizes), "activation": arch.activation,
            "output_activation": arch.output_activation, "policy_id": policy.policy_id,
            "planner_id": policy.planner_id, "task": policy.task, "joint_names": list(policy.joint_names),
            "stamp_ns": policy.stamp_ns, "valid_for_s": policy.valid_for_s}
    tmp = path.with_name(path.name + ".tmp")
    save_file({name: np.ascontiguousarray(getattr(policy, name)) for name in ARRAYS}, str(tmp),
              metadata={"warpd_policy": json.dumps(meta)})
    os.replace(tmp, path)
    return path


def load_policy(path: str | Path) -> GeneratedPolicy:
    """Read and validate a policy file; a bad file is a WarpdError, never a traceback."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="np") as f:
            raw = (f.metadata() or {}).get("warpd_policy")
        arrays = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WarpdError(f"{path} is not a readable policy file ({exc})") from None
    if raw is None:
        raise WarpdError(f"{path} is a safetensors file but not a WARPD policy")
    meta = json.loads(raw)
    if meta.get("format") != FORMAT or set(arrays) != set(ARRAYS):
        raise WarpdError(f"{path}: not a {FORMAT} file (format {meta.get('format')}, arrays {sorted(arrays)})")
    arch = MLPArchitecture(tuple(meta["layer_sizes"]), meta["activation"], meta["output_activation"])
    policy = GeneratedPolicy(arch, **arrays, policy_id=meta["policy_id"], planner_id=meta["planner_id"],
                             task=meta["task"], joint_names=tuple(meta["joint_names"]), stamp_ns=meta["stamp_ns"],
                             valid_for_s=meta["valid_for_s"])
    policy.validate()
    return policy
