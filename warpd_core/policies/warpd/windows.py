"""WARPD's training windows: every run of H consecutive steps of every successful demonstration.

A window holds states s_0..s_{H-1}, actions a_0..a_{H-1} and next states s_1..s_H, normalised
with the model's statistics; stage 1 trains on windows and stage 2 on (s_0, latent of window).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from warpd_core.errors import WarpdError


@dataclass
class Windows:
    states: torch.Tensor  # (N, H, obs_dim)
    actions: torch.Tensor  # (N, H, action_dim)
    next_states: torch.Tensor  # (N, H, obs_dim)
    task_ids: torch.Tensor  # (N,)

    def __len__(self) -> int:
        return self.states.shape[0]

    def batch(self, index: torch.Tensor):
        return self.states[index], self.actions[index], self.next_states[index]


def make_windows(demos, horizon: int, obs_mean, obs_std, action_mean, action_std) -> Windows:
    states, actions, next_states, task_ids = [], [], [], []
    for obs, act, task_id in demos:
        obs_n = (obs - obs_mean) / obs_std
        act_n = (act - action_mean) / action_std
        for start in range(len(act) - horizon):  # needs s_{start+H}, which the episode holds
            states.append(obs_n[start:start + horizon])
            actions.append(act_n[start:start + horizon])
            next_states.append(obs_n[start + 1:start + horizon + 1])
            task_ids.append(task_id)
    if not states:
        raise WarpdError(f"no demonstration is longer than the horizon H={horizon}", "lower data.horizon")

    def tensor(x, dtype=torch.float32):
        return torch.as_tensor(np.asarray(x), dtype=dtype)

    return Windows(tensor(states), tensor(actions), tensor(next_states), tensor(task_ids, torch.long))
