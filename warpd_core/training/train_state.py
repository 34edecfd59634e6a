"""Resumable training state (model, optimiser, step, RNG) in safetensors + JSON, never pickle."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def save_train_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, stage: int,
                     step: int) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for idx, state in opt["state"].items():
        for key, value in state.items():
            tensors[f"optim.{idx}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {"stage": stage, "step": step, "param_groups": opt["param_groups"]}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"warpd_train_state": json.dumps(meta)})
    os.replace(tmp, path)


def load_train_state(path: Path, model: torch.nn.Module, optimizer_for_stage) -> tuple[int, int, torch.optim.Optimizer]:
    """Restore into `model`; `optimizer_for_stage(stage)` builds the optimiser to load into."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["warpd_train_state"])
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    optimizer = optimizer_for_stage(meta["stage"])
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    return meta["stage"], meta["step"], optimizer
