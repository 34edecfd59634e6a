"""WarpdModel: everything a trained WARPD needs at run time, in one module.

Holds the normalisation statistics, stage 1 (encoder, hypernetwork, world model), the stage-2
denoiser and the statistics that put latents on a unit scale for diffusion. `generate` goes from
raw observations to flat policy weights: normalise -> sample latent -> un-scale -> decode.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from warpd_core.policies.warpd import action_offset
from warpd_core.policies.warpd.config import TrainConfig
from warpd_core.policies.warpd.latent_diffusion import LatentDenoiser, sample_latents
from warpd_core.policies.warpd.stage1 import Stage1
from warpd_core.runtime.policy_spec import GeneratedPolicy


class WarpdModel(nn.Module):
    def __init__(self, config: TrainConfig, obs_names: list[str], action_names: list[str], task_names: list[str]):
        super().__init__()
        self.config = config
        self.obs_names, self.action_names, self.task_names = list(obs_names), list(action_names), list(task_names)
        obs_dim, action_dim, latent_dim = len(obs_names), len(action_names), config.encoder.latent_dim
        self.stage1 = Stage1(obs_dim, action_dim, config)
        self.denoiser = LatentDenoiser(latent_dim, obs_dim, len(task_names), config.diffusion)
        for name, dim in (("obs_mean", obs_dim), ("obs_std", obs_dim), ("action_mean", action_dim),
                          ("action_std", action_dim), ("latent_mean", latent_dim), ("latent_std", latent_dim)):
            self.register_buffer(name, torch.zeros(dim) if name.endswith("mean") else torch.ones(dim))
        # position actions learned as steps from q (action_offset.py); None: actions learned as they are
        self.offset_indices = action_offset.offset_indices(config.policy.action_offset, obs_names, action_names,
                                                           config.policy.activation)

    @property
    def architecture(self):
        """The published policy's architecture (with pass-through units when actions are offset)."""
        return action_offset.runtime_architecture(self.stage1.hypernet.architecture, self.offset_indices)

    def learned_actions(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Demonstrated actions (T, A) as the generated policies learn them (steps from q, or as they are)."""
        return action_offset.learned_actions(obs, actions, self.offset_indices)

    def task_id(self, task: str) -> int:
        try:
            return self.task_names.index(task)
        except ValueError:
            from warpd_core.errors import WarpdError

            raise WarpdError(f"this checkpoint was not trained on task {task!r}",
                             f"it knows: {', '.join(self.task_names)}") from None

    def normalize_obs(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.obs_mean) / self.obs_std

    def normalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return (action - self.action_mean) / self.action_std

    @torch.no_grad()
    def generate(self, obs: torch.Tensor, task: str, steps: int | None = None, guidance_scale: float | None = None,
                 sampler: str | None = None, generator: torch.Generator | None = None):
        """Raw observations (B, obs_dim) -> (flat weights (B, n_params), latents (B, latent_dim))."""
        cfg = self.config.diffusion
        task_ids = torch.full((obs.shape[0],), self.task_id(task), dtype=torch.long, device=obs.device)
        z_unit = sample_latents(self.denoiser, self.normalize_obs(obs), task_ids, steps or cfg.sample_steps,
                                cfg.guidance_scale if guidance_scale is None else guidance_scale, sampler, generator)
        z = z_unit * self.latent_std + self.latent_mean
        return self.stage1.hypernet(z), z

    def to_generated_policy(self, weights: torch.Tensor, latent: torch.Tensor, task: str, **fields) -> GeneratedPolicy:
        """One row of `generate`'s output as the run-time contract (numpy, PolicyWeights layout)."""
        def np32(t):
            return t.detach().to("cpu", torch.float32).numpy()

        flat = np32(weights)
        if self.offset_indices is not None:
            flat = action_offset.with_pass_through(self.stage1.hypernet.architecture, flat, self.offset_indices,
                                                   np32(self.obs_mean), np32(self.obs_std), np32(self.action_std))
        return GeneratedPolicy(architecture=self.architecture, weights=flat, obs_mean=np32(self.obs_mean),
                               obs_std=np32(self.obs_std), action_mean=np32(self.action_mean),
                               action_std=np32(self.action_std), latent=np32(latent), task=task, **fields)

    def set_normalization(self, obs: np.ndarray, actions: np.ndarray, min_std: float = 1e-3) -> None:
        """Statistics from training data (actions as learned); tiny stds are floored so constant features stay
        finite."""
        for prefix, data in (("obs", obs), ("action", actions)):
            getattr(self, f"{prefix}_mean").copy_(torch.as_tensor(data.mean(0)))
            getattr(self, f"{prefix}_std").copy_(torch.as_tensor(np.maximum(data.std(0), min_std)))
