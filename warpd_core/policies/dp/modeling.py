"""DPModel: a trained Diffusion Policy in one module — normalisation, denoiser, training loss, sampling.

Observations and actions are scaled feature-wise to [-1, 1] by the range seen in the training
data (as in the DP paper), which lets DDIM clip its sample estimates to that range. Training is
epsilon-prediction with diffusers' DDPMScheduler; sampling uses DDIMScheduler in
`model.sample_steps` steps (deterministic given the initial noise, so a seeded generator makes a
plan reproducible).

Alignment: with observation history o_{t-n+1..t}, the chunk is the next P actions a_t..a_{t+P-1}
(every predicted action is in the future; the DP paper also predicts n-1 past actions and skips
them at execution, which only costs compute).
"""
from __future__ import annotations

import numpy as np
import torch
from diffusers import DDPMScheduler
from torch import nn

from warpd_core.errors import WarpdError
from warpd_core.policies.dp.config import DPConfig, DPModelConfig
from warpd_core.policies.common import samplers
from warpd_core.policies.dp.unet import ConditionalUNet1D


def training_scheduler(config: DPModelConfig) -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=config.train_timesteps, beta_schedule=config.beta_schedule,
                         prediction_type="epsilon", clip_sample=True, clip_sample_range=1.0)


def sampling_scheduler(config: DPModelConfig, sampler: str = "ddim"):
    """DDIM or DPM-Solver++, both clipping their clean-sample estimates to [-1, 1], as DP trains."""
    return samplers.sampling_scheduler(training_scheduler(config).config, sampler)


class DPModel(nn.Module):
    def __init__(self, config: DPConfig, obs_names: list[str], action_names: list[str], task_names: list[str]):
        super().__init__()
        self.config = config
        self.obs_names, self.action_names, self.task_names = list(obs_names), list(action_names), list(task_names)
        self.obs_dim, self.action_dim = len(obs_names), len(action_names)
        mcfg, ucfg = config.model, config.unet
        self.n_obs_steps, self.horizon = mcfg.n_obs_steps, mcfg.horizon
        self.task_embedding = nn.Embedding(max(len(task_names), 1), ucfg.task_embedding_dim) \
            if ucfg.task_embedding_dim else None
        self.unet = ConditionalUNet1D(self.action_dim, mcfg.n_obs_steps * self.obs_dim + ucfg.task_embedding_dim, ucfg)
        # x_normalised = (x - offset) / scale maps the training range onto [-1, 1]
        for name, dim in (("obs_offset", self.obs_dim), ("obs_scale", self.obs_dim),
                          ("action_offset", self.action_dim), ("action_scale", self.action_dim)):
            self.register_buffer(name, torch.zeros(dim) if name.endswith("offset") else torch.ones(dim))

    def task_id(self, task: str) -> int:
        if task not in self.task_names:
            raise WarpdError(f"this checkpoint was not trained on task {task!r}",
                             f"it knows: {', '.join(self.task_names)}")
        return self.task_names.index(task)

    def set_normalization(self, obs: np.ndarray, actions: np.ndarray) -> None:
        """Per-feature ranges from training data; narrow ranges are widened to `min_range`."""
        floor = self.config.model.min_range
        for prefix, data in (("obs", obs), ("action", actions)):
            low, high = data.min(0), data.max(0)
            getattr(self, f"{prefix}_offset").copy_(torch.as_tensor((high + low) / 2))
            getattr(self, f"{prefix}_scale").copy_(torch.as_tensor(np.maximum((high - low) / 2, floor)))

    def normalize_obs(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.obs_offset) / self.obs_scale

    def normalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return (action - self.action_offset) / self.action_scale

    def condition(self, obs_history: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """Normalised history (B, n_obs_steps, obs_dim) + task ids (B,) -> the U-Net's global condition."""
        parts = [obs_history.flatten(1)]
        if self.task_embedding is not None:
            parts.append(self.task_embedding(task_ids))
        return torch.cat(parts, dim=-1)

    def forward(self, obs_history: torch.Tensor, actions: torch.Tensor, task_ids: torch.Tensor,
                scheduler: DDPMScheduler) -> torch.Tensor:
        """The training loss (forward, so DistributedDataParallel can wrap the model): DDPM
        epsilon-prediction MSE on normalised (B, n_obs, obs_dim) history and (B, horizon, action_dim) chunks."""
        noise = torch.randn_like(actions)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (actions.shape[0],), device=actions.device)
        pred = self.unet(scheduler.add_noise(actions, noise, t), t, self.condition(obs_history, task_ids))
        return ((pred - noise) ** 2).mean()

    @torch.no_grad()
    def predict_chunk(self, obs_history: torch.Tensor, task: str, steps: int | None = None,
                      generator: torch.Generator | None = None, sampler: str = "ddim") -> torch.Tensor:
        """Raw observation history (B, n_obs_steps, obs_dim) -> raw action chunk (B, horizon, action_dim)."""
        if obs_history.ndim != 3 or obs_history.shape[1:] != (self.n_obs_steps, self.obs_dim):
            raise ValueError(f"obs_history must be (B, {self.n_obs_steps}, {self.obs_dim}), got {tuple(obs_history.shape)}")
        batch, device = obs_history.shape[0], obs_history.device
        task_ids = torch.full((batch,), self.task_id(task), dtype=torch.long, device=device)
        cond = self.condition(self.normalize_obs(obs_history), task_ids)
        scheduler = sampling_scheduler(self.config.model, sampler)
        scheduler.set_timesteps(steps or self.config.model.sample_steps, device=device)
        x = torch.randn(batch, self.horizon, self.action_dim, generator=generator, device=device)
        for t in scheduler.timesteps:
            eps = self.unet(x, t.expand(batch).to(device), cond)
            x = scheduler.step(eps, t, x).prev_sample
        return x * self.action_scale + self.action_offset

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
