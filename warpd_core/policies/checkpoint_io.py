"""Safetensors checkpoints with JSON metadata and a content hash: the plumbing every policy shares.

A checkpoint is one safetensors file (never pickle). Its header metadata holds one JSON record
under a policy-specific key: format name and version, the training config, whatever the policy
needs to rebuild itself, library versions, and a SHA-256 over every tensor's name, dtype, shape
and bytes, verified on load. Each policy's own checkpoint module decides what goes in the record
and how to rebuild its model (a CheckpointFormat); this module writes, reads and verifies.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from warpd_core.errors import WarpdError

MAX_BYTES = 256 * 1024 * 1024  # refuse absurd files before reading them


def content_hash(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def library_versions() -> dict:
    out = {}
    for dist in ("torch", "diffusers", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def write_checkpoint(module: torch.nn.Module, path: str | Path, key: str, meta: dict) -> Path:
    """Save `module`'s state dict with `meta` (+ versions and sha256) under header key `key`.

    Written atomically (temp file + rename), so a crash never leaves half a checkpoint.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
    meta = {**meta, "versions": library_versions(), "sha256": content_hash(tensors)}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={key: json.dumps(meta)})
    os.replace(tmp, path)
    return path


def read_checkpoint_metadata(path: str | Path, key: str, fmt: str, version: int, label: str, train_hint: str) -> dict:
    """The JSON record under `key`, after checking size, readability, format and version."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise WarpdError(f"checkpoint {path} does not exist", train_hint)
    if path.stat().st_size > MAX_BYTES:
        raise WarpdError(f"{path} is {path.stat().st_size} bytes, more than a {label} checkpoint may be ({MAX_BYTES})")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(key)
    except (SafetensorError, OSError, ValueError) as exc:
        raise WarpdError(f"{path} is not a readable safetensors file ({exc})", "it may be truncated or corrupt") from None
    if raw is None:
        raise WarpdError(f"{path} is a safetensors file but not a {label} checkpoint (no '{key}' metadata)")
    meta = json.loads(raw)
    if meta.get("format") != fmt or meta.get("format_version") != version:
        raise WarpdError(f"{path}: unsupported checkpoint format {meta.get('format')} v{meta.get('format_version')}",
                         f"this version reads {fmt} v{version}")
    return meta


def load_verified_tensors(path: str | Path, meta: dict) -> dict[str, torch.Tensor]:
    """All tensors of the file, refused unless their hash matches the one recorded at save time."""
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WarpdError(f"{path}: tensors cannot be read ({exc})", "the file may be truncated or corrupt") from None
    if content_hash(tensors) != meta["sha256"]:
        raise WarpdError(f"{path}: content hash mismatch, the tensors were modified or corrupted")
    return tensors


def load_state_strict(module: torch.nn.Module, tensors: dict, path, label: str) -> None:
    """Load tensors into `module`, turning an architecture mismatch into a clear error."""
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise WarpdError(f"{path} does not match the {label} architecture its config describes: "
                         f"{str(exc).splitlines()[0]}", "was it written by another version of warpd?") from None


@dataclass(frozen=True)
class CheckpointFormat:
    """One policy family's checkpoint: its format name and version, header key, and the config and
    model classes it rebuilds. Every family stores the resolved config and the observation, action
    and task names, and rebuilds as model_class(config, obs_names, action_names, task_names)."""

    name: str
    version: int
    key: str  # the safetensors header metadata key holding the JSON record
    label: str  # the family as errors name it
    train_hint: str  # how to make one, for "does not exist"
    config_class: type
    model_class: type

    def save(self, model: torch.nn.Module, path: str | Path, extra: dict | None = None, **fields) -> Path:
        """Write `model` with the common record, the family's own `fields`, and `extra` (run facts)."""
        meta = {"format": self.name, "format_version": self.version, "config": model.config.to_dict(),
                "obs_names": model.obs_names, "action_names": model.action_names, "task_names": model.task_names,
                **fields, "extra": extra or {}}
        return write_checkpoint(model, path, self.key, meta)

    def read_metadata(self, path: str | Path) -> dict:
        return read_checkpoint_metadata(path, self.key, self.name, self.version, self.label, self.train_hint)

    def load(self, path: str | Path, device: str = "cpu") -> torch.nn.Module:
        meta = self.read_metadata(path)
        tensors = load_verified_tensors(path, meta)
        config = self.config_class.from_dict(meta["config"], source=f"{path} config")
        model = self.model_class(config, meta["obs_names"], meta["action_names"], meta["task_names"])
        load_state_strict(model, tensors, path, self.label)
        return model.to(device).eval()
