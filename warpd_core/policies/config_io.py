"""Strict YAML -> nested-dataclass loading, shared by every policy's training config.

Unknown keys and values of the wrong type are errors (with the known keys as a hint), so a typo
in a config file never silently trains the default. The defaults of the dataclass fields decide
the expected types: bool, int, float (ints accepted), str, a tuple (of positive ints, or of
strings where the field is annotated `tuple[str, ...]`), or a nested dataclass.
"""
from __future__ import annotations

import dataclasses
from dataclasses import fields
from pathlib import Path

import yaml

from warpd_core.errors import WarpdError


def read_yaml(path: str | Path) -> dict:
    """The raw mapping of a config file, or a clear error (before any key is checked)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise WarpdError(f"cannot read training config {path}: {exc.strerror}",
                         "configs live in config/, e.g. config/train_reach_around.yaml") from None
    except yaml.YAMLError as exc:
        raise WarpdError(f"{path} is not valid YAML: {exc}") from None
    if data is not None and not isinstance(data, dict):
        raise WarpdError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data or {}


def build_dataclass(cls, data, where: str):
    """An instance of dataclass `cls` from a mapping, checked key by key; `where` labels errors."""
    if not isinstance(data, dict):
        raise WarpdError(f"{where}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise WarpdError(f"{where}: unknown key(s) {unknown}", f"known keys: {', '.join(known)}")
    kwargs = {}
    for name, value in data.items():
        default = getattr(cls(), name)
        label = f"{where}: {name}"
        if dataclasses.is_dataclass(default):
            kwargs[name] = build_dataclass(type(default), value, label)
        else:
            kwargs[name] = _coerce(value, default, label, str(known[name].type))
    return cls(**kwargs)


def _coerce(value, default, label, annotation: str = ""):
    if value is None and annotation.replace(" ", "").endswith("|None"):  # optional: null leaves it unset
        return None
    if default is None:  # an optional string (a path)
        if not isinstance(value, str):
            raise WarpdError(f"{label} must be a string or null, got {value!r}")
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, tuple) and annotation.replace(" ", "").startswith("tuple[str"):
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    elif isinstance(default, tuple):
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, int) and v > 0 for v in value)
        value = tuple(value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        raise WarpdError(f"{label} must be like {default!r} ({type(default).__name__}), got {value!r}")
    return value
