"""Forward kinematics of one body of a robot model, from named joint positions.

`warpd import-bag --success-rule LINK:RADIUS` decides whether a recorded episode ended at its goal
from the joint positions alone: the bag holds no end-effector pose, but the robot model says where
the named link is for any q. Joints are matched by name (not by order), so the bag's joint order
need not be the model's; joints the bag does not hold stay at the model's reference pose (qpos0).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from warpd_core.errors import WarpdError

TASK_PREFIX = "task:"
_ONE_DOF = (2, 3)  # mujoco.mjtJoint: slide, hinge (free and ball joints have no single position)


class LinkKinematics:
    """`position(joint_names, q)`: where the body (or, failing that, site) `link` of `model` is, in the
    model's world frame. A site names a point on a body, e.g. a fingertip below the body's origin."""

    def __init__(self, model, link: str, source: str = "model"):
        import mujoco

        self.model, self.source = model, source
        self.data = mujoco.MjData(model)
        body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, link)
        site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, link)
        if body < 0 and site < 0:
            bodies = [model.body(i).name for i in range(1, model.nbody)]
            sites = [model.site(i).name for i in range(model.nsite)]
            raise WarpdError(f"no body or site {link!r} in {source}",
                             f"bodies there: {', '.join(b for b in bodies if b) or 'none'}; "
                             f"sites: {', '.join(s for s in sites if s) or 'none'}")
        self.link = link
        self._positions, self._index = (("xpos", body) if body >= 0 else ("site_xpos", site))
        self.qpos_address = {model.joint(j).name: int(model.jnt_qposadr[j])
                             for j in range(model.njnt) if model.jnt_type[j] in _ONE_DOF}

    @classmethod
    def load(cls, spec: str, link: str) -> LinkKinematics:
        """From an MJCF/URDF file path, or `task:<name>` for a registered task's model."""
        return cls(load_model(spec), link, source=spec)

    def position(self, joint_names, q) -> np.ndarray:
        """xyz of the body with the named joints at `q` (the rest at qpos0)."""
        import mujoco

        names = tuple(joint_names)
        if missing := [j for j in names if j not in self.qpos_address]:
            raise WarpdError(f"joint(s) {', '.join(missing)} are not hinge or slide joints of {self.source}",
                             f"joints there: {', '.join(self.qpos_address) or 'none'}")
        self.data.qpos[:] = self.model.qpos0
        for name, value in zip(names, np.asarray(q, dtype=np.float64)):
            self.data.qpos[self.qpos_address[name]] = value
        mujoco.mj_kinematics(self.model, self.data)
        return getattr(self.data, self._positions)[self._index].copy()


def load_model(spec: str):
    """A mujoco.MjModel from `task:<name>` or an MJCF (.xml) / URDF file."""
    import mujoco

    if spec.startswith(TASK_PREFIX):
        from warpd_core.tasks.registry import make_task

        return make_task(spec[len(TASK_PREFIX):]).model
    path = Path(spec).expanduser()
    if not path.is_file():
        raise WarpdError(f"robot model {path} does not exist",
                         "pass an MJCF (.xml) or URDF file, or task:<name> for a registered task's model")
    try:
        return mujoco.MjModel.from_xml_path(str(path))
    except ValueError as exc:
        text = str(exc)
        if any(word in text.lower() for word in ("mesh", "file", "resource")):
            raise WarpdError(f"cannot load robot model {path}: {text.strip()}",
                             "a mesh it references is missing: keep the meshes next to the model as its paths "
                             "say (for a URDF, replace package:// paths with relative ones)") from None
        raise WarpdError(f"cannot load robot model {path}: {text.strip()}",
                         "MuJoCo reads MJCF and URDF; check the file") from None
