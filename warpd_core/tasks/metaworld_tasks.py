"""Metaworld v3 environments as warpd tasks, so WARPD is trained and evaluated on MT10 through the
same interface (base.Task) as the default task.

One MetaworldTask wraps one raw Metaworld environment, without the gymnasium wrappers of
gymnasium.make("Meta-World/MT1"): those pick the variation from the wrapper's RNG state rather than
from the seed passed to reset, and their env checker warns about observations outside the declared
space. The environment is set up the way MT1/MT10 set it up (goal visible in the observation), then
told to draw each episode's variation (object and goal positions, with the environment's own
rejection rules) from its seeded generator, so reset(seed) is reproducible from the seed alone and
every seed is its own variation instead of one of MT1's 50.

Observation (39, Metaworld's layout): hand xyz, gripper opening (0..1), object 1 position and
quaternion, object 2 position and quaternion (zeros in MT10, which has one object per task), the
same 18 values from the previous step, goal xyz. Quaternion order depends on the environment
(scipy x,y,z,w in most, MuJoCo w,x,y,z in drawer-open and button-press-topdown, zeros in
drawer-close and window-*), so they are named q0..q3.
Action (4): hand displacement dx, dy, dz (scaled by 1 cm per step) and grip effort, all in [-1, 1].

Importing this module does not import Metaworld (it is imported when a task is built), so the
registry can list these tasks cheaply.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Callable

import numpy as np

from warpd_core.errors import WarpdError
from warpd_core.tasks.base import Expert, StepResult, Task, TaskSpec


@dataclass(frozen=True)
class _EnvFacts:
    policy: str  # class in metaworld.policies that solves the environment
    objects: tuple[str, ...]  # bodies the task moves (push targets besides the hand)
    fixture: str | None = None  # static body that carries the goal (the goal moves with it)
    planar_goal: bool = False  # the goal lies on the table: displace_target ignores z


# MT10, in Metaworld's order. Fixture tasks have a goal defined by the furniture (a door's open
# angle, a drawer's travel, a hole): moving the goal alone would make them unsolvable or trivial,
# so displace_target moves the furniture and its goal together.
_MT10_FACTS = {
    "reach-v3": _EnvFacts("SawyerReachV3Policy", ()),  # its puck is a distractor, not manipulated
    "push-v3": _EnvFacts("SawyerPushV3Policy", ("obj",), planar_goal=True),
    "pick-place-v3": _EnvFacts("SawyerPickPlaceV3Policy", ("obj",)),
    "door-open-v3": _EnvFacts("SawyerDoorOpenV3Policy", ("door_link",), fixture="door"),
    "drawer-open-v3": _EnvFacts("SawyerDrawerOpenV3Policy", ("drawer_link",), fixture="drawer"),
    "drawer-close-v3": _EnvFacts("SawyerDrawerCloseV3Policy", ("drawer_link",), fixture="drawer"),
    "button-press-topdown-v3": _EnvFacts("SawyerButtonPressTopdownV3Policy", ("button",), fixture="box"),
    "peg-insert-side-v3": _EnvFacts("SawyerPegInsertionSideV3Policy", ("peg",), fixture="box"),
    "window-open-v3": _EnvFacts("SawyerWindowOpenV3Policy", ("windowb_a",), fixture="window"),
    "window-close-v3": _EnvFacts("SawyerWindowCloseV3Policy", ("windowb_a",), fixture="window"),
}
PREFIX = "metaworld/"
MT10 = tuple(PREFIX + env_name for env_name in _MT10_FACTS)

_FRAME = ("hand_x", "hand_y", "hand_z", "gripper_distance",
          *(f"obj{i}_{c}" for i in (1, 2) for c in ("x", "y", "z", "q0", "q1", "q2", "q3")))
OBS_NAMES = (*_FRAME, *(f"prev_{n}" for n in _FRAME), "goal_x", "goal_y", "goal_z")
GOAL = slice(36, 39)
CURRENT_FRAME = slice(0, 18)
PREVIOUS_FRAME = slice(18, 36)
HAND_BODY = "hand"


def metaworld_factories() -> dict[str, Callable[..., Task]]:
    """Registry name -> factory for every MT10 task; building one imports Metaworld."""
    return {PREFIX + env_name: partial(MetaworldTask, env_name) for env_name in _MT10_FACTS}


class MetaworldExpert(Expert):
    """Metaworld's scripted policy for the environment, as a float64 action clipped to [-1, 1]."""

    def __init__(self, policy):
        self._policy = policy
        self.name = type(policy).__name__

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            # every call with a large error warns that its gain "may be too high"; the env clips
            warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high")
            # a copy: some policies (door-open) edit the observation they are given in place
            action = self._policy.get_action(np.array(obs, dtype=np.float64))
        return np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)


class MetaworldTask(Task):
    """One Metaworld v3 environment (an MT10 name like "push-v3") behind the warpd Task interface."""

    def __init__(self, env_name: str):
        if env_name not in _MT10_FACTS:
            raise WarpdError(f"no Metaworld task {env_name!r}", "supported: " + ", ".join(_MT10_FACTS))
        self.env_name, self._facts = env_name, _MT10_FACTS[env_name]
        self._env = _make_env(env_name)
        self.model, self.data = self._env.model, self._env.data
        self._goal_site = _site_id(self.model, "goal")  # the marker drawn in renders; -1 if none
        self.spec = self._make_spec()
        self.reset(0)

    def _make_spec(self) -> TaskSpec:
        from importlib import metadata

        return TaskSpec(
            name=PREFIX + self.env_name,
            version=f"metaworld {metadata.version('metaworld')}, v3 env",
            obs_names=OBS_NAMES,
            action_names=("dx", "dy", "dz", "grip"),
            joint_names=_robot_joint_names(self.model),
            control_dt=float(self._env.dt),
            max_steps=int(self._env.max_path_length),
            modes=("default",),
            action_low=(-1.0,) * 4,
            action_high=(1.0,) * 4,
            description=f"Metaworld {self.env_name} on the Sawyer arm (MT10), goal in the observation",
        )

    # ---- episode ------------------------------------------------------------------------------
    def reset(self, seed: int) -> np.ndarray:
        self._env.seed(int(seed))  # the variation is drawn from env.np_random during reset
        self._obs, _ = self._env.reset()
        # drawer-open and window-* move their furniture at reset without recomputing positions, so
        # Metaworld's first observation shows the object where the previous layout had it
        self._obs[PREVIOUS_FRAME] = self._sync_current_frame()
        self.steps = 0
        return self.observe()

    def step(self, action) -> StepResult:
        obs, _, _, truncated, info = self._env.step(self.clip_action(action))
        obs[GOAL] = self._env._target_pos  # the env clips the goal to its sampling box; a displaced one may leave it
        self._obs, self.steps = obs, self.steps + 1
        success = bool(info["success"])
        done = success or truncated or self.steps >= self.spec.max_steps
        return StepResult(self.observe(), success, done, {**info, "distance": self._distance(info)})

    def observe(self) -> np.ndarray:
        return self._obs.copy()

    def distance(self) -> float:
        _, info = self._env.evaluate_state(self._obs, np.zeros(4))
        return self._distance(info)

    def _distance(self, info: dict) -> float:
        """The quantity Metaworld's success threshold applies to (task units, metres)."""
        if self.env_name == "door-open-v3":  # its info has no distance: success is handle x near goal x
            return float(abs(self._obs[4] - self._env._target_pos[0]))
        return float(info["obj_to_target"])

    def mode_reached(self) -> str | None:
        return "default" if self.steps > 0 else None

    def expert(self, mode: str | None = None, rng: np.random.Generator | None = None) -> MetaworldExpert:
        """Metaworld's scripted policy; there is one mode, so `rng` is not needed."""
        if mode not in (None, "default"):
            raise WarpdError(f"{self.spec.name} has only the mode 'default', not {mode!r}")
        import metaworld.policies

        return MetaworldExpert(getattr(metaworld.policies, self._facts.policy)())

    # ---- perturbation hooks -------------------------------------------------------------------
    def push_bodies(self) -> list[int]:
        return [self.model.body(name).id for name in (HAND_BODY, *self._facts.objects)]

    def displace_target(self, offset: np.ndarray) -> None:
        """Move the goal by `offset` (world xyz); for furniture tasks move the furniture with it.

        An xy offset is taken as (x, y, 0); push-v3 keeps its goal on the table (z ignored). The
        observation shows the change at once.
        """
        given = np.asarray(offset, dtype=np.float64).reshape(-1)
        if given.size not in (2, 3) or not np.all(np.isfinite(given)):
            raise WarpdError(f"{self.spec.name}: target offset must be 2 or 3 finite numbers, got {offset!r}")
        offset = np.zeros(3)
        offset[:given.size] = given
        if self._facts.planar_goal:
            offset[2] = 0.0
        if self._facts.fixture is not None:
            self.model.body(self._facts.fixture).pos += offset
        target = self._env._target_pos = self._env._target_pos + offset
        if self._goal_site >= 0:
            self.model.site_pos[self._goal_site] = target
        self._sync_current_frame()
        self._obs[GOAL] = target

    def _sync_current_frame(self) -> np.ndarray:
        """Recompute the hand, gripper and object part of the observation from the simulator state,
        both in our observation and in the copy the env's next step reports as the previous frame."""
        import mujoco

        mujoco.mj_forward(self.model, self.data)
        frame = self._env._get_curr_obs_combined_no_goal()
        self._obs[CURRENT_FRAME] = frame
        self._env._prev_obs = frame.copy()
        return frame

    def close(self) -> None:
        self._env.close()


def _make_env(env_name: str):
    """A raw Metaworld env set up like MT1's (goal observable) that samples a variation per reset."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    env = ALL_V3_ENVIRONMENTS[env_name]()
    env.set_task(_mt1_task(env_name))  # the MT set-up: goal in the observation
    env._freeze_rand_vec = False  # draw every episode's variation ...
    env.seeded_rand_vec = True  # ... from env.np_random, which reset(seed) seeds
    return env


@lru_cache(maxsize=None)
def _mt1_task(env_name: str):
    """One of MT1's task descriptions, for its set-up only (building MT1 takes ~0.5 s, so once)."""
    import metaworld

    return metaworld.MT1(env_name, seed=0).train_tasks[0]


def _robot_joint_names(model) -> tuple[str, ...]:
    """The Sawyer's joints: 7 arm joints (driven through the mocap weld) and 2 finger joints."""
    root = model.body("right_arm_base_link").id

    def on_robot(body: int) -> bool:
        while body not in (0, root):
            body = model.body_parentid[body]
        return body == root

    return tuple(model.joint(j).name for j in range(model.njnt) if on_robot(model.jnt_bodyid[j]))


def _site_id(model, name: str) -> int:
    import mujoco

    return mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, name)
