"""The perturbation spec: what the world does to a policy, at one scalar level, from YAML.

One spec serves every task (and the ROS sim node): magnitudes are given at level 1 and scaled
linearly by `level` in [0, 1]. Event *timing* is drawn from the seed independently of the level,
so a sweep over levels applies the same events at growing strength, and a rollout is
reproducible from (task, level, seed).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import yaml

from warpd_core.errors import WarpdError


@dataclass(frozen=True)
class Push:
    """External force impulses on the task's push bodies (MuJoCo xfrc_applied), horizontal."""

    force: float = 20.0  # N at level 1
    rate_hz: float = 1.0  # expected pushes per second (Poisson arrivals)
    duration_s: float = 0.15


@dataclass(frozen=True)
class TargetShift:
    """The goal (or object) jumps once per episode, at a random moment."""

    distance: float = 0.08  # m at level 1
    at_fraction: tuple[float, float] = (0.1, 0.3)  # when, as a fraction of the task's max_steps


@dataclass(frozen=True)
class ObsNoise:
    std: float = 0.02  # Gaussian, added to every observation value, at level 1


@dataclass(frozen=True)
class ActionNoise:
    std: float = 0.3  # Gaussian, in action units, added before the task clips the action


@dataclass(frozen=True)
class ActionDelay:
    max_steps: int = 3  # commands arrive round(level * max_steps) control steps late


@dataclass(frozen=True)
class Dynamics:
    mass_scale: float = 0.5  # every body mass x U(1 - level*s, 1 + level*s), per episode
    friction_scale: float = 0.5  # every geom's sliding friction likewise


COMPONENTS = {"push": Push, "target_shift": TargetShift, "obs_noise": ObsNoise, "action_noise": ActionNoise,
              "action_delay": ActionDelay, "dynamics": Dynamics}


@dataclass(frozen=True)
class PerturbationSpec:
    """`level` 0 = no perturbation, 1 = every component at its configured magnitude.

    A component set to None is switched off whatever the level.
    """

    level: float = 0.0
    seed: int = 0
    push: Push | None = field(default_factory=Push)
    target_shift: TargetShift | None = field(default_factory=TargetShift)
    obs_noise: ObsNoise | None = field(default_factory=ObsNoise)
    action_noise: ActionNoise | None = field(default_factory=ActionNoise)
    action_delay: ActionDelay | None = field(default_factory=ActionDelay)
    dynamics: Dynamics | None = field(default_factory=Dynamics)

    def __post_init__(self):
        if not (isinstance(self.level, (int, float)) and 0.0 <= self.level <= 1.0):
            raise WarpdError(f"perturbation level must be a number in [0, 1], got {self.level!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise WarpdError(f"perturbation seed must be an integer, got {self.seed!r}")
        for name in COMPONENTS:
            component = getattr(self, name)
            if component is not None:
                _check_component(name, component)

    def at_level(self, level: float) -> "PerturbationSpec":
        return replace(self, level=float(level))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def none(cls) -> "PerturbationSpec":
        return cls(level=0.0)

    @classmethod
    def from_dict(cls, data: dict, source: str = "perturbation spec") -> "PerturbationSpec":
        if not isinstance(data, dict):
            raise WarpdError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
        known = {"level", "seed", *COMPONENTS}
        unknown = sorted(set(data) - known)
        if unknown:
            raise WarpdError(f"{source}: unknown key(s) {unknown}", "known keys: " + ", ".join(sorted(known)))
        kwargs = {k: data[k] for k in ("level", "seed") if k in data}
        for name, cls_ in COMPONENTS.items():
            if name in data:
                kwargs[name] = _component_from(name, cls_, data[name], source)
        try:
            return cls(**kwargs)
        except WarpdError as exc:
            raise WarpdError(f"{source}: {exc}", exc.hint) from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> "PerturbationSpec":
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise WarpdError(f"cannot read perturbation spec {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise WarpdError(f"{path} is not valid YAML: {exc}") from None
        return cls.from_dict(data or {}, source=str(path))


def _component_from(name, cls_, value, source):
    if value is None or value is False:
        return None
    if value is True:
        return cls_()
    if not isinstance(value, dict):
        raise WarpdError(f"{source}: {name} must be a mapping, null or false, got {value!r}")
    allowed = {f.name for f in fields(cls_)}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise WarpdError(f"{source}: unknown key(s) {unknown} in {name}", f"{name} takes: {', '.join(sorted(allowed))}")
    if "at_fraction" in value:
        value = dict(value, at_fraction=tuple(value["at_fraction"]))
    return cls_(**value)


def _check_component(name, component):
    for f in fields(component):
        value = getattr(component, f.name)
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 or v != v or v == float("inf"):
                raise WarpdError(f"{name}.{f.name} must be a finite number >= 0, got {value!r}")
    if isinstance(component, TargetShift):
        lo, hi = component.at_fraction if len(component.at_fraction) == 2 else (None, None)
        if lo is None or not 0 <= lo <= hi <= 1:
            raise WarpdError(f"target_shift.at_fraction must be [low, high] within [0, 1], got {component.at_fraction}")
    if isinstance(component, ActionDelay) and int(component.max_steps) != component.max_steps:
        raise WarpdError(f"action_delay.max_steps must be an integer, got {component.max_steps}")
