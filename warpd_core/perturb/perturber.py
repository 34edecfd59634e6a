"""Applying a PerturbationSpec to a running task, the same way for every task.

The perturber sits between the policy and the task:

    obs_seen = perturber.observe(true_obs)        # observation noise
    perturber.before_step(step)                   # pushes, target shift
    task.step(perturber.act(policy(obs_seen)))    # action noise, actuation delay

Every event of an episode (push times, bodies, directions; shift time and direction; dynamics
factors) is drawn at reset from (spec.seed, episode seed) alone, before the policy acts, so the
same events hit every policy and every level, scaled by the level.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from warpd_core.perturb.spec import PerturbationSpec
from warpd_core.tasks.base import Task


@dataclass(frozen=True)
class PushEvent:
    start_step: int
    end_step: int  # exclusive
    body: int
    force: np.ndarray  # world xyz, N, already scaled by the level


class Perturber:
    def __init__(self, task: Task, spec: PerturbationSpec):
        self.task, self.spec = task, spec
        self._mass0 = task.model.body_mass.copy()
        self._friction0 = task.model.geom_friction[:, 0].copy()
        self.pushes: list[PushEvent] = []
        self.shift_step: int | None = None
        self.shift: np.ndarray | None = None
        self._noise = np.random.default_rng(0)
        self._queue: deque = deque()

    # ---- episode start ------------------------------------------------------------------------
    def reset(self, episode_seed: int) -> None:
        """Draw this episode's events and dynamics; call right after task.reset(episode_seed)."""
        spec, task, level = self.spec, self.task, self.spec.level
        schedule, dynamics, self._noise = (np.random.default_rng(s) for s in
                                           np.random.SeedSequence([spec.seed, episode_seed]).spawn(3))
        max_steps, dt = task.spec.max_steps, task.spec.control_dt
        task.model.body_mass[:] = self._mass0
        task.model.geom_friction[:, 0] = self._friction0
        self.pushes, self.shift_step, self.shift = [], None, None
        if spec.push is not None:
            self.pushes = self._draw_pushes(schedule, max_steps, dt, level)
        if spec.target_shift is not None:
            lo, hi = spec.target_shift.at_fraction
            self.shift_step = int(schedule.uniform(lo, hi) * max_steps)
            angle = schedule.uniform(0, 2 * np.pi)
            self.shift = level * spec.target_shift.distance * np.array([np.cos(angle), np.sin(angle), 0.0])
        if spec.dynamics is not None:
            m, f = spec.dynamics.mass_scale * level, spec.dynamics.friction_scale * level
            task.model.body_mass[:] = self._mass0 * dynamics.uniform(1 - m, 1 + m, self._mass0.shape)
            task.model.geom_friction[:, 0] = self._friction0 * dynamics.uniform(1 - f, 1 + f, self._friction0.shape)
        delay = round(level * spec.action_delay.max_steps) if spec.action_delay is not None else 0
        self._queue = deque([np.zeros(task.spec.action_dim)] * delay)
        task.data.xfrc_applied[:] = 0.0

    def _draw_pushes(self, rng, max_steps, dt, level) -> list[PushEvent]:
        push, bodies = self.spec.push, self.task.push_bodies()
        duration = max(1, round(push.duration_s / dt))
        events, step = [], 0
        while push.rate_hz > 0:
            step += int(np.ceil(rng.exponential(1.0 / push.rate_hz) / dt))
            if step >= max_steps:
                break
            angle = rng.uniform(0, 2 * np.pi)
            force = level * push.force * np.array([np.cos(angle), np.sin(angle), 0.0])
            events.append(PushEvent(step, step + duration, int(bodies[rng.integers(len(bodies))]), force))
            step += duration
        return events

    # ---- every step ---------------------------------------------------------------------------
    def observe(self, obs: np.ndarray) -> np.ndarray:
        if self.spec.obs_noise is None or self.spec.level == 0:
            return obs
        std = self.spec.level * self.spec.obs_noise.std
        return (obs + self._noise.normal(0.0, std, np.shape(obs))).astype(np.asarray(obs).dtype)

    def before_step(self, step: int) -> None:
        xfrc = self.task.data.xfrc_applied
        xfrc[:] = 0.0
        for event in self.pushes:
            if event.start_step <= step < event.end_step:
                xfrc[event.body, :3] += event.force
        if step == self.shift_step and self.shift is not None and self.spec.level > 0:
            self.task.displace_target(self.shift)

    def act(self, action: np.ndarray) -> np.ndarray:
        action = np.asarray(action, dtype=np.float64)
        if self.spec.action_noise is not None and self.spec.level > 0:
            action = action + self._noise.normal(0.0, self.spec.level * self.spec.action_noise.std, action.shape)
        if not self._queue:
            return action
        self._queue.append(action)
        return self._queue.popleft()

    def restore(self) -> None:
        """Put the task's model back to its nominal dynamics (e.g. before handing it on)."""
        self.task.model.body_mass[:] = self._mass0
        self.task.model.geom_friction[:, 0] = self._friction0
        self.task.data.xfrc_applied[:] = 0.0
