"""WARPD's training windows: every run of H consecutive steps of every successful demonstration.

A window holds states s_0..s_{H-1}, actions a_0..a_{H-1} and next states s_1..s_H, normalised
with the model's statistics; stage 1 trains on windows and stage 2 on (s_0, latent of window).
With a plan horizon P > H, each window also points at `plan_samples` later steps of its episode,
evenly spread over s_H..s_{P-1} (the episode's last step where it ends sooner): the decoded policy
runs for a whole plan of up to P steps at run time, so L_plan teaches it those states too.
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
    plan_index: torch.Tensor | None = None  # (N, F) rows of all_states/all_actions later in each window's episode
    all_states: torch.Tensor | None = None  # (steps, obs_dim) every demonstration step, normalised
    all_actions: torch.Tensor | None = None  # (steps, action_dim)

    def __len__(self) -> int:
        return self.states.shape[0]

    def batch(self, index: torch.Tensor):
        """The windows at `index`: (states, actions, next_states), then with a plan horizon the later
        (plan_states (B, F, obs), plan_actions (B, F, action))."""
        out = (self.states[index], self.actions[index], self.next_states[index])
        if self.plan_index is None:
            return out
        rows = self.plan_index[index]
        return (*out, self.all_states[rows], self.all_actions[rows])


def make_windows(demos, horizon: int, obs_mean, obs_std, action_mean, action_std, plan_horizon: int = 0,
                 plan_samples: int = 8) -> Windows:
    states, actions, next_states, task_ids, plan_rows, all_obs, all_act = [], [], [], [], [], [], []
    offsets = np.rint(np.linspace(horizon, max(plan_horizon - 1, horizon), plan_samples)).astype(np.int64)
    first = 0  # row of this episode's first step in all_states
    for obs, act, task_id in demos:
        obs_n = (obs - obs_mean) / obs_std
        act_n = (act - action_mean) / action_std
        for start in range(len(act) - horizon):  # needs s_{start+H}, which the episode holds
            states.append(obs_n[start:start + horizon])
            actions.append(act_n[start:start + horizon])
            next_states.append(obs_n[start + 1:start + horizon + 1])
            task_ids.append(task_id)
            plan_rows.append(first + np.minimum(start + offsets, len(act) - 1))
        all_obs.append(obs_n[:len(act)])
        all_act.append(act_n)
        first += len(act)
    if not states:
        raise WarpdError(f"no demonstration is longer than the horizon H={horizon}", "lower data.horizon")

    def tensor(x, dtype=torch.float32):
        return torch.as_tensor(np.asarray(x), dtype=dtype)

    windows = Windows(tensor(states), tensor(actions), tensor(next_states), tensor(task_ids, torch.long))
    if plan_horizon > horizon:
        windows.plan_index = tensor(plan_rows, torch.long)
        windows.all_states, windows.all_actions = tensor(np.concatenate(all_obs)), tensor(np.concatenate(all_act))
    return windows
