"""WARPD hyperparameters: one dataclass per model and one for each training stage.

Everything an ML user tunes lives here and in config/train_<task>.yaml; the YAML is checked
strictly (unknown keys and wrong types are errors), so a typo never silently trains the default.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from warpd_core.policies.common.config import RunConfig


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
    # none: actions are learned as demonstrated. joint_position: position targets are learned as steps from the
    # measured position and published as targets (action_offset.py). auto: joint_position for position
    # actions, none otherwise. "none" is the default because every checkpoint written before this key was.
    action_offset: str = "none"


@dataclass
class HypernetConfig:
    """The decoder z -> policy weights (hypernet.py): `chunked`, one shared generator maps (z, chunk
    embedding) to each chunk of weights; or `low_rank`, base + U g(z) with g a trunk to `rank` features."""

    kind: str = "chunked"  # chunked | low_rank
    chunk_size: int = 256  # chunked only
    chunk_embedding_dim: int = 32  # chunked only
    rank: int = 32  # low_rank only: directions in weight space a latent can move the policy along
    hidden: tuple[int, ...] = (256, 256)  # the generator's (chunked) or the trunk's (low_rank) hidden layers
    init_scale: float = 0.1  # generated deltas start this small relative to the shared base policy


@dataclass
class WorldModelConfig:
    """p(s_{t+1} | s_t, a_t): a Gaussian MLP over the state change."""

    hidden: tuple[int, ...] = (256, 256)
    min_log_std: float = -3.0  # sigma >= 0.05 (normalised): the model-error floor on a deterministic sim
    max_log_std: float = 1.0


@dataclass
class LossConfig:
    """Weights of L_BC + L_TF + L_RO + beta_kl * L_KL (+ plan * L_plan); zero switches a term off."""

    bc: float = 1.0
    tf: float = 1.0
    ro: float = 0.1
    beta_kl: float = 1e-6
    # L_plan: the policy decoded from a window also imitates the demonstration at `plan_samples` later
    # steps of its episode, up to `plan_horizon` steps after the window's start (0: off). A plan runs
    # K steps at run time, not H: without it the policy is only taught the H steps it was encoded from.
    plan: float = 0.0
    plan_horizon: int = 0
    plan_samples: int = 8


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
    # What the denoiser predicts (epsilon | sample | v_prediction) and where a few-step sampler starts
    # (leading: t = 75, 50, 25, 0 for 4 of 100 steps; trailing: t = 99, 74, 49, 24). An epsilon model must
    # start "leading": at t = 99 its clean-latent estimate divides by sqrt(alpha_bar) = 5e-4. But a leading
    # start feeds pure noise where the model expects 38% signal, which pulls samples toward the mean latent
    # (samplers.py); a sample- or v-predicting model starts at t = 99 with no such mismatch.
    prediction: str = "epsilon"
    timestep_spacing: str = "leading"


LR_SCHEDULES = ("constant", "cosine")


@dataclass
class Stage2Config:
    steps: int = 6000
    batch_size: int = 512
    lr: float = 1e-3
    lr_schedule: str = "constant"  # constant | cosine (to 0 at the last step)
    ema_decay: float = 0.0  # > 0: the denoiser shipped is the moving average of its weights (e.g. 0.999)
    log_every: int = 100
    checkpoint_every: int = 2000


@dataclass
class TrainConfig(RunConfig):
    name: str = "warpd_reach_around"
    output: str = "runs/warpd_reach_around"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    hypernet: HypernetConfig = field(default_factory=HypernetConfig)
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    stage2: Stage2Config = field(default_factory=Stage2Config)

    def validate(self, where: str) -> None:
        """Choices fail at load time, not after stage 1 has trained for half an hour."""
        from warpd_core.errors import WarpdError
        from warpd_core.policies.warpd.action_offset import ACTION_OFFSETS
        from warpd_core.policies.warpd.hypernet import HYPERNET_KINDS
        from warpd_core.policies.common.samplers import PREDICTIONS, SAMPLERS, TIMESTEP_SPACINGS

        super().validate(where)
        for key, value, choices in (("hypernet.kind", self.hypernet.kind, HYPERNET_KINDS),
                                    ("policy.action_offset", self.policy.action_offset, ACTION_OFFSETS),
                                    ("diffusion.sampler", self.diffusion.sampler, SAMPLERS),
                                    ("diffusion.prediction", self.diffusion.prediction, PREDICTIONS),
                                    ("diffusion.timestep_spacing", self.diffusion.timestep_spacing,
                                     TIMESTEP_SPACINGS)):
            if value not in choices:
                raise WarpdError(f"{where}: {key} is {value!r}", f"use one of {', '.join(choices)}")
        if self.loss.plan and (self.loss.plan_horizon <= self.data.horizon or self.loss.plan_samples < 1):
            raise WarpdError(f"{where}: loss.plan needs loss.plan_horizon > data.horizon ({self.data.horizon}) and "
                             f"loss.plan_samples >= 1, got {self.loss.plan_horizon} and {self.loss.plan_samples}",
                             "e.g. plan_horizon 128 (the longest plan you will run) and plan_samples 8")
        if self.stage2.lr_schedule not in LR_SCHEDULES:
            raise WarpdError(f"{where}: stage2.lr_schedule is {self.stage2.lr_schedule!r}",
                             f"use one of {', '.join(LR_SCHEDULES)}")
        if not 0.0 <= self.stage2.ema_decay < 1.0:
            raise WarpdError(f"{where}: stage2.ema_decay is {self.stage2.ema_decay}", "use 0 (off) or e.g. 0.999")
        if self.diffusion.prediction == "epsilon" and self.diffusion.timestep_spacing == "trailing":
            raise WarpdError(f"{where}: diffusion.timestep_spacing trailing with prediction epsilon starts sampling "
                             "where the clean-latent estimate divides by ~5e-4 and the samples blow up",
                             "use prediction sample (or v_prediction) with trailing, or spacing leading")

