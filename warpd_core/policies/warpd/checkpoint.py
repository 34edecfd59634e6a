"""WARPD checkpoints: one safetensors file, never pickle.

Tensors are stored by name; the header's metadata holds JSON: the training config, the
observation/action/task names, library versions, a format version, and a SHA-256 over every
tensor's name, dtype, shape and bytes, verified on load. A file that is not a WARPD checkpoint, is
truncated or corrupt, or was made for another architecture is refused with a clear error. The
file plumbing is shared with the other policies (warpd_core.policies.checkpoint_io).
"""
from __future__ import annotations

from pathlib import Path

from warpd_core.policies.checkpoint_io import CheckpointFormat, content_hash
from warpd_core.policies.warpd.config import TrainConfig
from warpd_core.policies.warpd.modeling import WarpdModel

__all__ = ["content_hash", "load_checkpoint", "read_metadata", "save_checkpoint"]

METADATA_KEY = "warpd"
CHECKPOINT = CheckpointFormat("warpd-checkpoint", 1, METADATA_KEY, "WARPD", "train one with `warpd train --config ...`",
                              TrainConfig, WarpdModel)
read_metadata = CHECKPOINT.read_metadata
load_checkpoint = CHECKPOINT.load


def save_checkpoint(model: WarpdModel, path: str | Path, extra: dict | None = None) -> Path:
    """Write atomically (temp file + rename), so a crash never leaves half a checkpoint."""
    architecture = model.architecture
    return CHECKPOINT.save(model, path, extra, architecture={"layer_sizes": list(architecture.layer_sizes),
                                                             "activation": architecture.activation,
                                                             "output_activation": architecture.output_activation})
