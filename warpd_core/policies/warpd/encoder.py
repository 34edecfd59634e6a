"""q(z | tau): encodes a window of H normalised (state, action) pairs to a Gaussian latent."""
from __future__ import annotations

import torch
from torch import nn

from warpd_core.policies.warpd.config import EncoderConfig
from warpd_core.policies.common.layers import mlp


class TrajectoryEncoder(nn.Module):
    def __init__(self, obs_dim: int, action_dim: int, horizon: int, config: EncoderConfig):
        super().__init__()
        self.horizon, self.latent_dim = horizon, config.latent_dim
        self.net = mlp(horizon * (obs_dim + action_dim), config.hidden, 2 * config.latent_dim)

    def forward(self, states: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """states (B, H, obs_dim), actions (B, H, action_dim) -> (mean, log_var), each (B, latent)."""
        window = torch.cat([states, actions], dim=-1).flatten(1)
        mean, log_var = self.net(window).chunk(2, dim=-1)
        return mean, log_var.clamp(-12.0, 6.0)

    @staticmethod
    def sample(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """Reparameterised draw z = mean + sigma * eps."""
        return mean + torch.randn_like(mean) * (0.5 * log_var).exp()
