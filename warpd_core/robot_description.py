"""A URDF of a task's robot, generated from its MuJoCo model, and the link poses /tf needs.

Why generated: RViz, Foxglove and robot_state_publisher understand URDF, not MJCF. Generating it
from the compiled MjModel keeps one source of truth: the URDF can never disagree with what the sim
simulates (a test checks its forward kinematics against MuJoCo's body poses).

How the model maps onto URDF:
- Root link `world`. Every body becomes a link of the same name. Mocap bodies (and anything under
  them) are left out: they are scene props moved by the task (reach_around's goal), not robot links;
  the sim draws them as markers instead. Static world geoms (floor, pillar) are left out for the
  same reason.
- A body's joints become URDF joints of the same names (so sensor_msgs/JointState names match):
  hinge -> revolute (continuous when unlimited), slide -> prismatic, ball and free -> floating (URDF
  has no spherical joint; /tf carries their pose all the same). A body without joints hangs on its
  parent by a fixed joint `<body>_fixed`.
- MuJoCo rotates a hinge about an anchor (jnt_pos) in the body frame, and measures joint values
  from qpos0. URDF rotates about the child's origin from zero. So a joint whose anchor is off the
  body origin, or a body with several joints, gets intermediate links `<body>__<joint>` at the
  anchors, and each joint's origin carries the -qpos0 offset: joint values in URDF are MuJoCo's qpos,
  and every body link frame is exactly MuJoCo's body frame.
- Visuals: primitives (box, sphere, cylinder; a capsule as a cylinder plus two spheres) and mesh
  geoms as file:// URIs of the original mesh files. MuJoCo re-centres a mesh on its inertial frame
  at compile time (v_file * scale = R(mesh_quat) v + mesh_pos); the visual's origin is the geom pose
  composed with the inverse of that, so the original file lines up. Geoms in `skip_groups` (the
  MuJoCo Menagerie convention puts collision-only geoms in group 3), invisible geoms (alpha 0),
  planes, height fields, ellipsoids and meshes without a file are left out.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import mujoco
import numpy as np
from transforms3d.axangles import axangle2mat
from transforms3d.euler import mat2euler
from transforms3d.quaternions import quat2mat

WORLD = "world"
COLLISION_GROUP = 3  # the MuJoCo Menagerie convention: collision-only geoms
_DEFAULT_RGBA = (0.5, 0.5, 0.5, 1.0)  # MuJoCo's default geom colour: a material, if any, colours the geom


def pose_matrix(pos, quat_wxyz=None, rot=None) -> np.ndarray:
    """4x4 homogeneous transform from a position and a MuJoCo (w, x, y, z) quaternion or a 3x3 matrix."""
    t = np.eye(4)
    t[:3, 3] = pos
    if rot is not None:
        t[:3, :3] = rot
    elif quat_wxyz is not None:
        t[:3, :3] = quat2mat(np.asarray(quat_wxyz, dtype=np.float64) / np.linalg.norm(quat_wxyz))
    return t


def translation(v) -> np.ndarray:
    return pose_matrix(np.asarray(v, dtype=np.float64))


def invert(t: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform (cheaper and exacter than np.linalg.inv)."""
    out = np.eye(4)
    out[:3, :3] = t[:3, :3].T
    out[:3, 3] = -t[:3, :3].T @ t[:3, 3]
    return out


@dataclass(frozen=True)
class UrdfJoint:
    """One URDF joint, with what is needed to pose its child from MjData (joint_id -1: fixed)."""

    name: str
    type: str  # revolute | continuous | prismatic | floating | fixed
    parent: str
    child: str
    origin: np.ndarray  # 4x4, child frame in parent frame at joint value 0
    axis: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))
    joint_id: int = -1  # MuJoCo joint id, -1 for fixed joints
    qpos_adr: int = -1  # where the joint's value sits in MjData.qpos
    lower: float | None = None
    upper: float | None = None
    effort: float = 0.0
    velocity: float = 0.0


@dataclass
class RobotDescription:
    """The URDF and the link tree behind it; `joint_transforms(data)` gives /tf's parent -> child poses."""

    name: str
    links: list[str]
    joints: list[UrdfJoint]
    body_links: dict[str, int]  # link name -> MuJoCo body id, for links that are bodies
    urdf: str
    mesh_files: list[str]

    def link_poses(self, data) -> dict[str, np.ndarray]:
        """World pose (4x4) of every link for the state in `data` (after mj_kinematics / mj_step)."""
        poses = {WORLD: np.eye(4)}
        for joint in self.joints:  # parents come before children (built in tree order)
            body = self.body_links.get(joint.child)
            if body is not None:  # MuJoCo's own pose: exact, whatever the joint type
                poses[joint.child] = pose_matrix(data.xpos[body], rot=data.xmat[body].reshape(3, 3))
            else:
                poses[joint.child] = poses[joint.parent] @ joint.origin @ _joint_motion(joint, data)
        return poses

    def joint_transforms(self, data) -> list[tuple[str, str, np.ndarray]]:
        """(parent, child, child-in-parent 4x4) for every joint: what robot_state_publisher puts on /tf."""
        poses = self.link_poses(data)
        return [(j.parent, j.child, invert(poses[j.parent]) @ poses[j.child]) for j in self.joints]


def _joint_motion(joint: UrdfJoint, data) -> np.ndarray:
    """The joint's own motion at data.qpos (URDF convention: about/along the axis from zero)."""
    if joint.joint_id < 0 or joint.type == "fixed":
        return np.eye(4)
    model_qpos, adr = data.qpos, joint.qpos_adr
    if joint.type in ("revolute", "continuous"):
        return pose_matrix(np.zeros(3), rot=axangle2mat(joint.axis, float(model_qpos[adr])))
    if joint.type == "prismatic":
        return translation(joint.axis * float(model_qpos[adr]))
    # floating from a ball joint (free joints always end on a body link, posed from xpos/xquat)
    return pose_matrix(np.zeros(3), model_qpos[adr:adr + 4])


def robot_description(model, *, name: str | None = None, skip_groups=(COLLISION_GROUP,),
                      velocity_limits: dict[str, float] | None = None, mesh_dir: str | None = None
                      ) -> RobotDescription:
    """Build the URDF (see the module doc) of `model`, an mujoco.MjModel.

    velocity_limits: joint name -> rad/s (or m/s); joints not named take the ctrlrange of a velocity
    servo driving them, else 0 (unknown). Efforts come from the driving actuator's forcerange (times
    its gear), else the joint's actuatorfrcrange, else 0 (unknown). mesh_dir resolves relative mesh
    paths (default: the current directory)."""
    velocity_limits = dict(velocity_limits or {})
    body_name = _unique_names([model.body(b).name or f"body{b}" for b in range(model.nbody)])
    body_name[0] = WORLD
    skipped = _mocap_subtrees(model)
    links, joints, body_links = [WORLD], [], {WORLD: 0}
    used_joint_names: set[str] = set()
    robot = ET.Element("robot", name=name or _model_name(model) or "robot")
    ET.SubElement(robot, "link", name=WORLD)
    mesh_files: list[str] = []
    drives = _actuators_by_joint(model)

    for b in range(1, model.nbody):
        if b in skipped:
            continue
        link = body_name[b]
        parent = body_name[model.body_parentid[b]]
        pending = pose_matrix(model.body_pos[b], model.body_quat[b])
        jids = range(model.body_jntadr[b], model.body_jntadr[b] + model.body_jntnum[b])
        for k, jid in enumerate(jids):
            jname = _unique(model.joint(jid).name or f"{link}_joint{k}", used_joint_names)
            jtype = int(model.jnt_type[jid])
            axis = np.asarray(model.jnt_axis[jid], dtype=np.float64)
            axis = axis / (np.linalg.norm(axis) or 1.0)
            anchor = np.asarray(model.jnt_pos[jid], dtype=np.float64)
            q0 = float(model.qpos0[model.jnt_qposadr[jid]])
            if jtype == mujoco.mjtJoint.mjJNT_FREE:
                anchor = np.zeros(3)
                origin, utype = pending, "floating"
            elif jtype == mujoco.mjtJoint.mjJNT_BALL:
                origin, utype = pending @ translation(anchor), "floating"
            elif jtype == mujoco.mjtJoint.mjJNT_SLIDE:
                anchor = np.zeros(3)
                origin, utype = pending @ translation(-q0 * axis), "prismatic"
            else:
                origin = pending @ translation(anchor) @ pose_matrix(np.zeros(3), rot=axangle2mat(axis, -q0))
                utype = "revolute" if model.jnt_limited[jid] else "continuous"
            last = k == len(jids) - 1
            child = link if last and not np.any(anchor) else _unique(f"{link}__{jname}", set(links))
            lower = upper = None
            if utype in ("revolute", "prismatic"):
                lower, upper = (float(v) for v in model.jnt_range[jid])
            effort, servo_velocity = _limits_from_actuators(model, jid, drives)
            joints.append(UrdfJoint(jname, utype, parent, child, origin, axis, jid, int(model.jnt_qposadr[jid]),
                                    lower, upper, effort, float(velocity_limits.get(jname, servo_velocity))))
            if child != link:
                links.append(child)
                ET.SubElement(robot, "link", name=child)
            parent, pending = child, translation(-anchor)
        if parent != link:  # no joint, or the last one ends on an anchor link: fixed to the body frame
            joints.append(UrdfJoint(_unique(f"{link}_fixed", used_joint_names), "fixed", parent, link, pending))
        links.append(link)
        body_links[link] = b
        link_el = ET.SubElement(robot, "link", name=link)
        for geom in range(model.body_geomadr[b], model.body_geomadr[b] + model.body_geomnum[b]):
            mesh_files += _add_visuals(link_el, model, geom, skip_groups, mesh_dir)

    for joint in joints:
        _add_joint_xml(robot, joint)
    ET.indent(robot)
    urdf = '<?xml version="1.0"?>\n' + ET.tostring(robot, encoding="unicode") + "\n"
    return RobotDescription(robot.get("name"), links, joints, body_links, urdf, sorted(set(mesh_files)))


def urdf_from_model(model, **kwargs) -> str:
    """The URDF string of `model` (see robot_description for the options)."""
    return robot_description(model, **kwargs).urdf


# ---- helpers ----------------------------------------------------------------------------------------
def _model_name(model) -> str:
    return bytes(model.names).split(b"\0", 1)[0].decode()


def _unique(name: str, used: set[str]) -> str:
    out, k = name, 1
    while out in used:
        k += 1
        out = f"{name}_{k}"
    used.add(out)
    return out


def _unique_names(names: list[str]) -> list[str]:
    used: set[str] = {WORLD}
    return [_unique(n, used) for n in names]


def _mocap_subtrees(model) -> set[int]:
    skipped: set[int] = set()
    for b in range(1, model.nbody):  # parents have smaller ids than their children
        if model.body_mocapid[b] >= 0 or model.body_parentid[b] in skipped:
            skipped.add(b)
    return skipped


def _actuators_by_joint(model) -> dict[int, list[int]]:
    drives: dict[int, list[int]] = {}
    for a in range(model.nu):
        if model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT:
            drives.setdefault(int(model.actuator_trnid[a, 0]), []).append(a)
    return drives


def _limits_from_actuators(model, jid: int, drives: dict[int, list[int]]) -> tuple[float, float]:
    """(effort, velocity) limits a joint's actuators imply; 0 where none is known."""
    effort = velocity = 0.0
    for a in drives.get(jid, []):
        gear = abs(float(model.actuator_gear[a, 0])) or 1.0
        if model.actuator_forcelimited[a]:
            effort = max(effort, float(np.abs(model.actuator_forcerange[a]).max()) * gear)
        kv, bias = float(model.actuator_gainprm[a, 0]), model.actuator_biasprm[a, :3]
        is_velocity_servo = (model.actuator_biastype[a] == mujoco.mjtBias.mjBIAS_AFFINE and kv > 0
                             and bias[0] == 0 and bias[1] == 0 and np.isclose(bias[2], -kv))
        if is_velocity_servo and model.actuator_ctrllimited[a]:
            velocity = max(velocity, float(np.abs(model.actuator_ctrlrange[a]).max()) / gear)
    if effort == 0.0 and model.jnt_actfrclimited[jid]:
        effort = float(np.abs(model.jnt_actfrcrange[jid]).max())
    return effort, velocity


def _fmt(values, digits: int = 12) -> str:
    """Numbers for the XML: 12 significant digits (far below any tolerance that matters), no "-0"."""
    return " ".join(f"{float(v) + 0.0:.{digits}g}" for v in values)


def _origin_xml(parent: ET.Element, t: np.ndarray) -> None:
    rpy = mat2euler(t[:3, :3], "sxyz")  # URDF rpy: fixed-axis roll about x, pitch about y, yaw about z
    ET.SubElement(parent, "origin", xyz=_fmt(t[:3, 3]), rpy=_fmt(rpy))


def _add_joint_xml(robot: ET.Element, joint: UrdfJoint) -> None:
    el = ET.SubElement(robot, "joint", name=joint.name, type=joint.type)
    _origin_xml(el, joint.origin)
    ET.SubElement(el, "parent", link=joint.parent)
    ET.SubElement(el, "child", link=joint.child)
    if joint.type in ("revolute", "continuous", "prismatic"):
        ET.SubElement(el, "axis", xyz=_fmt(joint.axis))
        limit = {"effort": repr(joint.effort), "velocity": repr(joint.velocity)}
        if joint.lower is not None:
            limit.update(lower=repr(joint.lower), upper=repr(joint.upper))
        ET.SubElement(el, "limit", **limit)


def _geom_rgba(model, geom: int) -> np.ndarray:
    rgba = np.asarray(model.geom_rgba[geom], dtype=np.float64)
    mat = model.geom_matid[geom]
    if mat >= 0 and np.allclose(rgba, _DEFAULT_RGBA):
        rgba = np.asarray(model.mat_rgba[mat], dtype=np.float64)
    return rgba


def _mesh_file(model, mesh: int, mesh_dir: str | None) -> str | None:
    adr = int(model.mesh_pathadr[mesh])
    if adr < 0:
        return None
    path = bytes(model.paths[adr:]).split(b"\0", 1)[0].decode()
    if not path:
        return None
    if not os.path.isabs(path):
        path = os.path.join(mesh_dir or os.getcwd(), path)
    return os.path.abspath(path)


def _add_visuals(link_el: ET.Element, model, geom: int, skip_groups, mesh_dir: str | None) -> list[str]:
    """Append the <visual> elements of one geom to a link; returns the mesh files used."""
    gtype = int(model.geom_type[geom])
    rgba = _geom_rgba(model, geom)
    if model.geom_group[geom] in skip_groups or rgba[3] <= 0:
        return []
    pose = pose_matrix(model.geom_pos[geom], model.geom_quat[geom])
    size = model.geom_size[geom]
    name = model.geom(geom).name or f"geom{geom}"
    shapes: list[tuple[np.ndarray, str, dict]] = []
    files: list[str] = []
    if gtype == mujoco.mjtGeom.mjGEOM_BOX:
        shapes.append((pose, "box", {"size": _fmt(2 * size[:3])}))
    elif gtype == mujoco.mjtGeom.mjGEOM_SPHERE:
        shapes.append((pose, "sphere", {"radius": repr(float(size[0]))}))
    elif gtype in (mujoco.mjtGeom.mjGEOM_CYLINDER, mujoco.mjtGeom.mjGEOM_CAPSULE):
        shapes.append((pose, "cylinder", {"radius": repr(float(size[0])), "length": repr(float(2 * size[1]))}))
        if gtype == mujoco.mjtGeom.mjGEOM_CAPSULE:
            for end in (-1.0, 1.0):
                shapes.append((pose @ translation([0.0, 0.0, end * size[1]]), "sphere",
                               {"radius": repr(float(size[0]))}))
    elif gtype == mujoco.mjtGeom.mjGEOM_MESH:
        mesh = int(model.geom_dataid[geom])
        path = _mesh_file(model, mesh, mesh_dir)
        if path is None:
            return []
        recentre = pose_matrix(model.mesh_pos[mesh], model.mesh_quat[mesh])
        attrs = {"filename": "file://" + path}
        scale = np.asarray(model.mesh_scale[mesh], dtype=np.float64)
        if not np.allclose(scale, 1.0):
            attrs["scale"] = _fmt(scale)
        shapes.append((pose @ invert(recentre), "mesh", attrs))
        files.append(path)
    else:  # plane, height field, ellipsoid, SDF: nothing URDF can show faithfully
        return []
    for k, (origin, shape, attrs) in enumerate(shapes):
        visual = ET.SubElement(link_el, "visual", name=name if k == 0 else f"{name}_{k}")
        _origin_xml(visual, origin)
        ET.SubElement(ET.SubElement(visual, "geometry"), shape, **attrs)
        material = ET.SubElement(visual, "material", name=f"{name}_color" if k == 0 else f"{name}_{k}_color")
        ET.SubElement(material, "color", rgba=_fmt(rgba, 4))
    return files


__all__ = ["RobotDescription", "UrdfJoint", "robot_description", "urdf_from_model", "pose_matrix", "invert",
           "WORLD", "COLLISION_GROUP"]
