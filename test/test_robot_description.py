"""The URDF generated from a task's MuJoCo model (warpd_core.robot_description): it parses with
yourdfpy, names and limits its joints as the model does, points at mesh files that exist and line up
with MuJoCo's re-centred meshes, and its forward kinematics agree with MuJoCo's body poses."""
import io

import mujoco
import numpy as np
import pytest

from warpd_core.robot_description import WORLD, pose_matrix, robot_description
from warpd_core.tasks.registry import make_task, task_names

yourdfpy = pytest.importorskip("yourdfpy")
trimesh = pytest.importorskip("trimesh")
cKDTree = pytest.importorskip("scipy.spatial").cKDTree

TASKS = [t for t in ("reach_around", "panda_reach_around") if t in task_names()]


@pytest.fixture(scope="module", params=TASKS)
def robot(request):
    task = make_task(request.param)
    desc = robot_description(task.model)
    urdf = yourdfpy.URDF.load(io.StringIO(desc.urdf), load_meshes=False, build_scene_graph=True)
    yield task, task.model, desc, urdf
    task.close()


def body_pose(data, body: int) -> np.ndarray:
    return pose_matrix(data.xpos[body], rot=data.xmat[body].reshape(3, 3))


def test_urdf_has_the_models_joints_with_their_types_and_limits(robot):
    task, model, desc, urdf = robot
    assert urdf.base_link == WORLD
    movable = [model.joint(j).name for j in range(model.njnt)]
    assert urdf.actuated_joint_names == movable  # named as the model names them, in model order
    for jname in movable:
        mj, uj = model.joint(jname), urdf.joint_map[jname]
        assert uj.type == {mujoco.mjtJoint.mjJNT_HINGE: "revolute", mujoco.mjtJoint.mjJNT_SLIDE: "prismatic"}[
            int(mj.type[0])]
        assert (uj.limit.lower, uj.limit.upper) == pytest.approx(tuple(mj.range))
    spec = task.spec
    for k, joint in enumerate(spec.joint_names):  # the commanded joints: a velocity servo with a force limit
        limit = urdf.joint_map[joint].limit
        assert limit.velocity == pytest.approx(spec.action_high[k])
        assert limit.effort > 0
    # the mocap goal is a scene prop (drawn as a marker), not a robot link
    assert "goal" not in urdf.link_map and all(model.body(b).name in urdf.link_map for b in desc.body_links.values()
                                                if b != 0)


def test_mesh_files_exist_and_line_up_with_mujocos_meshes(robot):
    task, model, desc, urdf = robot
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    urdf.update_cfg({j: float(data.qpos[model.joint(j).qposadr[0]]) for j in urdf.actuated_joint_names})
    checked = 0
    for link in urdf.robot.links:
        for visual in link.visuals:
            mesh = visual.geometry.mesh
            if mesh is None:
                continue
            assert mesh.filename.startswith("file://")
            path = mesh.filename[len("file://"):]
            assert path in desc.mesh_files
            file_vertices = np.asarray(trimesh.load(path, force="mesh").vertices)
            scale = np.ones(3) if mesh.scale is None else np.broadcast_to(mesh.scale, 3)
            world = urdf.get_transform(link.name, WORLD) @ visual.origin
            seen = (file_vertices * scale) @ world[:3, :3].T + world[:3, 3]
            # visuals are named after their geom; unnamed geoms as geom<id>
            geom = int(visual.name[4:]) if visual.name[4:].isdigit() else model.geom(visual.name).id
            mesh_id = model.geom_dataid[geom]
            start = model.mesh_vertadr[mesh_id]
            verts = model.mesh_vert[start:start + model.mesh_vertnum[mesh_id]]  # re-centred by MuJoCo
            expected = verts @ data.geom_xmat[geom].reshape(3, 3).T + data.geom_xpos[geom]
            gap = cKDTree(seen).query(expected)[0].max()
            assert gap < 1e-6, f"{visual.name}: {path} is off MuJoCo's mesh by {gap:.2e} m"
            checked += 1
    if task.spec.name == "panda_reach_around":
        assert checked >= 8  # the Panda's visuals are STL meshes


def test_forward_kinematics_match_mujoco_at_random_configurations(robot):
    _, model, desc, urdf = robot
    data = mujoco.MjData(model)
    rng = np.random.default_rng(7)
    for _ in range(6):
        cfg = {}
        for jname in urdf.actuated_joint_names:
            j = model.joint(jname)
            value = rng.uniform(*j.range)
            data.qpos[j.qposadr[0]] = value
            cfg[jname] = value
        mujoco.mj_kinematics(model, data)
        urdf.update_cfg(cfg)
        poses = desc.link_poses(data)
        for link, body in desc.body_links.items():
            np.testing.assert_allclose(urdf.get_transform(link, WORLD), body_pose(data, body), atol=1e-6)
            np.testing.assert_allclose(poses[link], body_pose(data, body), atol=1e-12)
        for parent, child, t in desc.joint_transforms(data):  # what /tf carries composes back to the poses
            np.testing.assert_allclose(poses[parent] @ t, poses[child], atol=1e-12)


EDGE_CASES = """
<mujoco>
  <asset><mesh name="tet" vertex="0 0 0  0.1 0 0  0 0.2 0  0 0 0.3" scale="1 2 1"/></asset>
  <worldbody>
    <body name="prop" mocap="true" pos="1 0 0"><body name="on_prop"><geom type="sphere" size="0.1"/></body></body>
    <body name="base" pos="0 0 0.5" quat="0.9 0 0.3 0.1">
      <joint name="offset_hinge" type="hinge" pos="0.1 0.05 0" axis="0 1 1" ref="0.4" range="-1 2"/>
      <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.02"/>
      <geom type="box" size="0.1 0.2 0.3" group="3"/>
      <body name="two_joints" pos="0.3 0 0" euler="0.2 0.1 -0.3">
        <joint name="slide" type="slide" axis="1 0 0" ref="0.05" range="-0.1 0.2"/>
        <joint name="twist" type="hinge" pos="0 0 0.1" axis="1 0 0"/>
        <geom type="cylinder" size="0.03 0.1"/>
        <body name="ball_body" pos="0 0.2 0"><joint name="ball" type="ball"/><geom type="mesh" mesh="tet"/></body>
      </body>
    </body>
    <body name="crate" pos="0.5 0.5 0.1"><freejoint name="crate_free"/><geom type="box" size="0.05 0.05 0.05"/></body>
  </worldbody>
</mujoco>"""


def test_anchors_refs_multi_joint_bodies_ball_free_and_mocap():
    model = mujoco.MjModel.from_xml_string(EDGE_CASES)
    desc = robot_description(model)
    urdf = yourdfpy.URDF.load(io.StringIO(desc.urdf), load_meshes=False, build_scene_graph=True)
    assert "prop" not in urdf.link_map and "on_prop" not in urdf.link_map  # mocap subtree left out
    types = {j.name: j.type for j in urdf.robot.joints}
    assert types["offset_hinge"] == "revolute" and types["slide"] == "prismatic"
    assert types["twist"] == "continuous" and types["ball"] == "floating" and types["crate_free"] == "floating"
    assert not any(v.geometry.box for v in urdf.link_map["base"].visuals)  # group 3: collision only
    assert len(urdf.link_map["base"].visuals) == 3  # the capsule: a cylinder and two spheres
    assert desc.mesh_files == []  # a mesh given by its vertices has no file to point at
    data = mujoco.MjData(model)
    rng = np.random.default_rng(3)
    for trial in range(5):
        if trial:  # trial 0: qpos0, where the floating joints sit at their origins too
            data.qpos[:] = model.qpos0
            for jname in ("offset_hinge", "slide", "twist"):
                j = model.joint(jname)
                data.qpos[j.qposadr[0]] = rng.uniform(*(j.range if j.limited[0] else (-3, 3)))
            for jname, offset in (("ball", 0), ("crate_free", 3)):
                adr = model.joint(jname).qposadr[0] + offset
                quat = rng.normal(size=4)
                data.qpos[adr:adr + 4] = quat / np.linalg.norm(quat)
            data.qpos[model.joint("crate_free").qposadr[0]:][:3] = rng.normal(size=3)
        mujoco.mj_kinematics(model, data)
        poses = desc.link_poses(data)
        for link, body in desc.body_links.items():
            np.testing.assert_allclose(poses[link], body_pose(data, body), atol=1e-12)
        for parent, child, t in desc.joint_transforms(data):
            np.testing.assert_allclose(poses[parent] @ t, poses[child], atol=1e-12)
        urdf.update_cfg({j: float(data.qpos[model.joint(j).qposadr[0]]) for j in urdf.actuated_joint_names})
        for link in ("base", "two_joints"):  # yourdfpy's own FK: everything above the floating joints
            np.testing.assert_allclose(urdf.get_transform(link, WORLD), poses[link], atol=1e-9)
        if trial == 0:
            for link in ("ball_body", "crate"):
                np.testing.assert_allclose(urdf.get_transform(link, WORLD), poses[link], atol=1e-9)
    # the hinge rotates about its anchor, not the body origin: the anchor stays where it was
    anchor_world = poses["base"] @ np.array([0.1, 0.05, 0.0, 1.0])
    np.testing.assert_allclose(anchor_world[:3], data.xanchor[model.joint("offset_hinge").id], atol=1e-12)
