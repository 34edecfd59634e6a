"""WARPD hyperparameters: one dataclass per model and one for each training stage.

Everything an ML user tunes lives here and in config/train_<task>.yaml; the YAML is checked
strictly (unknown keys and wrong types are errors), so a typo never silently trains the default.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from warpd_core.errors import WarpdError
from warpd_core.policies.config_io import build_dataclass, read_yaml


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
    """Where the demonstrations come from; collected with the scripted expert when missing.

    One task: `task`, its dataset at `path`. Several tasks (multitask WARPD, e.g. MT10): list them
    in `tasks`; each gets its own dataset at `path`/<last part of the task name> (one dataset per
    task keeps `warpd collect` and the dataset format single-task), and `episodes`, `seed` and
    `hold_steps` apply to each. `task` is then ignored.
    """

    path: str = "runs/data/reach_around"
    task: str = "reach_around"
    tasks: tuple[str, ...] = ()  # several tasks, one dataset each under `path`; empty = just `task`
    episodes: int = 500
    seed: int = 0
    horizon: int = 16  # H: window length the encoder sees and L_BC / L_RO cover
    hold_steps: int = 16  # expert keeps demonstrating this long after success (how to stay at the goal)

    @property
    def task_list(self) -> list[str]:
        """The tasks trained on, in task-id order (the order of the model's task embeddings)."""
        return list(self.tasks) if self.tasks else [self.task]

    def dataset_path(self, task: str) -> Path:
        """Where the demonstrations of `task` live."""
        return Path(self.path) / task.rsplit("/", 1)[-1] if self.tasks else Path(self.path)

    def validate(self, where: str) -> None:
        """Unknown names in `tasks` fail here, at load time, not after minutes of data collection.

        The single `task` is not checked: it may name an imported dataset's task (e.g. "rosbag")."""
        from warpd_core.tasks.registry import task_names, unknown_task_error

        known = set(task_names())
        for name in self.tasks:
            if name not in known:
                error = unknown_task_error(name)
                raise WarpdError(f"{where}: data: {error}", error.hint)
        if len(set(self.task_list)) != len(self.task_list):
            raise WarpdError(f"{where}: data.tasks lists a task twice: {list(self.tasks)}")
        leaves = [t.rsplit("/", 1)[-1] for t in self.tasks]
        if len(set(leaves)) != len(leaves):
            raise WarpdError(f"{where}: data.tasks {list(self.tasks)} would share a dataset directory under {self.path}",
                             "give tasks whose names differ after the last '/'")


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
        config = build_dataclass(cls, data, source)
        config.data.validate(source)
        return config

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainConfig":
        return cls.from_dict(read_yaml(path), source=str(path))
