"""How a robot's joints answer commands: the plant behind the driver emulator.

Two models, one interface (`reset(q)`, `step(command, dt) -> (q, qd)`):
- `FirstOrderJoints`: any robot, no model file. The velocity follows the commanded velocity (position
  interface: `position_gain` * (target - q)) with a first-order lag, within a velocity limit.
- `ModelJoints`: the robot's own dynamics from its MuJoCo model (`task:<name>` or an MJCF with one
  actuator per joint taking the command interface's values): inertia, servo gains, joint limits,
  contacts. Why: a policy learned from demonstrations recorded on one robot is judged against a
  stand-in of that robot; against the generic first-order model, the Panda's recorded policies lost
  5-15 of 30 episodes to the difference in joint response alone (in-process, BENCHMARKS.md
  "From a rosbag to the robot").
"""
from __future__ import annotations

import math

import numpy as np

from warpd_core.errors import WarpdError


class FirstOrderJoints:
    def __init__(self, n: int, position_interface: bool, tau_s: float, position_gain: float, velocity_limit: float):
        self.position_interface = position_interface
        self.tau_s, self.position_gain, self.velocity_limit = tau_s, position_gain, velocity_limit
        self.q, self.qd = np.zeros(n), np.zeros(n)

    def reset(self, q) -> None:
        self.q, self.qd = np.array(q, dtype=np.float64), np.zeros(len(q))

    def step(self, command: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
        wanted = self.position_gain * (command - self.q) if self.position_interface else command
        target = np.clip(wanted, -self.velocity_limit, self.velocity_limit)
        alpha = 1.0 if self.tau_s <= 0 else 1.0 - math.exp(-dt / self.tau_s)  # exact first-order step
        self.qd = self.qd + alpha * (target - self.qd)
        self.q = self.q + self.qd * dt
        return self.q, self.qd


class ModelJoints:
    """The named joints of a MuJoCo model, driven through the actuator on each; stepped at the model's
    own timestep for as long as the caller's wall time has advanced."""

    def __init__(self, spec: str, joint_names):
        import mujoco

        from warpd_core.kinematics import load_model

        self._mj = mujoco
        self.model = load_model(spec)
        self.data = mujoco.MjData(self.model)
        names = [self.model.joint(j).name for j in range(self.model.njnt)]
        if missing := [j for j in joint_names if j not in names]:
            raise WarpdError(f"joint(s) {', '.join(missing)} are not in the robot model {spec}",
                             f"its joints: {', '.join(names)}")
        joint_ids = [self.model.joint(j).id for j in joint_names]
        by_joint = {int(self.model.actuator_trnid[a, 0]): a for a in range(self.model.nu)
                    if self.model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT}
        if unactuated := [j for j, i in zip(joint_names, joint_ids) if i not in by_joint]:
            raise WarpdError(f"joint(s) {', '.join(unactuated)} of the robot model {spec} have no actuator",
                             "the model needs one actuator per commanded joint (an MJCF <velocity> or <position>)")
        self._actuators = np.array([by_joint[i] for i in joint_ids])
        self._qadr = np.array([self.model.jnt_qposadr[i] for i in joint_ids])
        self._dadr = np.array([self.model.jnt_dofadr[i] for i in joint_ids])
        self._owed_s = 0.0  # wall time not yet simulated (less than one timestep)

    def reset(self, q) -> None:
        mj = self._mj
        mj.mj_resetData(self.model, self.data)
        self.data.qpos[self._qadr] = q
        self.data.ctrl[self._actuators] = q  # a position actuator holds here; a velocity one is re-set at step
        mj.mj_forward(self.model, self.data)
        self._owed_s = 0.0

    def step(self, command: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
        self.data.ctrl[self._actuators] = command  # clamped to each actuator's ctrlrange by MuJoCo
        self._owed_s += dt
        steps = int(self._owed_s / self.model.opt.timestep)
        if steps:
            self._mj.mj_step(self.model, self.data, nstep=steps)
            self._owed_s -= steps * self.model.opt.timestep
        return self.data.qpos[self._qadr].copy(), self.data.qvel[self._dadr].copy()
