"""panda_reach_around — a Franka Emika Panda reaches past a pillar, round its near or its far side.

Why this task: robotics engineers judge a policy package on a real arm. This is reach_around's
bimodal problem on a 7-joint Panda in 3-D: the hand starts on one side of a pillar and must reach a
goal on the other; going round the near side (between the robot's base and the pillar) and round
the far side are equally good, and the average of the two drives the hand into the pillar.

The robot is Franka's own MJCF with its meshes, used in place from the `gymnasium-robotics` wheel
(`envs/assets/kitchen_franka/franka_assets/`); nothing is copied into this repository. The scene
is built around it with MjSpec: joints and links renamed as Franka's ROS drivers name them
(`panda_joint1..7`, `panda_link0..7`), gravity compensated as the real arm's controller does, and
one of two ros2_control command interfaces:
- `panda_reach_around`: **velocity** — the action is 7 joint velocities (rad/s) within Franka's
  velocity limits, tracked by a velocity servo (a push makes the arm drift; the policy must react);
- `panda_reach_around_position`: **position** — the action is 7 joint position targets (rad) within
  the joint limits, tracked by a position servo.

Observation (17): joint positions (7), joint velocities (7), goal x, y, z. Success: the end-effector
(the point between the fingertips) within 3 cm of the goal. Episodes are 250 steps of 0.02 s.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import mujoco
import numpy as np

from warpd_core.errors import WarpdError
from warpd_core.tasks.base import Expert, PillarCrossing, SceneMarker, StepResult, Task, TaskSpec

JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
CONTROL_DT = 0.02
# Franka's published limits (frankaemika.github.io, "Robot and interface specifications"); the model's
# joint ranges are read from the MJCF, the velocity limits are not in it.
VELOCITY_LIMITS = np.array([2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61])
EFFORT_LIMITS = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])
# position servo gains per joint (kp N·m/rad, kv N·m·s/rad): a target kv/kp + one step ahead of the
# joint moves it at the commanded speed (kp * lead = kv * qd at steady speed, plus the step's travel)
POSITION_KP = np.array([600.0, 600.0, 600.0, 600.0, 150.0, 150.0, 150.0])
POSITION_KV = np.array([30.0, 30.0, 30.0, 30.0, 5.0, 5.0, 5.0])
POSITION_LEAD_S = POSITION_KV / POSITION_KP + CONTROL_DT
VELOCITY_KV = np.array([40.0, 40.0, 40.0, 40.0, 10.0, 10.0, 10.0])
Q_READY = np.array([0.0, -0.3, 0.0, -2.2, 0.0, 0.33, 0.785])  # hand down, elbow up: the posture IK stays near

PILLAR_XY = np.array([0.55, 0.0])
PILLAR_RADIUS = 0.04
PILLAR_HEIGHT = 0.32
REACH_Z = 0.25  # the hand travels at this height (the fingers reach below the pillar top at 0.32: they cannot pass over)
START = np.array([0.55, -0.28, REACH_Z])
GOAL = np.array([0.55, 0.28, REACH_Z])
VIA_OFFSET = 0.21  # via points sit this far from the pillar axis along x: the hand clears it by ~8 cm
SUCCESS_RADIUS = 0.03
MODES = ("near", "far")
ASSETS_HINT = "pip install gymnasium-robotics==1.4.2 (it ships the Franka Panda MJCF and meshes)"


def _spec(name: str, interface: str) -> TaskSpec:
    q = tuple(f"q_{j}" for j in JOINTS)
    qd = tuple(f"qd_{j}" for j in JOINTS)
    if interface == "velocity":
        actions, low, high = tuple(f"{j}_vel" for j in JOINTS), tuple(-VELOCITY_LIMITS), tuple(VELOCITY_LIMITS)
    else:
        lo, hi = _joint_ranges()
        actions, low, high = tuple(f"{j}_pos" for j in JOINTS), tuple(lo), tuple(hi)
    return TaskSpec(name=name, version="1.0", obs_names=q + qd + ("goal_x", "goal_y", "goal_z"),
                    action_names=actions, joint_names=JOINTS, control_dt=CONTROL_DT, max_steps=250, modes=MODES,
                    action_low=tuple(float(v) for v in low), action_high=tuple(float(v) for v in high),
                    description=f"Franka Panda (7 joints, {interface} interface); the hand reaches a goal behind "
                                "a pillar, round its near or far side")


# ---------------------------------------------------------------------------------------------- model
def franka_assets_dir() -> Path:
    """Where the gymnasium-robotics wheel keeps Franka's MJCF (found without importing the package,
    whose import pulls in PettingZoo environments)."""
    found = importlib.util.find_spec("gymnasium_robotics")
    if found is None or not found.submodule_search_locations:
        raise WarpdError("the Franka Panda model is not installed", ASSETS_HINT)
    path = Path(list(found.submodule_search_locations)[0]) / "envs/assets/kitchen_franka/franka_assets"
    if not (path / "chain.xml").is_file():
        raise WarpdError(f"no Franka MJCF at {path}", ASSETS_HINT)
    return path


def build_model(interface: str = "velocity") -> mujoco.MjModel:
    """Franka's chain + our scene (floor, pillar, goal) + the actuators of one command interface."""
    if interface not in ("velocity", "position"):
        raise ValueError(f"interface must be 'velocity' or 'position', not {interface!r}")
    assets = franka_assets_dir()
    xml = f"""<mujoco model="warpd_panda_reach_around">
      <include file="{assets / 'assets.xml'}"/>
      <worldbody>
        <light pos="0.5 0 2" dir="0 0 -1" diffuse="0.8 0.8 0.8"/>
        <geom name="floor" type="plane" size="1.5 1.5 0.05" rgba="0.92 0.92 0.9 1"/>
        <geom name="pillar" type="cylinder" pos="{PILLAR_XY[0]} {PILLAR_XY[1]} {PILLAR_HEIGHT / 2}"
              size="{PILLAR_RADIUS} {PILLAR_HEIGHT / 2}" rgba="0.8 0.3 0.2 1" contype="1" conaffinity="1"/>
        <body name="goal" mocap="true" pos="{GOAL[0]} {GOAL[1]} {GOAL[2]}">
          <geom name="goal_marker" type="sphere" size="0.02" rgba="0.2 0.8 0.3 0.5" contype="0" conaffinity="0"/>
        </body>
        <include file="{assets / 'chain.xml'}"/>
      </worldbody>
    </mujoco>"""
    spec = mujoco.MjSpec.from_string(xml)
    # Mesh paths come out relative to the included file's folder, missing the meshdir: point them at it.
    spec.meshdir = ""
    for mesh in spec.meshes:
        mesh.file = str(assets / "meshes" / Path(mesh.file).relative_to(assets))
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    for body in spec.bodies:
        if body.name.startswith("panda0_"):
            body.name = body.name.replace("panda0_", "panda_")
            body.gravcomp = 1.0  # the real arm compensates gravity in its own controller
    for joint in spec.joints:
        joint.name = joint.name.replace("robot:panda0_", "panda_")
        if joint.name in JOINTS:
            joint.damping = 0.5  # the MJCF's 100 N·m·s/rad would fight the servo; friction stays small
            joint.armature = 0.1
        else:  # fingers: open, held by a spring (no gripper in this task)
            joint.stiffness, joint.springref, joint.damping = 200.0, 0.04, 10.0
    for i, joint in enumerate(JOINTS):
        act = spec.add_actuator()
        act.name, act.target, act.trntype = joint, joint, mujoco.mjtTrn.mjTRN_JOINT
        act.gaintype, act.biastype = mujoco.mjtGain.mjGAIN_FIXED, mujoco.mjtBias.mjBIAS_AFFINE
        act.forcelimited, act.forcerange = True, [-EFFORT_LIMITS[i], EFFORT_LIMITS[i]]
        if interface == "velocity":
            kv = VELOCITY_KV[i]
            act.gainprm[0], act.biasprm[:3] = kv, [0.0, 0.0, -kv]
            act.ctrllimited, act.ctrlrange = True, [-VELOCITY_LIMITS[i], VELOCITY_LIMITS[i]]
        else:
            kp, kv = POSITION_KP[i], POSITION_KV[i]
            act.gainprm[0], act.biasprm[:3] = kp, [0.0, -kp, -kv]
            act.inheritrange = 1.0  # ctrlrange = the joint's range
    model = spec.compile()
    return model


@lru_cache(maxsize=1)
def _joint_ranges() -> tuple[np.ndarray, np.ndarray]:
    model = build_model("velocity")
    ranges = np.array([model.joint(j).range for j in JOINTS])
    return ranges[:, 0], ranges[:, 1]


SPEC = _spec("panda_reach_around", "velocity")


@lru_cache(maxsize=1)
def position_spec() -> TaskSpec:
    return _spec("panda_reach_around_position", "position")


# ---------------------------------------------------------------------------------------------- IK
class DifferentialIK:
    """Damped least squares on MuJoCo's site Jacobian: end-effector position + "hand down" orientation,
    with joint-limit avoidance in the null space.

    Our own rather than mink's: the task needs one 6x7 solve per step with a fixed posture target, which
    is 20 lines on mj_jacSite; mink's QP (and its solver dependency) adds nothing here, and the expert
    then runs from the observation alone (a second MjData on the same model), as fast as the sim.
    """

    def __init__(self, model: mujoco.MjModel, damping: float = 0.05):
        self.model = model
        self.data = mujoco.MjData(model)
        self.site = model.site("end_effector").id
        self.qadr = np.array([model.joint(j).qposadr[0] for j in JOINTS])
        self.dadr = np.array([model.joint(j).dofadr[0] for j in JOINTS])
        self.low, self.high = np.array([model.joint(j).range for j in JOINTS]).T
        self.damping = damping
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))
        mujoco.mj_forward(model, self.data)
        self.down = self._site_rotation_at(Q_READY)  # the orientation the hand keeps

    def _set(self, q: np.ndarray) -> None:
        self.data.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)

    def _site_rotation_at(self, q) -> np.ndarray:
        self._set(np.asarray(q, np.float64))
        return self.data.site_xmat[self.site].reshape(3, 3).copy()

    def position(self, q: np.ndarray) -> np.ndarray:
        self._set(np.asarray(q, np.float64))
        return self.data.site_xpos[self.site].copy()

    def joint_velocity(self, q: np.ndarray, linear_velocity: np.ndarray, null_gain: float = 1.0) -> np.ndarray:
        """qd (7,) that moves the end-effector at `linear_velocity` (world, m/s), turns the hand back to
        pointing down, and drifts toward Q_READY and away from the joint limits in the null space."""
        q = np.asarray(q, np.float64)
        self._set(q)
        mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self.site)
        jac = np.vstack([self._jacp[:, self.dadr], self._jacr[:, self.dadr]])  # (6, 7)
        rot = self.data.site_xmat[self.site].reshape(3, 3)
        # orientation error as a rotation vector (small-angle form of log(R_target R^T))
        err = rot @ self.down.T
        omega = 0.5 * np.array([err[2, 1] - err[1, 2], err[0, 2] - err[2, 0], err[1, 0] - err[0, 1]])
        twist = np.concatenate([linear_velocity, -2.0 * omega])  # (6,)
        jjt = jac @ jac.T + self.damping ** 2 * np.eye(6)
        pinv = jac.T @ np.linalg.solve(jjt, np.eye(6))  # (7, 6)
        span = self.high - self.low
        mid_pull = Q_READY - q
        # steeper near a limit: the last 10% of each range pushes back hard
        margin = np.minimum(q - self.low, self.high - q) / span
        limit_push = np.where(margin < 0.1, np.sign((self.low + self.high) / 2 - q) * (0.1 - margin) * 20.0, 0.0)
        null = (np.eye(7) - pinv @ jac) @ (null_gain * mid_pull + limit_push)
        return pinv @ twist + null

    def solve(self, target: np.ndarray, q_init: np.ndarray = Q_READY, iters: int = 300) -> np.ndarray:
        """Joint positions that put the end-effector at `target` with the hand down (near q_init)."""
        q = np.array(q_init, np.float64)
        for _ in range(iters):
            err = np.asarray(target) - self.position(q)
            step = self.joint_velocity(q, 5.0 * err, null_gain=0.5) * 0.1
            q = np.clip(q + step, self.low, self.high)
            if np.linalg.norm(err) < 1e-5:
                break
        return q


@lru_cache(maxsize=1)
def _shared_ik() -> DifferentialIK:
    return DifferentialIK(build_model("velocity"))


def ee_position(q: np.ndarray) -> np.ndarray:
    """Forward kinematics of the end-effector for arm joint positions q (7,)."""
    return _shared_ik().position(q)


class PandaReachAroundExpert(Expert):
    """Closed-loop scripted expert: heads for a via point on its side of the pillar until it is nearly
    past the pillar, then for the goal, by differential IK. Everything is computed from the
    observation, so it reacts to pushes and to a goal that moves.

    Joint limits: a null-space push away from the last 10% of every range, and no command that would
    cross a limit within the next step. Collisions: the via points keep the hand ~8 cm clear of the
    pillar and the arm's links pass above the pillar's top; there is deliberately no repulsive term
    (with one, the average of the two modes would slide round the pillar and the task would stop
    testing multimodality). Contacts with the pillar are counted per episode by `pillar_contacts()`."""

    name = "panda_reach_around_dik_v1"

    def __init__(self, mode: str, interface: str = "velocity", max_speed: float = 0.35, gain: float = 4.0):
        if mode not in MODES:
            raise ValueError(f"panda_reach_around has modes {MODES}, not {mode!r}")
        self.mode, self.interface = mode, interface
        # just past the pillar's axis, so the hand is beside the pillar when it turns for the goal
        self.via = np.array([PILLAR_XY[0] + (-VIA_OFFSET if mode == "near" else VIA_OFFSET), PILLAR_XY[1] + 0.05, REACH_Z])
        self.max_speed, self.gain = max_speed, gain
        self.ik = _shared_ik()
        spec = SPEC if interface == "velocity" else position_spec()
        self.low, self.high = np.array(spec.action_low), np.array(spec.action_high)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        q, goal = np.asarray(obs[:7], np.float64), np.asarray(obs[14:17], np.float64)
        ee = self.ik.position(q)
        # the via point until the hand is past the pillar's axis: the hand's housing reaches ~8 cm beyond
        # the end-effector, so cutting the corner earlier would clip the pillar's top edge
        target = self.via if ee[1] < PILLAR_XY[1] + 0.02 else goal
        vel = self.gain * (target - ee)
        speed = np.linalg.norm(vel)
        if speed > self.max_speed:
            vel *= self.max_speed / speed
        qd = self.ik.joint_velocity(q, vel)
        # never command across a joint limit within one step
        qd = np.clip(qd, (self.ik.low - q) / CONTROL_DT, (self.ik.high - q) / CONTROL_DT)
        qd = np.clip(qd, -VELOCITY_LIMITS, VELOCITY_LIMITS)
        if self.interface == "velocity":
            return qd
        return np.clip(q + qd * POSITION_LEAD_S, self.low, self.high)  # a target one servo lag ahead


# ---------------------------------------------------------------------------------------------- task
class PandaReachAroundTask(Task):
    def __init__(self, mode_probs: dict[str, float] | None = None, interface: str = "velocity"):
        self.interface = interface
        self.spec = SPEC if interface == "velocity" else position_spec()
        self.model = build_model(interface)
        self.data = mujoco.MjData(self.model)
        self.frame_skip = int(round(CONTROL_DT / self.model.opt.timestep))
        self.mode_probs = dict(mode_probs or {m: 1.0 / len(MODES) for m in MODES})
        unknown = set(self.mode_probs) - set(MODES)
        if unknown or not np.isclose(sum(self.mode_probs.values()), 1.0) or min(self.mode_probs.values()) < 0:
            raise ValueError(f"mode_probs must be non-negative over {MODES} and sum to 1, got {self.mode_probs}")
        self._site = self.model.site("end_effector").id
        self._goal_mocap = self.model.body("goal").mocapid[0]
        self._qadr = np.array([self.model.joint(j).qposadr[0] for j in JOINTS])
        self._dadr = np.array([self.model.joint(j).dofadr[0] for j in JOINTS])
        self._fingers = [self.model.joint(j).qposadr[0] for j in ("panda_finger_joint1", "panda_finger_joint2")]
        self._pillar = self.model.geom("pillar").id
        self._robot_bodies = {self.model.body(n).id for n in self._robot_body_names()}
        self._q_start_nominal = _shared_ik().solve(START)
        self._rng = np.random.default_rng(0)
        self.reset(0)

    def _robot_body_names(self) -> list[str]:
        return [self.model.body(i).name for i in range(self.model.nbody) if self.model.body(i).name.startswith("panda_")]

    # ---- episode ------------------------------------------------------------------------------
    def reset(self, seed: int) -> np.ndarray:
        self._rng = np.random.default_rng(seed)
        mujoco.mj_resetData(self.model, self.data)
        start = START + self._rng.uniform(-0.02, 0.02, 3)
        goal = GOAL + self._rng.uniform(-0.02, 0.02, 3)
        q0 = _shared_ik().solve(start, self._q_start_nominal)
        self.data.qpos[self._qadr] = q0
        self.data.qpos[self._fingers] = 0.04
        if self.interface == "position":
            self.data.ctrl[:] = q0
        self.data.mocap_pos[self._goal_mocap] = goal
        mujoco.mj_forward(self.model, self.data)
        self.steps = 0
        self._crossing = PillarCrossing(PILLAR_XY, self.effector_position())
        self.contacts_with_pillar = 0
        return self.observe()

    def step(self, action) -> StepResult:
        self.data.ctrl[:] = self.clip_action(action)
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        self.steps += 1
        ee = self.effector_position()
        self._crossing.add(ee)
        self.contacts_with_pillar += self._touching_pillar()
        dist = self.distance()
        success = dist < SUCCESS_RADIUS
        return StepResult(self.observe(), success, success or self.steps >= self.spec.max_steps,
                          {"distance": dist, "tip": ee[:2], "ee": ee})

    def _touching_pillar(self) -> int:
        for contact in self.data.contact[: self.data.ncon]:
            geoms = (contact.geom1, contact.geom2)
            if self._pillar in geoms:
                other = geoms[1] if geoms[0] == self._pillar else geoms[0]
                if self.model.geom_bodyid[other] in self._robot_bodies:
                    return 1
        return 0

    def observe(self) -> np.ndarray:
        d = self.data
        return np.concatenate([d.qpos[self._qadr], d.qvel[self._dadr], d.mocap_pos[self._goal_mocap]]).astype(np.float32)

    def effector_position(self) -> np.ndarray:
        return self.data.site_xpos[self._site].copy()

    def goal_position(self) -> np.ndarray:
        return self.data.mocap_pos[self._goal_mocap].copy()

    def distance(self) -> float:
        return float(np.linalg.norm(self.effector_position() - self.goal_position()))

    def mode_reached(self) -> str | None:
        return self._crossing.mode

    def mode_of_path(self, positions) -> str | None:
        return PillarCrossing.mode_of(np.asarray(positions)[:, :2], PILLAR_XY)

    def expert(self, mode: str | None = None, rng: np.random.Generator | None = None) -> PandaReachAroundExpert:
        if mode is None:
            rng = rng if rng is not None else self._rng
            names = list(self.mode_probs)
            mode = names[rng.choice(len(names), p=[self.mode_probs[n] for n in names])]
        return PandaReachAroundExpert(mode, self.interface)

    # ---- perturbation hooks -------------------------------------------------------------------
    def push_bodies(self) -> list[int]:
        return [self.model.body(n).id for n in ("panda_link4", "panda_link5", "panda_link6", "panda_link7")]

    def displace_target(self, offset: np.ndarray) -> None:
        goal = self.data.mocap_pos[self._goal_mocap]
        goal += np.asarray(offset, dtype=np.float64)[:3]
        goal[1] = max(goal[1], PILLAR_XY[1] + PILLAR_RADIUS + 0.12)  # never inside or in front of the pillar
        goal[2] = float(np.clip(goal[2], 0.12, 0.38))

    def plot_xy(self, obs: np.ndarray) -> np.ndarray:
        ik = _shared_ik()
        return np.array([ik.position(q)[:2] for q in np.asarray(obs)[:, :7]])

    # ---- things to look at --------------------------------------------------------------------
    def scene_markers(self) -> list[SceneMarker]:
        return [SceneMarker("obstacle", "cylinder", (float(PILLAR_XY[0]), float(PILLAR_XY[1]), PILLAR_HEIGHT / 2),
                            (2 * PILLAR_RADIUS, 2 * PILLAR_RADIUS, PILLAR_HEIGHT), (0.8, 0.3, 0.2, 1.0)),
                SceneMarker("goal", "sphere", tuple(float(v) for v in self.goal_position()), (0.04,) * 3,
                            (0.2, 0.8, 0.3, 0.6))]
