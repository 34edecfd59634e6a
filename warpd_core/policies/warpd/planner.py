"""The WARPD planner: state -> latent diffusion -> hypernetwork decode -> a runnable policy.

Used by the ROS planner node and by evaluation alike. `generate(obs)` returns the run-time
contract (GeneratedPolicy: flat weights + architecture + normalisation, ready for a
PolicyWeights message); `plan(obs)` returns the numpy executor of it, which makes a Planner a
re-planner for the episode runner (`run_episode(..., replan_every=K)`).
"""
from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from warpd_core.policies.warpd.checkpoint import load_checkpoint
from warpd_core.policies.warpd.modeling import WarpdModel
from warpd_core.runtime.mlp_runtime import MLPPolicy
from warpd_core.runtime.policy_spec import GeneratedPolicy


class Planner:
    def __init__(self, model: WarpdModel, task: str, steps: int | None = None, guidance_scale: float | None = None,
                 sampler: str | None = None, valid_for_s: float = 1.0, seed: int = 0,
                 planner_id: str = "warpd_planner", device: str = "cpu"):
        self.model, self.task, self.device = model.to(device).eval(), task, torch.device(device)
        model.task_id(task)  # fail now, clearly, if the checkpoint does not know the task
        self.steps, self.guidance_scale, self.sampler = steps, guidance_scale, sampler
        self.valid_for_s, self.planner_id = valid_for_s, planner_id
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.next_policy_id = 1

    @property
    def sampling_steps(self) -> int:
        """The denoising steps a plan takes: the given ones, else the checkpoint's."""
        return self.steps or self.model.config.diffusion.sample_steps

    @property
    def sampling_method(self) -> str:
        return self.sampler or self.model.config.diffusion.sampler

    @classmethod
    def from_checkpoint(cls, path: str | Path, task: str, **kwargs) -> "Planner":
        return cls(load_checkpoint(path, kwargs.get("device", "cpu")), task, **kwargs)

    def generate(self, obs: np.ndarray) -> GeneratedPolicy:
        """One new policy for the raw observation `obs`, stamped and numbered."""
        state = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device).reshape(1, -1)
        weights, latent = self.model.generate(state, self.task, self.steps, self.guidance_scale, self.sampler,
                                              self.generator)
        policy = self.model.to_generated_policy(weights[0], latent[0], self.task, policy_id=self.next_policy_id,
                                                planner_id=self.planner_id, stamp_ns=time.time_ns(),
                                                valid_for_s=self.valid_for_s)
        self.next_policy_id += 1
        return policy

    def plan(self, obs: np.ndarray) -> MLPPolicy:
        return MLPPolicy(self.generate(obs))


@lru_cache(maxsize=4)
def _cached_model(path: str, device: str) -> WarpdModel:
    return load_checkpoint(path, device)


class PlannerFactory:
    """Picklable policy factory for the episode runner: one seeded Planner per episode.

    The checkpoint is loaded once per process and shared by the episodes it runs.
    """

    def __init__(self, checkpoint: str | Path, task: str, **planner_kwargs):
        self.checkpoint, self.task, self.kwargs = str(checkpoint), task, planner_kwargs

    def __call__(self, task, seed: int) -> Planner:
        model = _cached_model(self.checkpoint, self.kwargs.get("device", "cpu"))
        return Planner(model, self.task, seed=seed, **self.kwargs)
