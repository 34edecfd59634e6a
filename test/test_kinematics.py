"""LinkKinematics: where a body or site of a robot model is for named joint positions, on the
reach_around arm, whose geometry is simple enough to check by hand (links 0.25, 0.25, 0.15 m
along x, hinges about z, shoulder at z = 0.30, fingertip 0.22 m below the finger body)."""
import numpy as np
import pytest

from warpd_core.errors import WarpdError
from warpd_core.kinematics import LinkKinematics

MJCF = "warpd_core/assets/reach_around.xml"


def test_finger_body_by_hand_geometry_any_joint_order():
    arm = LinkKinematics.load(MJCF, "finger")
    assert np.allclose(arm.position(("shoulder", "elbow", "wrist"), [0, 0, 0]), [0.65, 0, 0.30])
    assert np.allclose(arm.position(("wrist", "shoulder"), [0, np.pi / 2]), [0, 0.65, 0.30])
    q = [0.3, -0.7, 0.4]
    a, b = q[0], q[0] + q[1]
    want = [0.25 * np.cos(a) + 0.25 * np.cos(b) + 0.15 * np.cos(b + q[2]),
            0.25 * np.sin(a) + 0.25 * np.sin(b) + 0.15 * np.sin(b + q[2]), 0.30]
    assert np.allclose(arm.position(("elbow", "wrist", "shoulder"), [q[1], q[2], q[0]]), want)


def test_site_and_task_model():
    tip = LinkKinematics.load("task:reach_around", "fingertip")
    assert np.allclose(tip.position(("shoulder", "elbow", "wrist"), [0, 0, 0]), [0.65, 0, 0.08])


def test_errors_name_what_is_there(tmp_path):
    with pytest.raises(WarpdError, match="no body or site 'hand'") as err:
        LinkKinematics.load(MJCF, "hand")
    assert "bodies there: goal, link1, link2, link3, finger; sites: fingertip" in err.value.hint
    with pytest.raises(WarpdError, match="joint\\(s\\) knee are not hinge or slide joints") as err:
        LinkKinematics.load(MJCF, "finger").position(("knee",), [0.0])
    assert "joints there: shoulder, elbow, wrist" in err.value.hint
    with pytest.raises(WarpdError, match="robot model .*nope.xml does not exist"):
        LinkKinematics.load(str(tmp_path / "nope.xml"), "finger")
    with pytest.raises(WarpdError, match="unknown task 'no_such_task'"):
        LinkKinematics.load("task:no_such_task", "finger")
    urdf = tmp_path / "arm.urdf"
    urdf.write_text('<robot name="arm"><link name="base"><collision><geometry><mesh filename="meshes/base.stl"/>'
                    '</geometry></collision></link></robot>')
    with pytest.raises(WarpdError, match="cannot load robot model") as err:
        LinkKinematics.load(str(urdf), "base")
    assert "a mesh it references is missing" in err.value.hint
