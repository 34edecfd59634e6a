"""What every task offers: the one interface experts, perturbations, the episode runner, datasets
and (later) the ROS sim node are written against.

A task is a MuJoCo model with joint-space observations and commands. It exposes its MjModel/MjData
so one perturbation implementation serves every task, and a few task-level hooks (goal, object,
pushable bodies, mode of a trajectory) for the parts that differ between tasks.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

Policy = Callable[[np.ndarray], np.ndarray]


class ObsActionLayout:
    """obs_dim and action_dim of anything that names its observation and action features (a task's
    spec, a dataset's header): the names are the truth, the dims follow from them."""

    obs_names: tuple[str, ...]
    action_names: tuple[str, ...]

    @property
    def obs_dim(self) -> int:
        return len(self.obs_names)

    @property
    def action_dim(self) -> int:
        return len(self.action_names)


@dataclass(frozen=True)
class TaskSpec(ObsActionLayout):
    """Static facts about a task: names and sizes that datasets and ROS messages rely on."""

    name: str
    version: str
    obs_names: tuple[str, ...]
    action_names: tuple[str, ...]
    joint_names: tuple[str, ...]  # actuated joints, in command order (sensor_msgs/JointState names)
    control_dt: float  # seconds per step()
    max_steps: int
    modes: tuple[str, ...] = ("default",)  # ways to succeed; mode labels in datasets
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()
    description: str = ""


class PillarCrossing:
    """Which side of a pillar a point went past (the reach-around tasks' modes): where its path first
    crosses the pillar's y going up, near (x below the pillar's) or far. One home for the rule, used
    step by step by the tasks and on a whole path by :meth:`Task.mode_of_path`."""

    def __init__(self, pillar_xy, start_xy=None):
        self.pillar_x, self.pillar_y = float(pillar_xy[0]), float(pillar_xy[1])
        self._prev = None if start_xy is None else np.asarray(start_xy, dtype=np.float64)[:2]
        self.crossing_x: float | None = None

    def add(self, xy) -> None:
        xy = np.asarray(xy, dtype=np.float64)[:2]
        prev = self._prev
        if self.crossing_x is None and prev is not None and prev[1] < self.pillar_y <= xy[1]:
            frac = (self.pillar_y - prev[1]) / max(xy[1] - prev[1], 1e-9)
            self.crossing_x = float(prev[0] + frac * (xy[0] - prev[0]))
        self._prev = xy

    @property
    def mode(self) -> str | None:
        if self.crossing_x is None:
            return None
        return "near" if self.crossing_x < self.pillar_x else "far"

    @classmethod
    def mode_of(cls, path, pillar_xy) -> str | None:
        crossing = cls(pillar_xy)
        for xy in np.asarray(path, dtype=np.float64):
            crossing.add(xy)
        return crossing.mode


@dataclass(frozen=True)
class SceneMarker:
    """A thing in the scene worth drawing (goal, obstacle) in RViz/Foxglove markers and videos.
    World frame, metres; `size` is the full extent along x, y, z (a sphere's diameter three times)."""

    name: str
    shape: str  # "sphere" | "cylinder" | "box"
    position: tuple[float, float, float]
    size: tuple[float, float, float]
    rgba: tuple[float, float, float, float] = (0.5, 0.5, 0.5, 1.0)


@dataclass
class StepResult:
    obs: np.ndarray
    success: bool  # the task's success predicate holds after this step
    done: bool  # success, or max_steps reached
    info: dict = field(default_factory=dict)  # at least "distance" (to the goal, task units)


class Expert(ABC):
    """A scripted closed-loop demonstrator. `mode` is the way it will succeed (dataset label)."""

    mode: str = "default"
    name: str = "expert"

    @abstractmethod
    def __call__(self, obs: np.ndarray) -> np.ndarray:
        ...


class Task(ABC):
    """One episode at a time. reset(seed) makes the episode reproducible from the seed alone."""

    spec: TaskSpec
    model: "object"  # mujoco.MjModel
    data: "object"  # mujoco.MjData

    @abstractmethod
    def reset(self, seed: int) -> np.ndarray:
        """Start a new episode; the initial state depends only on `seed`."""

    @abstractmethod
    def step(self, action: np.ndarray) -> StepResult:
        """Apply one command (clipped to the action range) for control_dt seconds."""

    @abstractmethod
    def observe(self) -> np.ndarray:
        """The current observation (no noise; perturbations add it)."""

    @abstractmethod
    def expert(self, mode: str | None = None, rng: np.random.Generator | None = None) -> Expert:
        """A scripted expert for the current episode; `mode` None means: draw one (see task config)."""

    @abstractmethod
    def distance(self) -> float:
        """Distance from what must reach the goal to the goal (success is a threshold on it)."""

    @abstractmethod
    def mode_reached(self) -> str | None:
        """Which way the episode so far has gone (one of spec.modes), None if not decided yet."""

    def mode_of_path(self, positions) -> str | None:
        """The mode of an episode from the world positions (T, 3) its effector point went through, for
        episodes run elsewhere (a robot, with warpd_episodes computing the positions by forward
        kinematics); None where the task cannot tell one from a path."""
        return None

    # ---- perturbation hooks -------------------------------------------------------------------
    @abstractmethod
    def push_bodies(self) -> list[int]:
        """MuJoCo body ids that external pushes may act on (links, objects)."""

    @abstractmethod
    def displace_target(self, offset: np.ndarray) -> None:
        """Move the goal (or the object to be manipulated) by `offset` (world xyz) mid-episode."""

    # ---- things to look at (markers, videos) ------------------------------------------------------
    def scene_markers(self) -> list[SceneMarker]:
        """Goal and obstacles as they are now (the goal moves under perturbation)."""
        return []

    def effector_position(self) -> np.ndarray:
        """World xyz of the point that must reach the goal (the executed path is drawn from it)."""
        raise NotImplementedError(f"{self.spec.name} does not name an effector point")

    def goal_position(self) -> np.ndarray:
        """World xyz of the goal as it is now (it moves under perturbation): what warpd_sim publishes as its
        goal pose. The default is the position of the scene marker named "goal"; tasks with no such marker
        name no goal point."""
        for marker in self.scene_markers():
            if marker.name == "goal":
                return np.array(marker.position, dtype=np.float64)
        raise NotImplementedError(f"{self.spec.name} does not name a goal point")

    def video_camera(self) -> dict:
        """A fixed free camera for videos (`lookat` xyz, `distance`, `azimuth`, `elevation` in
        degrees, as mujoco.MjvCamera takes them) that keeps the robot, goal and obstacles in view.
        The default frames the bodies (as they are now), the scene markers and the effector, seen
        obliquely from beyond the goal, where the arm hides the least; tasks may choose better."""
        points = [np.asarray(p, dtype=np.float64) for p in self.data.xpos[1:]]
        points += [np.asarray(m.position, dtype=np.float64) for m in self.scene_markers()]
        try:
            points.append(np.asarray(self.effector_position(), dtype=np.float64))
        except NotImplementedError:
            pass
        if len(points) < 2:  # nothing to frame: the whole model from MuJoCo's own size estimate
            stat = self.model.stat
            return {"lookat": tuple(float(v) for v in stat.center), "distance": 1.4 * float(stat.extent),
                    "azimuth": -150.0, "elevation": -35.0}
        points = np.array(points)
        centre = (points.min(0) + points.max(0)) / 2
        radius = float(np.linalg.norm(points - centre, axis=1).max())
        return {"lookat": tuple(float(v) for v in centre), "distance": max(0.5, 3.4 * radius),
                "azimuth": -150.0, "elevation": -35.0}

    def plot_xy(self, obs: np.ndarray) -> np.ndarray:
        """(T, 2) positions to draw for a (T, obs_dim) trajectory in `warpd plot-demos`."""
        return np.asarray(obs)[:, :2]

    def close(self) -> None:
        pass

    def clip_action(self, action) -> np.ndarray:
        low = np.asarray(self.spec.action_low, dtype=np.float64)
        high = np.asarray(self.spec.action_high, dtype=np.float64)
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != low.shape:
            raise ValueError(f"{self.spec.name}: action must have {low.size} values, got {a.size}")
        return np.clip(np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0), low, high)
