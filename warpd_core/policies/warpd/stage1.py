"""Stage 1 of WARPD: trajectory VAE with a hypernetwork decoder and a co-trained world model.

One module holds the three networks and computes every loss term, so DistributedDataParallel can
wrap it as a whole. All tensors are in normalised units.

    L_BC  decoded policy's actions vs the demonstration's actions on the demonstration's states
    L_TF  world model negative log-likelihood of the next state, teacher-forced
    L_RO  roll the decoded policy through the (frozen) world model for H steps from s_0, and keep
          the world model's prediction under policy actions close (Gaussian KL) to its prediction
          under the expert's actions on the demonstration
    L_KL  KL(q(z|tau) || N(0, I)), weighted by beta_kl (1e-8..1e-6 in the paper)
"""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from warpd_core.policies.warpd.config import TrainConfig
from warpd_core.policies.warpd.encoder import TrajectoryEncoder
from warpd_core.policies.warpd.hypernet import make_hypernetwork
from warpd_core.policies.warpd.world_model import WorldModel

LOSS_NAMES = ("bc", "tf", "ro", "kl")


def gaussian_nll(target, mean, log_std) -> torch.Tensor:
    return (0.5 * ((target - mean) / log_std.exp()) ** 2 + log_std).sum(-1).mean()


def gaussian_kl(mean_p, log_std_p, mean_q, log_std_q) -> torch.Tensor:
    """KL(N_p || N_q) for diagonal Gaussians, summed over the last dim, averaged over the rest."""
    var_p, var_q = (2 * log_std_p).exp(), (2 * log_std_q).exp()
    kl = log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2 * var_q) - 0.5
    return kl.sum(-1).mean()


class Stage1(nn.Module):
    def __init__(self, obs_dim: int, action_dim: int, config: TrainConfig):
        super().__init__()
        self.config, self.horizon = config, config.data.horizon
        self.encoder = TrajectoryEncoder(obs_dim, action_dim, self.horizon, config.encoder)
        self.hypernet = make_hypernetwork(obs_dim, action_dim, config.encoder.latent_dim, config.policy,
                                          config.hypernet)
        self.world_model = WorldModel(obs_dim, action_dim, config.world_model)

    def forward(self, states: torch.Tensor, actions: torch.Tensor, next_states: torch.Tensor,
                plan_states: torch.Tensor | None = None, plan_actions: torch.Tensor | None = None) -> dict:
        """Windows (B, H, obs), (B, H, action), (B, H, obs) [and later steps (B, F, obs), (B, F, action)]
        -> {"total", "bc", "tf", "ro", "kl", "plan"}."""
        weights_cfg = self.config.loss
        mean, log_var = self.encoder(states, actions)
        z = self.encoder.sample(mean, log_var) if self.training else mean
        layers = self.hypernet.split(self.hypernet(z))
        losses = {
            "bc": ((self.hypernet.policy_forward(layers, states) - actions) ** 2).sum(-1).mean(),
            "tf": gaussian_nll(next_states, *self.world_model(states, actions)),
            "kl": (-0.5 * (1 + log_var - mean**2 - log_var.exp()).sum(-1)).mean(),
        }
        losses["ro"] = self.rollout_loss(layers, states, actions) if weights_cfg.ro > 0 else states.new_zeros(())
        losses["plan"] = (((self.hypernet.policy_forward(layers, plan_states) - plan_actions) ** 2).sum(-1).mean()
                          if plan_states is not None else states.new_zeros(()))
        losses["total"] = (weights_cfg.bc * losses["bc"] + weights_cfg.tf * losses["tf"]
                           + weights_cfg.ro * losses["ro"] + weights_cfg.beta_kl * losses["kl"]
                           + weights_cfg.plan * losses["plan"])
        return losses

    def rollout_loss(self, layers, states, actions) -> torch.Tensor:
        """L_RO with the world model's parameters frozen: only the policy learns from this term."""
        frozen = {name: p.detach() for name, p in self.world_model.named_parameters()}

        def world(s, a):
            return functional_call(self.world_model, frozen, (s, a))

        with torch.no_grad():
            expert_mean, expert_log_std = world(states, actions)
        state, terms = states[:, 0], []
        for t in range(self.horizon):
            action = self.hypernet.policy_forward(layers, state.unsqueeze(1)).squeeze(1)
            mean, log_std = world(state, action)
            terms.append(gaussian_kl(mean, log_std, expert_mean[:, t], expert_log_std[:, t]))
            state = mean
        return torch.stack(terms).mean()
