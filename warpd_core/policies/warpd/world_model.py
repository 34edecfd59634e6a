"""p(s_{t+1} | s_t, a_t): a Gaussian MLP over the (normalised) state change.

Co-trained with the hypernetwork: teacher-forced on demonstrations (L_TF), and used, frozen for
that term, to roll decoded policies forward (L_RO) so that they are penalised for steering
towards states the demonstrations never visit.
"""
from __future__ import annotations

import torch
from torch import nn

from warpd_core.policies.warpd.config import WorldModelConfig
from warpd_core.policies.common.layers import mlp


class WorldModel(nn.Module):
    def __init__(self, obs_dim: int, action_dim: int, config: WorldModelConfig):
        super().__init__()
        self.net = mlp(obs_dim + action_dim, config.hidden, 2 * obs_dim)
        self.min_log_std, self.max_log_std = config.min_log_std, config.max_log_std

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (mean of s_{t+1}, log std), both shaped like `state`."""
        delta, log_std = self.net(torch.cat([state, action], dim=-1)).chunk(2, dim=-1)
        return state + delta, log_std.clamp(self.min_log_std, self.max_log_std)
