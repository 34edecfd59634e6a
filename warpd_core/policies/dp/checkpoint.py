"""Diffusion Policy checkpoints: one safetensors file with JSON metadata, never pickle.

Same file plumbing and guarantees as WARPD's (warpd_core.policies.checkpoint_io): tensors by
name (the normalisation ranges are buffers, so they travel with the weights), the resolved
config, observation/action/task names, library versions and a SHA-256 verified on load.
"""
from __future__ import annotations

from pathlib import Path

from warpd_core.policies.checkpoint_io import CheckpointFormat
from warpd_core.policies.dp.config import DPConfig
from warpd_core.policies.dp.modeling import DPModel

METADATA_KEY = "warpd_dp"
CHECKPOINT = CheckpointFormat("warpd-dp-checkpoint", 1, METADATA_KEY, "Diffusion Policy",
                              "train one with `warpd train --policy dp --config ...`", DPConfig, DPModel)
read_metadata = CHECKPOINT.read_metadata
load_checkpoint = CHECKPOINT.load


def save_checkpoint(model: DPModel, path: str | Path, extra: dict | None = None) -> Path:
    return CHECKPOINT.save(model, path, extra, n_parameters=model.n_parameters())
