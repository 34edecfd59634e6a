"""Receding-horizon execution of a Diffusion Policy, as a re-planner for the episode runner.

`DPPlanner.plan(obs)` samples one action chunk from the observation history and returns a
callable that plays the chunk open loop, one action per control step, until the runner re-plans
(`run_episode(..., replan_every=K)`). The callable also records every observation it is given,
which is how the planner keeps its own history across plans; at the start of an episode the
history is padded by repeating the first observation (as in training).

Action horizon K vs prediction horizon P (`model.horizon`): with K <= P the first K actions of
each chunk run. With K > P the policy has nothing more to say until the next plan, and outputs
what `model.after_chunk` says: "zero" (default) commands zero velocity, which is the
controller's HOLD, or "last" repeats the chunk's last action. This is deliberately *not* a hidden
re-plan: a plan costs a full DDIM sample, and the FLOPs accounting charges one per K steps.
"""
from __future__ import annotations

from collections import deque
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from warpd_core.policies.dp.checkpoint import load_checkpoint
from warpd_core.policies.dp.modeling import DPModel


class ChunkExecutor:
    """Plays one planned chunk open loop: call i returns action i (then the after-chunk action)."""

    def __init__(self, planner: "DPPlanner", actions: np.ndarray, after_chunk: str):
        self.planner, self.actions, self.next_index = planner, actions, 0
        self.hold = np.zeros_like(actions[0]) if after_chunk == "zero" else actions[-1].copy()

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        self.planner.observe(obs)
        index, self.next_index = self.next_index, self.next_index + 1
        return self.actions[index].copy() if index < len(self.actions) else self.hold.copy()


class DPPlanner:
    def __init__(self, model: DPModel, task: str, steps: int | None = None, seed: int = 0, device: str = "cpu",
                 sampler: str = "ddim"):
        self.model, self.task, self.steps, self.device = model.to(device).eval(), task, steps, torch.device(device)
        self.sampler = sampler
        model.task_id(task)  # fail now, clearly, if the checkpoint does not know the task
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.history: deque[np.ndarray] = deque(maxlen=model.n_obs_steps)

    @classmethod
    def from_checkpoint(cls, path: str | Path, task: str, **kwargs) -> "DPPlanner":
        return cls(load_checkpoint(path, kwargs.get("device", "cpu")), task, **kwargs)

    def reset(self) -> None:
        """Forget the observation history (a new episode)."""
        self.history.clear()

    def observe(self, obs: np.ndarray) -> None:
        self.history.append(np.asarray(obs, dtype=np.float32).copy())

    def observation_history(self, obs: np.ndarray) -> np.ndarray:
        """(n_obs_steps, obs_dim): the recorded observations before `obs`, then `obs`; padded at the start."""
        past = list(self.history)[-(self.model.n_obs_steps - 1):] if self.model.n_obs_steps > 1 else []
        frames = [*past, np.asarray(obs, dtype=np.float32)]
        frames = [frames[0]] * (self.model.n_obs_steps - len(frames)) + frames
        return np.stack(frames)

    def predict(self, obs: np.ndarray) -> np.ndarray:
        """The raw action chunk (horizon, action_dim) for the current observation and the history."""
        history = torch.as_tensor(self.observation_history(obs), device=self.device).unsqueeze(0)
        chunk = self.model.predict_chunk(history, self.task, self.steps, self.generator, self.sampler)
        return chunk[0].to("cpu", torch.float64).numpy()

    def plan(self, obs: np.ndarray) -> ChunkExecutor:
        return ChunkExecutor(self, self.predict(obs), self.model.config.model.after_chunk)


@lru_cache(maxsize=4)
def _cached_model(path: str, device: str) -> DPModel:
    return load_checkpoint(path, device)


class DPPlannerFactory:
    """Picklable policy factory for the episode runner: one seeded DPPlanner per episode.

    The checkpoint is loaded once per process and shared by the episodes it runs.
    """

    def __init__(self, checkpoint: str | Path, task: str, steps: int | None = None, device: str = "cpu",
                 sampler: str = "ddim"):
        self.checkpoint, self.task, self.steps, self.device = str(checkpoint), task, steps, device
        self.sampler = sampler

    def __call__(self, task, seed: int) -> DPPlanner:
        return DPPlanner(_cached_model(self.checkpoint, self.device), self.task, self.steps, seed, self.device,
                         self.sampler)
