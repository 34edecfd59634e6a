"""Diffusion Policy checkpoints: one safetensors file with JSON metadata, never pickle.

Same file plumbing and guarantees as WARPD's (warpd_core.policies.checkpoint_io): tensors by
name (the normalisation ranges are buffers, so they travel with the weights), the resolved
config, observation/action/task names, library versions and a SHA-256 verified on load.
"""
from __future__ import annotations

from pathlib import Path

from warpd_core.policies.checkpoint_io import (load_state_strict, load_verified_tensors, read_checkpoint_metadata,
                                               write_checkpoint)
from warpd_core.policies.dp.config import DPConfig
from warpd_core.policies.dp.modeling import DPModel

FORMAT = "warpd-dp-checkpoint"
FORMAT_VERSION = 1
METADATA_KEY = "warpd_dp"


def save_checkpoint(model: DPModel, path: str | Path, extra: dict | None = None) -> Path:
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": model.config.to_dict(),
            "obs_names": model.obs_names, "action_names": model.action_names, "task_names": model.task_names,
            "n_parameters": model.n_parameters(), "extra": extra or {}}
    return write_checkpoint(model, path, METADATA_KEY, meta)


def read_metadata(path: str | Path) -> dict:
    return read_checkpoint_metadata(path, METADATA_KEY, FORMAT, FORMAT_VERSION, "Diffusion Policy",
                                    "train one with `warpd train --policy dp --config ...`")


def load_checkpoint(path: str | Path, device: str = "cpu") -> DPModel:
    meta = read_metadata(path)
    tensors = load_verified_tensors(path, meta)
    config = DPConfig.from_dict(meta["config"], source=f"{path} config")
    model = DPModel(config, meta["obs_names"], meta["action_names"], meta["task_names"])
    load_state_strict(model, tensors, path, "Diffusion Policy")
    return model.to(device).eval()
