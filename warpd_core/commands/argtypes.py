"""argparse `type=` converters of every warpd_core command, in one place: bad values become usage
errors that say why, worded the same wherever the same kind of value is asked for."""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    value = _parse(int, text, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _parse(int, text, "an integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    value = _parse(float, text, "a number")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def float_array(text: str):
    """'0.1,2,-3' -> a float32 numpy array (a raw observation)."""
    import numpy as np

    try:
        return np.array([float(v) for v in text.split(",")], dtype=np.float32)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def name_list(text: str) -> tuple[str, ...]:
    """'a,b,c' -> ('a', 'b', 'c'); empty names and repeats are errors."""
    names = tuple(n.strip() for n in text.split(","))
    if not all(names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected distinct comma-separated names like a,b,c, got {text!r}")
    return names


def level(text: str) -> float:
    """A perturbation level, a number in [0, 1]."""
    value = _unit_interval(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"level must be a number in [0, 1], got {text!r}")
    return value


def level_list(text: str) -> tuple[float, ...]:
    """'0,0.5,1' -> (0.0, 0.5, 1.0), repeats dropped."""
    values = []
    for part in text.split(","):
        value = _unit_interval(part)
        if value is None:
            raise argparse.ArgumentTypeError(f"levels must be numbers in [0, 1] like 0,0.5,1; got {part!r}")
        values.append(value)
    return tuple(dict.fromkeys(values))


def horizon_list(text: str) -> tuple[int, ...]:
    """'16,32' -> (16, 32), repeats dropped; every action horizon >= 1."""
    try:
        values = tuple(dict.fromkeys(int(part) for part in text.split(",")))
    except ValueError:
        values = (0,)
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"horizons must be positive integers like 16,32,64; got {text!r}")
    return values


def seed_count_or_range(text: str) -> tuple[int, int] | int:
    """'50' (a count, from --seed-start) or '100-149' (an inclusive range)."""
    first, sep, last = text.partition("-")
    try:
        if not sep:
            count = int(first)
            if count < 1:
                raise ValueError
            return count
        lo, hi = int(first), int(last)
        if not 0 <= lo <= hi:
            raise ValueError
        return lo, hi
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count like 50 or an inclusive range like 100-149, "
                                         f"got {text!r}") from None


def name_path(text: str) -> tuple[str, str]:
    """'dp=runs/dp/checkpoint.safetensors' -> ('dp', 'runs/dp/checkpoint.safetensors')."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH like dp=runs/dp/checkpoint.safetensors, got {text!r}")
    return name, path


def config_override(text: str) -> tuple[list[str], object]:
    """'stage1.steps=200' -> (['stage1', 'steps'], 200); the value is read as YAML."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE like stage1.steps=200, got {text!r}")
    return key.split("."), yaml.safe_load(value)


def mode_probs(text: str) -> dict[str, float]:
    """'near=0.7,far=0.3' -> {'near': 0.7, 'far': 0.3}."""
    try:
        pairs = [item.split("=") for item in text.split(",")]
        probs = {name.strip(): float(value) for name, value in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MODE=PROB pairs like near=0.7,far=0.3, got {text!r}") from None
    if len(probs) != len(pairs):
        raise argparse.ArgumentTypeError(f"a mode appears twice in {text!r}")
    return probs


def _unit_interval(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0.0 <= value <= 1.0 else None


def _parse(kind, text: str, what: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
