"""Stage 2 of WARPD: a diffusion model over policy latents, p(z | s_0, task).

The denoiser is an MLP over (noisy latent, timestep embedding, state embedding, task embedding)
that predicts the noise, the clean latent or v (`diffusion.prediction`; the names below say eps for
any of them). diffusers' DDPMScheduler defines the forward process for training; DDIM
(or DPM-Solver++) samples in a handful of steps at run time. The state condition is dropped at
random during training, so classifier-free guidance is available at sampling time.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from diffusers import DDPMScheduler
from torch import nn
from torch.nn import functional as F

from warpd_core.policies.common import samplers
from warpd_core.policies.common.layers import sinusoidal_embedding
from warpd_core.policies.common.samplers import SAMPLERS  # noqa: F401  (the choices, for configs and tests)
from warpd_core.policies.warpd.config import DiffusionConfig


class LatentDenoiser(nn.Module):
    """eps(z_t, t | state, task) = output(blocks(W_z z_t + c(state, task) + tau(t))).

    Only W_z z_t and the blocks depend on the step: the condition c (state embedding, or the learned
    null state, plus the task's share of the input layer) is computed once per plan, and tau(t) once
    per timestep and cached while the weights are unchanged, so a sampling step costs the blocks alone.
    """

    def __init__(self, latent_dim: int, obs_dim: int, n_tasks: int, config: DiffusionConfig):
        super().__init__()
        self.config, self.latent_dim = config, latent_dim
        self.state_embedding = nn.Linear(obs_dim, config.hidden)
        self.null_state = nn.Parameter(torch.zeros(config.hidden))  # the "unconditional" state
        self.task_embedding = nn.Embedding(max(n_tasks, 1), config.task_embedding_dim)
        self.time_mlp = nn.Sequential(nn.Linear(config.time_embedding_dim, config.hidden), nn.SiLU())
        width = latent_dim + config.task_embedding_dim
        self.input = nn.Linear(width, config.hidden)  # over [z_t, task embedding]
        self.blocks = nn.ModuleList(nn.Sequential(nn.SiLU(), nn.Linear(config.hidden, config.hidden))
                                    for _ in range(config.layers))
        self.output = nn.Sequential(nn.SiLU(), nn.Linear(config.hidden, latent_dim))
        self._time_cache: dict = {}

    def forward(self, z_t, t, state, task_id, drop_state=None) -> torch.Tensor:
        """Predict the noise in z_t (B, latent) at timesteps t (B,). `drop_state` (B,) bool replaces the
        state by the null embedding (classifier-free guidance training)."""
        time = self.time_mlp(sinusoidal_embedding(t, self.config.time_embedding_dim))  # (B, hidden)
        return self.denoise(z_t, self.condition(state, task_id, drop_state) + time)

    def condition(self, state, task_id, drop_state=None) -> torch.Tensor:
        """State (B, obs), task ids (B,) -> c (B, hidden): everything but z_t and t, once per plan."""
        cond = self.state_embedding(state)
        if drop_state is not None:
            cond = torch.where(drop_state[:, None], self.null_state.expand_as(cond), cond)
        w_task = self.input.weight[:, self.latent_dim:]  # the task embedding's columns of the input layer
        return cond + nn.functional.linear(self.task_embedding(task_id), w_task, self.input.bias)

    def time_features(self, timesteps: tuple[int, ...]) -> list[torch.Tensor]:
        """tau(t) (hidden,) for each timestep; cached at sampling time (no grad) until a weight changes."""
        def compute():
            t = torch.tensor(timesteps, device=self.null_state.device)
            return list(self.time_mlp(sinusoidal_embedding(t, self.config.time_embedding_dim)))
        if torch.is_grad_enabled():
            return compute()
        layer = self.time_mlp[0]
        key = (timesteps, layer.weight._version, layer.bias._version, layer.weight.data_ptr())
        if key not in self._time_cache:
            if len(self._time_cache) > 64:
                self._time_cache.clear()
            self._time_cache[key] = compute()
        return self._time_cache[key]

    def step_weights(self) -> tuple:
        """The tensors one denoising step multiplies by, fetched once (module lookups cost more than the
        products at these sizes): (W_z, [(W, b) per block], (W_out, b_out))."""
        return (self.input.weight[:, : self.latent_dim], [(b[1].weight, b[1].bias) for b in self.blocks],
                (self.output[1].weight, self.output[1].bias))

    def denoise(self, z_t, condition, weights: tuple | None = None) -> torch.Tensor:
        """z_t (B, latent) and condition + tau(t) (B, hidden) -> predicted noise (B, latent)."""
        w_z, blocks, (w_out, b_out) = weights or self.step_weights()
        h = F.linear(z_t, w_z) + condition  # (B, hidden)
        for w, b in blocks:
            h = h + F.linear(F.silu(h), w, b)  # residual block: SiLU then Linear
        return F.linear(F.silu(h), w_out, b_out)  # (B, latent)


def training_scheduler(config: DiffusionConfig) -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=config.train_timesteps, beta_schedule=config.beta_schedule,
                         prediction_type=config.prediction, timestep_spacing=config.timestep_spacing,
                         clip_sample=False)


def sampling_scheduler(config: DiffusionConfig, sampler: str | None = None):
    return samplers.sampling_scheduler(training_scheduler(config).config, sampler or config.sampler)


def diffusion_loss(denoiser, scheduler: DDPMScheduler, z0, state, task_id, cond_dropout: float) -> torch.Tensor:
    """MSE against what the schedule says the denoiser predicts (the noise, the clean latent, or v);
    `denoiser` may be a DDP wrapper around a LatentDenoiser."""
    noise = torch.randn_like(z0)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (z0.shape[0],), device=z0.device)
    drop = torch.rand(z0.shape[0], device=z0.device) < cond_dropout
    pred = denoiser(scheduler.add_noise(z0, noise, t), t, state, task_id, drop)
    kind = scheduler.config.prediction_type
    target = noise if kind == "epsilon" else z0 if kind == "sample" else scheduler.get_velocity(z0, noise, t)
    return ((pred - target) ** 2).mean()


@dataclass(frozen=True)
class SamplerPlan:
    """A deterministic diffusers sampler unrolled for a fixed number of steps.

    DDIM (eta 0) and DPM-Solver++ (no thresholding) update the latent linearly in the starting noise
    and the model's predictions so far (noise, clean latent or v: the clean-latent estimate is linear in
    both): z_{i+1} = c[i][0] z_0 + sum_k c[i][k+1] eps_k. Running the
    scheduler's own `step` once on basis vectors yields those coefficients exactly; sampling then
    costs two or three tiny tensor ops per step instead of diffusers' per-call bookkeeping (~0.25 ms
    per step on this CPU, more than the denoiser itself).
    """

    timesteps: tuple[int, ...]
    coefficients: tuple[tuple[float, ...], ...]  # row i: over (z_0, eps_0, ..., eps_i)


def sampler_plan(config: DiffusionConfig, sampler: str, steps: int) -> SamplerPlan:
    """The SamplerPlan of `sampler` in `steps` steps under this config's noise schedule (cached)."""
    return _sampler_plan(config.train_timesteps, config.beta_schedule, config.prediction, config.timestep_spacing,
                         sampler, steps)


@lru_cache(maxsize=64)
def _sampler_plan(train_timesteps: int, beta_schedule: str, prediction: str, spacing: str, sampler: str,
                  steps: int) -> SamplerPlan:
    config = DiffusionConfig(train_timesteps=train_timesteps, beta_schedule=beta_schedule, prediction=prediction,
                             timestep_spacing=spacing)
    scheduler = sampling_scheduler(config, sampler)
    scheduler.set_timesteps(steps)
    basis = torch.eye(steps + 1, dtype=torch.float64)  # entry j of every vector: the coefficient of input j
    z, rows = basis[0], []
    for i, t in enumerate(scheduler.timesteps):
        z = scheduler.step(basis[i + 1], t, z).prev_sample
        rows.append(tuple(float(c) for c in z[: i + 2]))
    return SamplerPlan(tuple(int(t) for t in scheduler.timesteps), tuple(rows))


@torch.no_grad()
def sample_latents(denoiser: LatentDenoiser, state, task_id, steps: int, guidance_scale: float = 1.0,
                   sampler: str | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one latent per row of `state` (normalised, (B, obs_dim)) in `steps` denoising steps."""
    plan = sampler_plan(denoiser.config, sampler or denoiser.config.sampler, steps)
    z = torch.randn(state.shape[0], denoiser.latent_dim, generator=generator, device=state.device)  # (B, latent)
    guided = guidance_scale != 1.0
    conditioned = denoiser.condition(state, task_id)  # (B, hidden), once per plan
    if guided:
        drop = torch.ones(state.shape[0], dtype=torch.bool, device=state.device)
        unconditioned = denoiser.condition(state, task_id, drop)
    history = [z]  # z_0, eps_0, eps_1, ...
    weights = denoiser.step_weights()
    for time, row in zip(denoiser.time_features(plan.timesteps), plan.coefficients):  # tau(t): (hidden,)
        eps = denoiser.denoise(z, conditioned + time, weights)
        if guided:
            eps_uncond = denoiser.denoise(z, unconditioned + time, weights)
            eps = eps_uncond + guidance_scale * (eps - eps_uncond)
        history.append(eps)
        z = history[0] * row[0]
        for c, v in zip(row[1:], history[1:]):
            if c:
                z = z + c * v
    return z
