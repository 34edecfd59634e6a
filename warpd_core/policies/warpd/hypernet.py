"""The hypernetwork decoder: latent z -> every weight of a small MLP policy.

A plain linear head onto every weight is large (39.5M parameters for a 39-256-256-4 policy, see
the shared ML notes). Two decoders avoid it; both output a learned *base* policy plus a
z-dependent delta, so training starts from one reasonable policy and learns how demonstrations
differ from it:
- `chunked` (the paper's): one shared generator maps (z, learned chunk embedding) to a chunk of
  `chunk_size` weights, for every chunk of the flat weight vector; its size no longer grows with
  the policy, but its trunk runs once per chunk (20 times for a 8-64-64-3 policy: 5.7 M FLOPs).
- `low_rank`: delta = U g(z), a trunk g run once to `rank` features and one linear map U onto the
  weights (rank x n_params): a decode costs ~2 rank n_params FLOPs (0.3 M at rank 32 for the
  same policy), and the weights a latent can reach span a rank-dimensional subspace around the
  base, ample for latents of 16 dimensions.

The flat layout is the PolicyWeights contract (per layer: W (out x in, row-major), then b), so
the decoded vector can be published and run by the numpy runtime as it is.
"""
from __future__ import annotations

import torch
from torch import nn

from warpd_core.policies.warpd.config import HypernetConfig, PolicyConfig
from warpd_core.policies.common.layers import mlp
from warpd_core.runtime.policy_spec import MLPArchitecture

_ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "elu": nn.functional.elu,
    "gelu": lambda x: nn.functional.gelu(x, approximate="tanh"),
}
_OUTPUTS = {"identity": lambda x: x, "tanh": torch.tanh}


HYPERNET_KINDS = ("chunked", "low_rank")


def make_hypernetwork(obs_dim: int, action_dim: int, latent_dim: int, policy: PolicyConfig,
                      config: HypernetConfig) -> "Hypernetwork":
    kinds = {"chunked": ChunkedHypernetwork, "low_rank": LowRankHypernetwork}
    return kinds[config.kind](obs_dim, action_dim, latent_dim, policy, config)


class Hypernetwork(nn.Module):
    """What every decoder shares: the policy architecture, the base policy, the per-weight scale, and
    running decoded policies (split, policy_forward). Subclasses define `delta(z)`."""

    def __init__(self, obs_dim: int, action_dim: int, policy: PolicyConfig):
        super().__init__()
        self.architecture = MLPArchitecture((obs_dim, *policy.hidden, action_dim), policy.activation,
                                            policy.output_activation)
        self.architecture.validate()
        self.n_params = self.architecture.n_params()
        self.base = nn.Parameter(self._initial_base())
        self.register_buffer("scale", self._fan_in_scale(), persistent=False)

    def _initial_base(self) -> torch.Tensor:
        """A freshly initialised policy (PyTorch's default Linear init) in the flat layout."""
        parts = []
        for out_dim, in_dim in self.architecture.layer_shapes():
            layer = nn.Linear(in_dim, out_dim)
            parts += [layer.weight.detach().reshape(-1), layer.bias.detach()]
        return torch.cat(parts)

    def _fan_in_scale(self) -> torch.Tensor:
        """Per-weight 1/sqrt(fan_in), so a unit-sized generator output is a sensible weight change."""
        parts = [torch.full((out_dim * in_dim + out_dim,), in_dim ** -0.5)
                 for out_dim, in_dim in self.architecture.layer_shapes()]
        return torch.cat(parts)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, latent) -> flat policy weights (B, n_params)."""
        return self.base + self.delta(z) * self.scale

    def delta(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def split(self, weights: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Flat weights (B, n_params) -> per layer (W (B, out, in), b (B, 1, out)), sliced once.

        Slicing is done once per decoded batch, not per policy call: every slice costs a
        full-size gradient buffer in the backward pass, and L_RO calls the policy H times.
        """
        layers, offset = [], 0
        for out_dim, in_dim in self.architecture.layer_shapes():
            w = weights[:, offset: offset + out_dim * in_dim].reshape(-1, out_dim, in_dim)
            offset += out_dim * in_dim
            layers.append((w.transpose(1, 2), weights[:, offset: offset + out_dim].unsqueeze(1)))
            offset += out_dim
        return layers

    def policy_forward(self, layers: list[tuple[torch.Tensor, torch.Tensor]], states: torch.Tensor) -> torch.Tensor:
        """Run B generated policies (from `split`) on states (B, T, obs_dim) -> (B, T, action_dim).

        Inputs and outputs are normalised; (de)normalisation is the runtime's job.
        """
        hidden = _ACTIVATIONS[self.architecture.activation]
        x = states
        for i, (w_t, b) in enumerate(layers):
            x = torch.baddbmm(b, x, w_t)
            if i < len(layers) - 1:
                x = hidden(x)
        return _OUTPUTS[self.architecture.output_activation](x)


class ChunkedHypernetwork(Hypernetwork):
    def __init__(self, obs_dim: int, action_dim: int, latent_dim: int, policy: PolicyConfig, config: HypernetConfig):
        super().__init__(obs_dim, action_dim, policy)
        self.chunk_size = config.chunk_size
        self.n_chunks = -(-self.n_params // config.chunk_size)
        self.chunk_embeddings = nn.Parameter(torch.randn(self.n_chunks, config.chunk_embedding_dim))
        self.generator = mlp(latent_dim + config.chunk_embedding_dim, config.hidden, config.chunk_size)
        with torch.no_grad():
            self.generator[-1].weight.mul_(config.init_scale)
            self.generator[-1].bias.zero_()

    def delta(self, z: torch.Tensor) -> torch.Tensor:
        batch = z.shape[0]
        emb = self.chunk_embeddings.unsqueeze(0).expand(batch, -1, -1)  # (B, chunks, emb)
        inputs = torch.cat([z.unsqueeze(1).expand(-1, self.n_chunks, -1), emb], dim=-1)  # (B, chunks, latent + emb)
        return self.generator(inputs).reshape(batch, -1)[:, : self.n_params]  # (B, n_params)


class LowRankHypernetwork(Hypernetwork):
    def __init__(self, obs_dim: int, action_dim: int, latent_dim: int, policy: PolicyConfig, config: HypernetConfig):
        super().__init__(obs_dim, action_dim, policy)
        self.trunk = mlp(latent_dim, config.hidden, config.rank)  # g: z -> rank features
        self.directions = nn.Linear(config.rank, self.n_params, bias=False)  # U: rank -> every weight
        with torch.no_grad():
            self.directions.weight.mul_(config.init_scale)  # as the chunked generator's last layer: small deltas first

    def delta(self, z: torch.Tensor) -> torch.Tensor:
        return self.directions(self.trunk(z))  # (B, latent) -> (B, rank) -> (B, n_params)
