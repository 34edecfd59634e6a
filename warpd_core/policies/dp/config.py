"""Diffusion Policy hyperparameters, read strictly from config/train_dp_<task>.yaml.

Same rules as WARPD's config (policies.common.config): unknown keys and wrong types are errors.
The `data` section is the shared DataConfig (same datasets, collected the same way); its
`horizon` (WARPD's window H) is unused here, DP's chunk length is `model.horizon`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from warpd_core.errors import WarpdError
from warpd_core.policies.common.config import RunConfig

AFTER_CHUNK = ("zero", "last")


@dataclass
class UNetConfig:
    """The conditional 1D temporal U-Net (DP paper, CNN variant)."""

    down_dims: tuple[int, ...] = (128, 256, 512)  # channels per level; the chunk halves in length per level
    kernel_size: int = 5
    n_groups: int = 8  # GroupNorm groups; must divide every entry of down_dims
    step_embedding_dim: int = 128  # diffusion-step embedding width
    task_embedding_dim: int = 16  # learned per-task vector in the condition (multitask)


@dataclass
class DPModelConfig:
    """What is predicted from what, and how it is diffused."""

    n_obs_steps: int = 2  # observation history length (padded by repeating the first obs of an episode)
    horizon: int = 16  # P: actions predicted per plan, a_t .. a_{t+P-1}; a multiple of 2^(levels-1)
    # what a plan outputs after its P actions when re-planning is less frequent than P (K > P):
    # "zero" = zero command (the controller's HOLD), "last" = repeat the chunk's last action
    after_chunk: str = "zero"
    train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    sample_steps: int = 10  # DDIM steps at run time
    min_range: float = 1e-2  # floor on (max - min) / 2 per feature, so constant features stay finite


@dataclass
class DPTrainingConfig:
    steps: int = 20000
    batch_size: int = 256
    lr: float = 1e-4
    weight_decay: float = 1e-6
    warmup_steps: int = 500  # linear LR warm-up, then cosine decay to 0 (as in the DP paper)
    grad_clip: float = 1.0
    log_every: int = 100
    checkpoint_every: int = 1000


@dataclass
class DPConfig(RunConfig):
    name: str = "dp_reach_around"
    output: str = "runs/dp_reach_around"
    model: DPModelConfig = field(default_factory=DPModelConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    train: DPTrainingConfig = field(default_factory=DPTrainingConfig)

    def validate(self, where: str) -> None:
        levels = len(self.unet.down_dims)
        if not levels:
            raise WarpdError(f"{where}: unet.down_dims is empty")
        if self.model.horizon % (2 ** (levels - 1)):
            raise WarpdError(f"{where}: model.horizon {self.model.horizon} must be a multiple of "
                             f"{2 ** (levels - 1)} for a U-Net with {levels} levels",
                             "pick a horizon like 16, 32, 64 or drop a level from unet.down_dims")
        bad = [d for d in self.unet.down_dims if d % self.unet.n_groups]
        if bad:
            raise WarpdError(f"{where}: unet.n_groups {self.unet.n_groups} does not divide down_dims {bad}")
        if self.unet.kernel_size % 2 == 0:
            raise WarpdError(f"{where}: unet.kernel_size must be odd (same-length convolutions)")
        if self.model.after_chunk not in AFTER_CHUNK:
            raise WarpdError(f"{where}: model.after_chunk must be one of {AFTER_CHUNK}, got {self.model.after_chunk!r}")
        if self.model.n_obs_steps < 1 or self.model.sample_steps < 1:
            raise WarpdError(f"{where}: model.n_obs_steps and model.sample_steps must be at least 1")
        super().validate(where)
