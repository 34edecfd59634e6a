"""WARPD checkpoints: one safetensors file, never pickle.

Tensors are stored by name; the header's metadata holds JSON: the training config, the
observation/action/task names, library versions, a format version, and a SHA-256 over every
tensor's name, dtype, shape and bytes, verified on load. A file that is not a WARPD checkpoint, is
truncated or corrupt, or was made for another architecture is refused with a clear error. The
file plumbing is shared with the other policies (warpd_core.policies.checkpoint_io).
"""
from __future__ import annotations

from pathlib import Path

from warpd_core.policies.checkpoint_io import (content_hash, load_state_strict, load_verified_tensors,
                                               read_checkpoint_metadata, write_checkpoint)
from warpd_core.policies.warpd.config import TrainConfig
from warpd_core.policies.warpd.modeling import WarpdModel

__all__ = ["content_hash", "load_checkpoint", "read_metadata", "save_checkpoint"]

FORMAT = "warpd-checkpoint"
FORMAT_VERSION = 1
METADATA_KEY = "warpd"


def save_checkpoint(model: WarpdModel, path: str | Path, extra: dict | None = None) -> Path:
    """Write atomically (temp file + rename), so a crash never leaves half a checkpoint."""
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "config": model.config.to_dict(),
        "obs_names": model.obs_names, "action_names": model.action_names, "task_names": model.task_names,
        "architecture": {"layer_sizes": list(model.architecture.layer_sizes),
                         "activation": model.architecture.activation,
                         "output_activation": model.architecture.output_activation},
        "extra": extra or {},
    }
    return write_checkpoint(model, path, METADATA_KEY, meta)


def read_metadata(path: str | Path) -> dict:
    return read_checkpoint_metadata(path, METADATA_KEY, FORMAT, FORMAT_VERSION, "WARPD",
                                    "train one with `warpd train --config ...`")


def load_checkpoint(path: str | Path, device: str = "cpu") -> WarpdModel:
    meta = read_metadata(path)
    tensors = load_verified_tensors(path, meta)
    config = TrainConfig.from_dict(meta["config"], source=f"{path} config")
    model = WarpdModel(config, meta["obs_names"], meta["action_names"], meta["task_names"])
    load_state_strict(model, tensors, path, "WARPD")
    return model.to(device).eval()
