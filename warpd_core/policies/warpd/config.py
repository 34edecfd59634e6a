"""WARPD hyperparameters: one dataclass per model and one for each training stage.

Everything an ML user tunes lives here and in config/train_<task>.yaml; the YAML is checked
strictly (unknown keys and wrong types are errors), so a typo never silently trains the default.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from warpd_core.errors import WarpdError


@dataclass
class EncoderConfig:
    """q(z | window of H (state, action) pairs): an MLP over the flattened window."""

    latent_dim: int = 16
    hidden: tuple[int, ...] = (512, 512)


@dataclass
class PolicyConfig:
    """The generated closed-loop MLP: obs -> hidden... -> action, on normalised values."""

    hidden: tuple[int, ...] = (64, 64)
    activation: str = "elu"
    output_activation: str = "identity"


@dataclass
class HypernetConfig:
    """Chunked hypernetwork: one shared generator maps (z, chunk embedding) to a chunk of weights."""

    chunk_size: int = 256
    chunk_embedding_dim: int = 32
    hidden: tuple[int, ...] = (256, 256)
    init_scale: float = 0.1  # generated deltas start this small relative to the shared base policy


@dataclass
class WorldModelConfig:
    """p(s_{t+1} | s_t, a_t): a Gaussian MLP over the state change."""

    hidden: tuple[int, ...] = (256, 256)
    min_log_std: float = -3.0  # sigma >= 0.05 (normalised): the model-error floor on a deterministic sim
    max_log_std: float = 1.0


@dataclass
class LossConfig:
    """Weights of L_BC + L_TF + L_RO + beta_kl * L_KL (zero switches a term off)."""

    bc: float = 1.0
    tf: float = 1.0
    ro: float = 0.1
    beta_kl: float = 1e-6


@dataclass
class Stage1Config:
    steps: int = 4000
    batch_size: int = 256
    lr: float = 3e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    log_every: int = 50
    checkpoint_every: int = 500


@dataclass
class DiffusionConfig:
    """Latent diffusion p(z | s_0, task): diffusers DDPM for training, DDIM for sampling."""

    hidden: int = 512
    layers: int = 3
    time_embedding_dim: int = 64
    task_embedding_dim: int = 16
    train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    sample_steps: int = 10
    sampler: str = "ddim"  # ddim | dpm
    cond_dropout: float = 0.1  # drop the state condition this often (classifier-free guidance)
    guidance_scale: float = 1.0  # 1 = plain conditional sampling


@dataclass
class Stage2Config:
    steps: int = 6000
    batch_size: int = 512
    lr: float = 1e-3
    log_every: int = 100
    checkpoint_every: int = 2000


@dataclass
class DataConfig:
    """Where the demonstrations come from; collected with the scripted expert when missing."""

    path: str = "runs/data/reach_around"
    task: str = "reach_around"
    episodes: int = 500
    seed: int = 0
    horizon: int = 16  # H: window length the encoder sees and L_BC / L_RO cover
    hold_steps: int = 16  # expert keeps demonstrating this long after success (how to stay at the goal)


@dataclass
class TrainConfig:
    name: str = "warpd_reach_around"
    seed: int = 0
    output: str = "runs/warpd_reach_around"
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    hypernet: HypernetConfig = field(default_factory=HypernetConfig)
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    stage2: Stage2Config = field(default_factory=Stage2Config)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "TrainConfig":
        return _build(cls, data, source)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainConfig":
        return cls.from_dict(read_yaml(path), source=str(path))


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


def _build(cls, data, where):
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
            kwargs[name] = _build(type(default), value, label)
        else:
            kwargs[name] = _coerce(value, default, label)
    return cls(**kwargs)


def _coerce(value, default, label):
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, tuple):
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, int) and v > 0 for v in value)
        value = tuple(value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        raise WarpdError(f"{label} must be like {default!r} ({type(default).__name__}), got {value!r}")
    return value
