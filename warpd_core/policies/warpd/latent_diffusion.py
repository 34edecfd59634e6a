"""Stage 2 of WARPD: a diffusion model over policy latents, p(z | s_0, task).

The denoiser is an MLP over (noisy latent, timestep embedding, state embedding, task embedding)
that predicts the noise. diffusers' DDPMScheduler defines the forward process for training; DDIM
(or DPM-Solver++) samples in a handful of steps at run time. The state condition is dropped at
random during training, so classifier-free guidance is available at sampling time.
"""
from __future__ import annotations

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from torch import nn

from warpd_core.errors import WarpdError
from warpd_core.policies.warpd.config import DiffusionConfig
from warpd_core.policies.common.layers import sinusoidal_embedding

SAMPLERS = ("ddim", "dpm")


class LatentDenoiser(nn.Module):
    def __init__(self, latent_dim: int, obs_dim: int, n_tasks: int, config: DiffusionConfig):
        super().__init__()
        self.config, self.latent_dim = config, latent_dim
        self.state_embedding = nn.Linear(obs_dim, config.hidden)
        self.null_state = nn.Parameter(torch.zeros(config.hidden))  # the "unconditional" state
        self.task_embedding = nn.Embedding(max(n_tasks, 1), config.task_embedding_dim)
        self.time_mlp = nn.Sequential(nn.Linear(config.time_embedding_dim, config.hidden), nn.SiLU())
        width = latent_dim + config.task_embedding_dim
        self.input = nn.Linear(width, config.hidden)
        self.blocks = nn.ModuleList(nn.Sequential(nn.SiLU(), nn.Linear(config.hidden, config.hidden))
                                    for _ in range(config.layers))
        self.output = nn.Sequential(nn.SiLU(), nn.Linear(config.hidden, latent_dim))

    def forward(self, z_t, t, state, task_id, drop_state=None) -> torch.Tensor:
        """Predict the noise in z_t. `drop_state` (B,) bool replaces the state by the null embedding."""
        cond = self.state_embedding(state)
        if drop_state is not None:
            cond = torch.where(drop_state[:, None], self.null_state.expand_as(cond), cond)
        h = self.input(torch.cat([z_t, self.task_embedding(task_id)], dim=-1))
        h = h + cond + self.time_mlp(sinusoidal_embedding(t, self.config.time_embedding_dim))
        for block in self.blocks:
            h = h + block(h)
        return self.output(h)


def training_scheduler(config: DiffusionConfig) -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=config.train_timesteps, beta_schedule=config.beta_schedule,
                         prediction_type="epsilon", clip_sample=False)


def sampling_scheduler(config: DiffusionConfig, sampler: str | None = None):
    sampler = sampler or config.sampler
    base = training_scheduler(config).config
    if sampler == "ddim":
        return DDIMScheduler.from_config(base)
    if sampler == "dpm":  # "leading" spacing starts where DDIM does (t=90 of 100), not at t=99 where the
        # squaredcos schedule leaves alpha_bar 2.4e-7 and DPM-Solver++'s x0 estimate (divided by its root) explodes
        return DPMSolverMultistepScheduler.from_config(base, algorithm_type="dpmsolver++", timestep_spacing="leading")
    raise WarpdError(f"unknown sampler {sampler!r}", f"use one of {', '.join(SAMPLERS)}")


def diffusion_loss(denoiser, scheduler: DDPMScheduler, z0, state, task_id, cond_dropout: float) -> torch.Tensor:
    """Epsilon-prediction MSE; `denoiser` may be a DDP wrapper around a LatentDenoiser."""
    noise = torch.randn_like(z0)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (z0.shape[0],), device=z0.device)
    drop = torch.rand(z0.shape[0], device=z0.device) < cond_dropout
    pred = denoiser(scheduler.add_noise(z0, noise, t), t, state, task_id, drop)
    return ((pred - noise) ** 2).mean()


@torch.no_grad()
def sample_latents(denoiser: LatentDenoiser, state, task_id, steps: int, guidance_scale: float = 1.0,
                   sampler: str | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one latent per row of `state` (normalised, (B, obs_dim)) in `steps` denoising steps."""
    scheduler = sampling_scheduler(denoiser.config, sampler)
    scheduler.set_timesteps(steps, device=state.device)
    z = torch.randn(state.shape[0], denoiser.latent_dim, generator=generator, device=state.device)
    guided = guidance_scale != 1.0
    drop = torch.ones(state.shape[0], dtype=torch.bool, device=state.device) if guided else None
    for t in scheduler.timesteps:
        tt = t.expand(state.shape[0]).to(state.device)
        eps = denoiser(z, tt, state, task_id)
        if guided:
            eps_uncond = denoiser(z, tt, state, task_id, drop)
            eps = eps_uncond + guidance_scale * (eps - eps_uncond)
        z = scheduler.step(eps, t, z).prev_sample
    return z
