"""WARPD checkpoints: one safetensors file, never pickle.

Tensors are stored by name; the header's metadata holds JSON: the training config, the
observation/action/task names, library versions, a format version, and a SHA-256 over every
tensor's name, dtype, shape and bytes, verified on load. A file that is not a WARPD checkpoint, is
truncated or corrupt, or was made for another architecture is refused with a clear error.
"""
from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from warpd_core.errors import WarpdError
from warpd_core.policies.warpd.config import TrainConfig
from warpd_core.policies.warpd.modeling import WarpdModel

FORMAT = "warpd-checkpoint"
FORMAT_VERSION = 1
MAX_BYTES = 256 * 1024 * 1024  # refuse absurd files before reading them


def content_hash(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _versions() -> dict:
    out = {}
    for dist in ("torch", "diffusers", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def save_checkpoint(model: WarpdModel, path: str | Path, extra: dict | None = None) -> Path:
    """Write atomically (temp file + rename), so a crash never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "config": model.config.to_dict(),
        "obs_names": model.obs_names, "action_names": model.action_names, "task_names": model.task_names,
        "architecture": {"layer_sizes": list(model.architecture.layer_sizes),
                         "activation": model.architecture.activation,
                         "output_activation": model.architecture.output_activation},
        "versions": _versions(), "sha256": content_hash(tensors), "extra": extra or {},
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"warpd": json.dumps(meta)})
    os.replace(tmp, path)
    return path


def read_metadata(path: str | Path) -> dict:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise WarpdError(f"checkpoint {path} does not exist", "train one with `warpd train --config ...`")
    if path.stat().st_size > MAX_BYTES:
        raise WarpdError(f"{path} is {path.stat().st_size} bytes, more than a WARPD checkpoint may be ({MAX_BYTES})")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("warpd")
    except (SafetensorError, OSError, ValueError) as exc:
        raise WarpdError(f"{path} is not a readable safetensors file ({exc})", "it may be truncated or corrupt") from None
    if raw is None:
        raise WarpdError(f"{path} is a safetensors file but not a WARPD checkpoint (no 'warpd' metadata)")
    meta = json.loads(raw)
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise WarpdError(f"{path}: unsupported checkpoint format {meta.get('format')} v{meta.get('format_version')}",
                         f"this version reads {FORMAT} v{FORMAT_VERSION}")
    return meta


def load_checkpoint(path: str | Path, device: str = "cpu") -> WarpdModel:
    meta = read_metadata(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WarpdError(f"{path}: tensors cannot be read ({exc})", "the file may be truncated or corrupt") from None
    if content_hash(tensors) != meta["sha256"]:
        raise WarpdError(f"{path}: content hash mismatch, the tensors were modified or corrupted")
    config = TrainConfig.from_dict(meta["config"], source=f"{path} config")
    model = WarpdModel(config, meta["obs_names"], meta["action_names"], meta["task_names"])
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise WarpdError(f"{path} does not match the WARPD architecture its config describes: "
                         f"{str(exc).splitlines()[0]}", "was it written by another version of warpd?") from None
    return model.to(device).eval()
