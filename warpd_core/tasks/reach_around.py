"""reach_around — the default task: a 3-joint arm reaches past a pillar on either side.

Why this task: it is small enough to train on 2 CPU cores, its state maps one-to-one onto
sensor_msgs/JointState (3 joints, positions and velocities) and its commands onto a velocity
forward_command_controller, and it is genuinely *bimodal*. The fingertip must get from one side
of a pillar to the other; going round the near side and round the far side are equally good, and
the average of the two runs into the pillar. See assets/reach_around.xml for the geometry.

Observation (8): joint positions (3), joint velocities (3), goal x, y.  Action (3): joint
velocities, rad/s, within ±1.5. Success: fingertip within 3 cm of the goal (in the plane).
"""
from __future__ import annotations

from importlib import resources

import mujoco
import numpy as np

from warpd_core.tasks.base import Expert, PillarCrossing, SceneMarker, StepResult, Task, TaskSpec

LINKS = np.array([0.25, 0.25, 0.15])  # link lengths in the MJCF (shoulder->elbow->wrist->finger)
PILLAR_XY = np.array([0.40, 0.0])
PILLAR_CLEARANCE = 0.065  # pillar radius + finger radius
START_XY = np.array([0.40, -0.22])
GOAL_XY = np.array([0.40, 0.22])
SUCCESS_RADIUS = 0.03
Q_REST = np.array([-1.05, 1.35, 0.75])  # elbow-left posture the IK and the expert's null space prefer
MODES = ("near", "far")
VIA_OFFSET = 0.15  # via points sit this far from the pillar centre along x, on either side

SPEC = TaskSpec(
    name="reach_around",
    version="1.0",
    obs_names=("q_shoulder", "q_elbow", "q_wrist", "qd_shoulder", "qd_elbow", "qd_wrist", "goal_x", "goal_y"),
    action_names=("shoulder_vel", "elbow_vel", "wrist_vel"),
    joint_names=("shoulder", "elbow", "wrist"),
    control_dt=0.02,
    max_steps=250,
    modes=MODES,
    action_low=(-1.5, -1.5, -1.5),
    action_high=(1.5, 1.5, 1.5),
    description="3-joint arm; fingertip reaches a goal behind a pillar, round its near or far side",
)


def fingertip_xy(q: np.ndarray) -> np.ndarray:
    """Planar forward kinematics of the fingertip for joint positions q (..., 3)."""
    angles = np.cumsum(np.asarray(q, dtype=np.float64), axis=-1)
    return np.stack([(LINKS * np.cos(angles)).sum(-1), (LINKS * np.sin(angles)).sum(-1)], axis=-1)


def fingertip_jacobian(q: np.ndarray) -> np.ndarray:
    """d(fingertip xy)/dq, shape (2, 3)."""
    angles = np.cumsum(q)
    sx, cx = LINKS * np.sin(angles), LINKS * np.cos(angles)
    # column j sums the contributions of links j..2
    return np.stack([-np.cumsum(sx[::-1])[::-1], np.cumsum(cx[::-1])[::-1]])


def solve_ik(target_xy: np.ndarray, q_init: np.ndarray = Q_REST, iters: int = 200) -> np.ndarray:
    """Damped least squares IK for the fingertip, staying near q_init in the null space."""
    q = np.array(q_init, dtype=np.float64)
    for _ in range(iters):
        err = target_xy - fingertip_xy(q)
        if np.linalg.norm(err) < 1e-6:
            break
        jac = fingertip_jacobian(q)
        q += _dls_step(jac, err, q, q_init, null_gain=0.1)
    return q


def _dls_step(jac, task_vel, q, q_rest, null_gain, damping=0.03):
    jjt = jac @ jac.T + damping**2 * np.eye(2)
    pinv = jac.T @ np.linalg.inv(jjt)
    return pinv @ task_vel + (np.eye(3) - pinv @ jac) @ (null_gain * (q_rest - q))


class ReachAroundExpert(Expert):
    """Closed-loop scripted expert: heads for a via point on its side of the pillar until it is
    nearly level with the pillar, then for the goal. Everything is computed from the observation,
    so it reacts to pushes and to a goal that moves. (No obstacle-avoidance term: with one, even
    the average of the two modes would slide round the pillar, and the task would stop testing
    multimodality.)"""

    name = "reach_around_scripted_v1"

    def __init__(self, mode: str, max_speed: float = 0.3, gain: float = 4.0):
        if mode not in MODES:
            raise ValueError(f"reach_around has modes {MODES}, not {mode!r}")
        self.mode = mode
        self.via = PILLAR_XY + np.array([-VIA_OFFSET if mode == "near" else VIA_OFFSET, 0.0])
        self.max_speed, self.gain = max_speed, gain

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        q, goal = np.asarray(obs[:3], np.float64), np.asarray(obs[6:8], np.float64)
        tip = fingertip_xy(q)
        target = self.via if tip[1] < PILLAR_XY[1] - 0.03 else goal
        vel = self.gain * (target - tip)
        speed = np.linalg.norm(vel)
        if speed > self.max_speed:
            vel *= self.max_speed / speed
        qd = _dls_step(fingertip_jacobian(q), vel, q, Q_REST, null_gain=1.0)
        return np.clip(qd, SPEC.action_low, SPEC.action_high)


class ReachAroundTask(Task):
    spec = SPEC

    def __init__(self, mode_probs: dict[str, float] | None = None, frame_skip: int | None = None):
        xml = resources.files("warpd_core").joinpath("assets/reach_around.xml").read_text()
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)
        self.frame_skip = frame_skip or int(round(SPEC.control_dt / self.model.opt.timestep))
        self.mode_probs = dict(mode_probs or {m: 1.0 / len(MODES) for m in MODES})
        unknown = set(self.mode_probs) - set(MODES)
        if unknown or not np.isclose(sum(self.mode_probs.values()), 1.0) or min(self.mode_probs.values()) < 0:
            raise ValueError(f"mode_probs must be non-negative over {MODES} and sum to 1, got {self.mode_probs}")
        self._tip_site = self.model.site("fingertip").id
        self._goal_mocap = self.model.body("goal").mocapid[0]
        self._q_start_nominal = solve_ik(START_XY)
        self._rng = np.random.default_rng(0)
        self.reset(0)

    # ---- episode ------------------------------------------------------------------------------
    def reset(self, seed: int) -> np.ndarray:
        self._rng = np.random.default_rng(seed)
        mujoco.mj_resetData(self.model, self.data)
        start = START_XY + self._rng.uniform(-0.02, 0.02, 2)
        goal = GOAL_XY + self._rng.uniform(-0.02, 0.02, 2)
        self.data.qpos[:] = solve_ik(start, self._q_start_nominal)
        self.data.mocap_pos[self._goal_mocap, :2] = goal
        mujoco.mj_forward(self.model, self.data)
        self.steps = 0
        self._crossing = PillarCrossing(PILLAR_XY, self.tip_xy())
        return self.observe()

    def step(self, action) -> StepResult:
        self.data.ctrl[:] = self.clip_action(action)
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        self.steps += 1
        tip = self.tip_xy()
        self._crossing.add(tip)
        dist = self.distance()
        success = dist < SUCCESS_RADIUS
        return StepResult(self.observe(), success, success or self.steps >= SPEC.max_steps,
                          {"distance": dist, "tip": tip})

    def observe(self) -> np.ndarray:
        d = self.data
        return np.concatenate([d.qpos[:3], d.qvel[:3], d.mocap_pos[self._goal_mocap, :2]]).astype(np.float32)

    def tip_xy(self) -> np.ndarray:
        return self.data.site_xpos[self._tip_site, :2].copy()

    def goal_xy(self) -> np.ndarray:
        return self.data.mocap_pos[self._goal_mocap, :2].copy()

    def goal_position(self) -> np.ndarray:
        """World xyz of the goal (x, y are the observation's goal; z is the height the goal is drawn at)."""
        return self.data.mocap_pos[self._goal_mocap].copy()

    def distance(self) -> float:
        return float(np.linalg.norm(self.tip_xy() - self.goal_xy()))

    def mode_reached(self) -> str | None:
        return self._crossing.mode

    def mode_of_path(self, positions) -> str | None:
        return PillarCrossing.mode_of(np.asarray(positions)[:, :2], PILLAR_XY)

    def expert(self, mode: str | None = None, rng: np.random.Generator | None = None) -> ReachAroundExpert:
        if mode is None:
            rng = rng if rng is not None else self._rng
            names = list(self.mode_probs)
            mode = names[rng.choice(len(names), p=[self.mode_probs[n] for n in names])]
        return ReachAroundExpert(mode)

    # ---- perturbation hooks -------------------------------------------------------------------
    def push_bodies(self) -> list[int]:
        return [self.model.body(n).id for n in ("link2", "link3", "finger")]

    def displace_target(self, offset: np.ndarray) -> None:
        goal = self.data.mocap_pos[self._goal_mocap]
        goal[:2] += np.asarray(offset, dtype=np.float64)[:2]
        goal[1] = max(goal[1], PILLAR_XY[1] + PILLAR_CLEARANCE + 0.06)  # never inside or in front of the pillar

    def plot_xy(self, obs: np.ndarray) -> np.ndarray:
        return fingertip_xy(np.asarray(obs)[:, :3])

    # ---- things to look at --------------------------------------------------------------------
    def video_camera(self) -> dict:
        """From behind the base and above: both ways round the pillar and the goal stay in view."""
        return {"lookat": (0.30, 0.0, 0.08), "distance": 1.0, "azimuth": 0.0, "elevation": -68.0}

    def effector_position(self) -> np.ndarray:
        return self.data.site_xpos[self._tip_site].copy()

    def scene_markers(self) -> list[SceneMarker]:
        return [_geom_marker(self.model, self.data, "pillar", "obstacle"),
                SceneMarker("goal", "sphere", _floats(self.data.mocap_pos[self._goal_mocap]), (0.04,) * 3,
                            (0.2, 0.8, 0.3, 0.6))]


def _geom_marker(model, data, geom: str, name: str) -> SceneMarker:
    """A cylinder geom of the model as a marker (pillars are cylinders)."""
    g = model.geom(geom).id
    radius, half_height = model.geom_size[g][:2]
    return SceneMarker(name, "cylinder", _floats(data.geom_xpos[g]), _floats([2 * radius, 2 * radius, 2 * half_height]),
                       _floats(model.geom_rgba[g]))


def _floats(values) -> tuple:
    return tuple(float(v) for v in values)
