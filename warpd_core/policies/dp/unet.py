"""The conditional 1D temporal U-Net of Diffusion Policy (CNN variant).

The noisy action chunk is a sequence (B, horizon, action_dim), convolved over time with the
action dimensions as channels. Every residual block is conditioned by FiLM: a per-channel scale
and shift computed from one global condition vector = [diffusion-step embedding, flattened
observation history, task embedding]. The down path halves the length per level, the up path
restores it and concatenates the matching down-path features (skip connections), as in the paper.
"""
from __future__ import annotations

import torch
from torch import nn

from warpd_core.policies.dp.config import UNetConfig
from warpd_core.policies.common.layers import sinusoidal_embedding


class ConvNormMish(nn.Sequential):
    """Conv1d (same length) -> GroupNorm -> Mish."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, n_groups: int):
        super().__init__(nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
                         nn.GroupNorm(n_groups, out_channels), nn.Mish())


class FiLMResidualBlock(nn.Module):
    """Two conv blocks; the first one's output is scaled and shifted by the condition (FiLM)."""

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, kernel_size: int, n_groups: int):
        super().__init__()
        self.first = ConvNormMish(in_channels, out_channels, kernel_size, n_groups)
        self.second = ConvNormMish(out_channels, out_channels, kernel_size, n_groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * out_channels))
        self.skip = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        h = self.second(self.first(x) * scale + shift)
        return h + self.skip(x)


class ConditionalUNet1D(nn.Module):
    def __init__(self, action_dim: int, global_cond_dim: int, config: UNetConfig):
        super().__init__()
        self.config = config
        dsed, k, g = config.step_embedding_dim, config.kernel_size, config.n_groups
        self.step_encoder = nn.Sequential(nn.Linear(dsed, 4 * dsed), nn.Mish(), nn.Linear(4 * dsed, dsed))
        cond_dim = dsed + global_cond_dim
        widths = [action_dim, *config.down_dims]
        pairs = list(zip(widths[:-1], widths[1:]))

        def block(cin, cout):
            return FiLMResidualBlock(cin, cout, cond_dim, k, g)

        self.down = nn.ModuleList()
        for i, (cin, cout) in enumerate(pairs):
            last = i == len(pairs) - 1
            self.down.append(nn.ModuleList([block(cin, cout), block(cout, cout),
                                            nn.Identity() if last else nn.Conv1d(cout, cout, 3, stride=2, padding=1)]))
        mid = config.down_dims[-1]
        self.mid = nn.ModuleList([block(mid, mid), block(mid, mid)])
        self.up = nn.ModuleList()
        for cin, cout in reversed(pairs[1:]):  # every up level doubles the length back
            self.up.append(nn.ModuleList([block(2 * cout, cin), block(cin, cin),
                                          nn.ConvTranspose1d(cin, cin, 4, stride=2, padding=1)]))
        first = config.down_dims[0]
        self.head = nn.Sequential(ConvNormMish(first, first, k, g), nn.Conv1d(first, action_dim, 1))

    def forward(self, noisy_actions: torch.Tensor, timesteps: torch.Tensor, global_cond: torch.Tensor) -> torch.Tensor:
        """(B, horizon, action_dim), (B,), (B, global_cond_dim) -> predicted noise (B, horizon, action_dim)."""
        step = self.step_encoder(sinusoidal_embedding(timesteps, self.config.step_embedding_dim))
        cond = torch.cat([step, global_cond], dim=-1)
        x = noisy_actions.transpose(1, 2)
        skips = []  # the output of every down level but the first feeds the up level of the same length
        for first, second, downsample in self.down:
            x = second(first(x, cond), cond)
            skips.append(x)
            x = downsample(x)
        for layer in self.mid:
            x = layer(x, cond)
        for first, second, upsample in self.up:
            x = torch.cat([x, skips.pop()], dim=1)
            x = upsample(second(first(x, cond), cond))
        return self.head(x).transpose(1, 2)
