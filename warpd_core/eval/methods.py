"""Evaluation methods: a name -> a picklable policy factory for the episode runner.

A method is a *kind* (how to turn a checkpoint into a policy) plus, for learned kinds, a
checkpoint. The named methods and their default checkpoints live in config/eval.yaml; any
`name=path/to/checkpoint.safetensors` adds another, its kind read from the checkpoint itself.
Everything is checked here, in the main process, so a bad name or a missing checkpoint is one
clear error before any worker starts, not a traceback from inside a pool.

The Diffusion Policy kind is imported only when used, so evaluating WARPD never needs it.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from warpd_core.errors import WarpdError
from warpd_core.policies.common.samplers import SAMPLERS

KINDS = ("expert", "warpd", "dp")
TRAIN_HINT = {"warpd": "train one with `warpd train --config config/train_reach_around.yaml`",
              "dp": "train one with `warpd train --policy dp --config config/train_dp_reach_around.yaml`"}


@dataclass(frozen=True)
class Method:
    name: str
    kind: str
    checkpoint: str | None = None
    steps: int | None = None  # this method's own diffusion steps (config/eval.yaml `steps`), over --steps
    sampler: str | None = None  # this method's own sampler (ddim | dpm); None: the checkpoint's

    @property
    def replans(self) -> bool:
        """Whether the method is asked for a new plan every K steps (the expert runs closed loop)."""
        return self.kind != "expert"

    def factory(self, task: str, steps: int | None = None):
        """The picklable policy factory for `task`; `steps` overrides the diffusion steps unless the
        method has its own."""
        if self.kind == "expert":
            from warpd_core.eval.runner import expert_policy

            return expert_policy
        steps = self.steps if self.steps is not None else steps
        if self.kind == "warpd":
            from warpd_core.policies.warpd.planner import PlannerFactory

            return PlannerFactory(self.checkpoint, task, steps=steps, sampler=self.sampler)
        return _dp_module("planner", self).DPPlannerFactory(self.checkpoint, task, steps=steps,
                                                            sampler=self.sampler or "ddim")

    def metadata(self) -> dict:
        """The checkpoint's metadata record (config, task names, ...); {} for the expert."""
        if self.kind == "expert":
            return {}
        if self.kind == "warpd":
            from warpd_core.policies.warpd.checkpoint import read_metadata

            return read_metadata(self.checkpoint)
        return _dp_module("checkpoint", self).read_metadata(self.checkpoint)

    def check(self, tasks) -> None:
        """Fail now, clearly, if the checkpoint is missing, unreadable or does not know a task."""
        if self.kind == "expert":
            return
        known = self.metadata().get("task_names", [])
        missing = [t for t in tasks if t not in known]
        if missing:
            raise WarpdError(f"method {self.name!r}: checkpoint {self.checkpoint} was not trained on {missing}",
                             f"it knows {', '.join(known)}; pick those with --tasks or another checkpoint")

    def dataset_path(self, task: str) -> Path | None:
        """Where the demonstrations this method learned `task` from live (None for the expert)."""
        if self.kind == "expert":
            return None
        from warpd_core.policies.config_io import build_dataclass
        from warpd_core.policies.common.config import DataConfig

        data = self.metadata().get("config", {}).get("data")
        return build_dataclass(DataConfig, data, f"{self.checkpoint} data").dataset_path(task) if data else None


def _dp_module(name: str, method: Method):
    import importlib

    try:
        return importlib.import_module(f"warpd_core.policies.dp.{name}")
    except ImportError as exc:
        raise WarpdError(f"method {method.name!r} needs the Diffusion Policy baseline, which this checkout lacks "
                         f"({exc})", "evaluate without it, e.g. --methods expert,warpd") from None


def checkpoint_kind(path: str | Path) -> str:
    """'warpd' or 'dp' (the FLOPs counter tells them apart), any unreadable file a clear error."""
    from safetensors import SafetensorError

    from warpd_core.eval.flops import checkpoint_kind as kind_from_metadata

    path = Path(path)
    if not path.is_file():
        raise WarpdError(f"checkpoint {path} does not exist", "give the path of a checkpoint.safetensors")
    try:
        return kind_from_metadata(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise WarpdError(f"{path} is not a readable safetensors file ({exc})",
                         "it may be truncated or corrupt") from None


def registry_from_config(config: dict, source: str) -> dict[str, Method]:
    """The `methods` mapping of config/eval.yaml as Methods, checked for unknown kinds."""
    methods = config.get("methods")
    if not isinstance(methods, dict) or not methods:
        raise WarpdError(f"{source}: `methods` must map method names to {{kind, checkpoint}}")
    registry = {}
    for name, entry in methods.items():
        if not isinstance(entry, dict) or entry.get("kind") not in KINDS:
            raise WarpdError(f"{source}: methods.{name} needs `kind`, one of {', '.join(KINDS)}")
        if entry["kind"] != "expert" and not entry.get("checkpoint"):
            raise WarpdError(f"{source}: methods.{name} (kind {entry['kind']}) needs a `checkpoint`")
        unknown = sorted(set(entry) - {"kind", "checkpoint", "steps", "sampler"})
        steps, sampler = entry.get("steps"), entry.get("sampler")
        if unknown or (steps is not None and (not isinstance(steps, int) or steps < 1)) or (
                sampler is not None and sampler not in SAMPLERS):
            raise WarpdError(f"{source}: methods.{name}: unknown keys {unknown}, or steps {steps!r} / sampler "
                             f"{sampler!r} invalid", f"keys: kind, checkpoint, steps (>= 1), sampler "
                             f"({', '.join(SAMPLERS)})")
        registry[name] = Method(str(name), entry["kind"], entry.get("checkpoint"), steps, sampler)
    return registry


def resolve_methods(specs, registry: dict[str, Method], checkpoints: dict[str, str] | None = None) -> list[Method]:
    """['warpd', 'mine=runs/x/checkpoint.safetensors'] -> Methods; `checkpoints` overrides by name."""
    checkpoints = dict(checkpoints or {})
    methods = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if sep:
            if not name or not path:
                raise WarpdError(f"method {spec!r}: expected NAME=CHECKPOINT")
            methods.append(Method(name, checkpoint_kind(path), path))
        elif name in registry:
            methods.append(registry[name])
        else:
            close = difflib.get_close_matches(name, registry, n=3)
            raise WarpdError(f"unknown method {name!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""),
                             f"known methods: {', '.join(registry)}; or give NAME=path/to/checkpoint.safetensors")
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise WarpdError(f"a method is named twice in {names}")
    unused = sorted(set(checkpoints) - set(names))
    if unused:
        raise WarpdError(f"--checkpoint given for {unused}, which is not among the methods {names}")
    resolved = []
    for method in methods:
        if method.name in checkpoints:
            if method.kind == "expert":
                raise WarpdError(f"method {method.name!r} is the scripted expert and takes no checkpoint")
            method = Method(method.name, checkpoint_kind(checkpoints[method.name]), checkpoints[method.name],
                            method.steps, method.sampler)
        if method.checkpoint is not None and not Path(method.checkpoint).is_file():
            raise WarpdError(f"method {method.name!r}: checkpoint {method.checkpoint} does not exist",
                             TRAIN_HINT.get(method.kind, "") + f", or point at one with --checkpoint "
                             f"{method.name}=PATH, or leave {method.name} out of --methods")
        resolved.append(method)
    return resolved
