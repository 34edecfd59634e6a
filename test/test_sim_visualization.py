"""warpd_sim's output for RViz / Foxglove, from a real sim process over loopback: /tf composes to
MuJoCo's body poses of the state on joint_states, robot_description reaches a subscriber that joins
late (transient-local), and the MarkerArray has the goal, the obstacle, the path and swap points."""
import time

import mujoco
import numpy as np
import pytest

from warpd_ros.testing.processes import start_module, stop_process
from warpd_ros.testing.standin import TestNode, running

pytestmark = [pytest.mark.ros, pytest.mark.slow]

COMMAND = [0.6, -0.9, 1.2]  # rad/s: the arm sweeps through many configurations


class Viewer(TestNode):
    """What RViz would subscribe, plus a command publisher that keeps the arm moving."""

    def __init__(self, context):
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from tf2_msgs.msg import TFMessage
        from visualization_msgs.msg import MarkerArray

        from warpd_ros import topics
        from warpd_ros.msg import ControllerStatus
        from warpd_ros.qos import COMMAND_QOS, MARKERS_QOS, SENSOR_QOS, STATUS_QOS, TF_QOS

        super().__init__(context, "test_sim_viewer")
        self.states, self.tfs, self.markers = {}, [], []
        self.node.create_subscription(JointState, topics.JOINT_STATES, self._on_state, SENSOR_QOS)
        self.node.create_subscription(TFMessage, topics.TF, self.tfs.append, TF_QOS)
        self.node.create_subscription(MarkerArray, topics.MARKERS, self.markers.append, MARKERS_QOS)
        self.cmd_pub = self.node.create_publisher(Float64MultiArray, topics.JOINT_COMMANDS, COMMAND_QOS)
        self.status_pub = self.node.create_publisher(ControllerStatus, topics.CONTROLLER_STATUS, STATUS_QOS)
        self.node.create_timer(0.02, lambda: self.cmd_pub.publish(Float64MultiArray(data=COMMAND)))

    def _on_state(self, msg):
        from warpd_ros.conversions import stamp_to_ns

        self.states[stamp_to_ns(msg.header.stamp)] = msg

    def send_status(self, policy_id: int):
        from warpd_ros.msg import ControllerStatus

        msg = ControllerStatus(mode=ControllerStatus.MODE_RUN, has_active_policy=True, active_policy_id=policy_id)
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.status_pub.publish(msg)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    log = tmp_path_factory.mktemp("sim_viz") / "sim.log"
    # long episodes (no reset while the test watches), /tf every control step
    proc = start_module("warpd_ros.nodes.sim", {"seed": 0, "tf_rate_hz": 50.0, "markers_rate_hz": 10.0},
                        log_path=log, unbuffered=True)
    try:
        yield proc, log
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def viewer(sim):
    with running(Viewer) as viewer:
        assert viewer.spin_until(lambda: len(viewer.tfs) >= 30 and viewer.markers, 30), \
            "no /tf or markers from the sim:\n" + sim[1].read_text()
        yield viewer


def compose(tf_msg) -> dict:
    """World pose of every frame in one TFMessage, composed along its parent -> child tree."""
    from warpd_ros.conversions import transform_to_matrix

    edges = {t.child_frame_id: (t.header.frame_id, transform_to_matrix(t.transform)) for t in tf_msg.transforms}
    poses = {"world": np.eye(4)}

    def pose(frame):
        if frame not in poses:
            parent, t = edges[frame]
            poses[frame] = pose(parent) @ t
        return poses[frame]

    return {frame: pose(frame) for frame in edges}


def test_tf_composes_to_mujocos_body_poses_of_the_reported_joint_state(viewer):
    from warpd_core.tasks import make_task
    from warpd_ros.conversions import JointIndex, stamp_to_ns

    task = make_task("reach_around")
    model, data = task.model, mujoco.MjData(task.model)
    index = JointIndex(list(task.spec.joint_names))
    viewer.spin_for(1.0)
    matched, configurations = 0, []
    for tf_msg in viewer.tfs[-40:]:
        stamps = {stamp_to_ns(t.header.stamp) for t in tf_msg.transforms}
        assert len(stamps) == 1  # one instant per message
        state = viewer.states.get(stamps.pop())
        if state is None:  # best-effort joint states: one may be lost
            continue
        q, _ = index.read(state)
        data.qpos[:3] = q
        mujoco.mj_kinematics(model, data)
        poses = compose(tf_msg)
        assert set(poses) == {"link1", "link2", "link3", "finger"}  # the robot's links; the goal is a marker
        for link, pose in poses.items():
            body = model.body(link).id
            np.testing.assert_allclose(pose[:3, 3], data.xpos[body], atol=1e-5)  # q is float32 on the wire
            np.testing.assert_allclose(pose[:3, :3], data.xmat[body].reshape(3, 3), atol=1e-5)
        matched += 1
        configurations.append(q)
    assert matched >= 20
    assert np.ptp(np.array(configurations), axis=0).min() > 0.05  # the arm moved: many configurations


def test_robot_description_reaches_a_late_subscriber(viewer):
    from std_msgs.msg import String

    from warpd_core.robot_description import robot_description
    from warpd_core.tasks import make_task
    from warpd_ros import topics
    from warpd_ros.qos import ROBOT_DESCRIPTION_QOS

    time.sleep(0.5)  # well after the sim published it, once, at start
    received = []
    with running(TestNode, "test_late_rviz") as late:
        late.node.create_subscription(String, topics.ROBOT_DESCRIPTION, received.append, ROBOT_DESCRIPTION_QOS)
        assert late.spin_until(lambda: received, 10), "robot_description is not latched"
    assert received[0].data == robot_description(make_task("reach_around").model).urdf
    assert '<joint name="shoulder" type="revolute">' in received[0].data


def test_markers_show_goal_obstacle_path_and_swap_points(viewer):
    import re

    from std_srvs.srv import Trigger
    from visualization_msgs.msg import Marker

    from warpd_core.tasks import make_task

    # a fresh episode (5 s long): its path and swaps are what the markers must show
    reply = viewer.call(viewer.node.create_client(Trigger, "/warpd_sim/reset"), Trigger.Request())
    seed = int(re.search(r"seed (\d+)", reply.message).group(1))
    viewer.spin_for(0.5)
    for policy_id in (11, 12, 13):  # the controller swaps policies: three changes of the active policy
        viewer.send_status(policy_id)
        viewer.spin_for(0.3)
    viewer.spin_for(0.3)
    latest = viewer.markers[-1].markers
    assert latest[0].action == Marker.DELETEALL  # every array is complete: a late viewer misses nothing
    scene = {m.text: m for m in latest if m.ns == "scene"}
    assert set(scene) == {"goal", "obstacle"}
    task = make_task("reach_around")
    task.reset(seed)
    expected = {m.name: m for m in task.scene_markers()}  # the episode's goal, as the sim drew it
    for name, marker in scene.items():
        p = marker.pose.position
        np.testing.assert_allclose([p.x, p.y, p.z], expected[name].position, atol=1e-6)
        np.testing.assert_allclose([marker.scale.x, marker.scale.y, marker.scale.z], expected[name].size, atol=1e-6)
        assert marker.header.frame_id == "world"
    assert scene["goal"].type == Marker.SPHERE and scene["obstacle"].type == Marker.CYLINDER
    path = [m for m in latest if m.ns == "path"]
    assert len(path) == 1 and path[0].type == Marker.LINE_STRIP and len(path[0].points) >= 20
    swaps = [m for m in latest if m.ns == "swaps"]
    assert len(swaps) == 1 and swaps[0].type == Marker.SPHERE_LIST
    assert len(swaps[0].points) == 2  # 11 -> 12 and 12 -> 13 (the first policy is no swap)


def test_frame_prefix_names_every_frame_and_the_path_is_capped():
    from warpd_core.robot_description import robot_description
    from warpd_core.tasks import make_task
    from warpd_ros.visualization import EpisodeMarkers, tf_message

    task = make_task("reach_around")
    msg = tf_message(robot_description(task.model), task.data, 123, frame_prefix="r1/")
    assert [(t.header.frame_id, t.child_frame_id) for t in msg.transforms] == [
        ("r1/world", "r1/link1"), ("r1/link1", "r1/link2"), ("r1/link2", "r1/link3"), ("r1/link3", "r1/finger")]
    book = EpisodeMarkers(frame="r1/world", max_path_points=100)
    for k in range(1000):
        book.add_path_point([k, 0.0, 0.0])
    assert 50 <= len(book.path) <= 100 and book.path[-1][0] == 999  # thinned, the newest point kept
    book.new_episode()
    assert [m.ns for m in book.message(task.scene_markers(), 0).markers] == ["", "scene", "scene"]
