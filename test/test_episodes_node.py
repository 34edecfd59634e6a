"""warpd_episodes in its own process, driven and observed from this one over loopback DDS (no mocks): the
operator's services give RESET / SUCCESS / TIMEOUT in order; the success monitor declares SUCCESS when a
JointState puts reach_around's fingertip (forward kinematics of the model itself) within the radius of a
PoseStamped goal for the hold time, and not while it is outside; TIMEOUT after max_episode_s; a goal in
another frame is ignored, and the task features stand in for a goal pose."""
import signal
import subprocess
import time

import numpy as np
import pytest

from warpd_ros.testing.processes import start_module, stop_process
from warpd_ros.testing.standin import TestNode

pytestmark = [pytest.mark.ros, pytest.mark.slow]

JOINTS = ["shoulder", "elbow", "wrist"]
TOPIC_KEYS = {"joint_states": "/joint_states", "goal": "/warpd/goal_pose", "features": "/warpd/task_features",
              "events": "/warpd/episode_events"}
RESET, SUCCESS, TIMEOUT = 0, 1, 2


def _fingertip(q):
    from warpd_core.kinematics import LinkKinematics

    return LinkKinematics.load("task:reach_around", "fingertip").position(JOINTS, q)


@pytest.fixture(scope="module")
def reach():
    """Joint angles that put reach_around's fingertip on its nominal goal, that point (from the model), and
    a posture 10+ cm away from it."""
    from warpd_core.tasks.reach_around import GOAL_XY, START_XY, solve_ik

    q_at, q_out = solve_ik(GOAL_XY), solve_ik(START_XY)
    goal = _fingertip(q_at)
    assert np.allclose(goal[:2], GOAL_XY, atol=1e-3)
    assert np.linalg.norm(_fingertip(q_out) - goal) > 0.1
    return q_at, q_out, goal


@pytest.fixture
def episodes(tmp_path):
    """start(name, **params) -> (Popen, topics, node name) of warpd_episodes, its topics under /test_eps/<name>/."""
    procs = []

    def start(name, **params):
        topics = {key: f"/test_eps/{name}{default}" for key, default in TOPIC_KEYS.items()}
        remaps = [a for key, default in TOPIC_KEYS.items() for a in ("-r", f"{default}:={topics[key]}")]
        node = f"eps_{name}"
        proc = start_module("warpd_ros.nodes.episodes", params, "-r", f"__node:={node}", *remaps,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(proc)
        return proc, topics, node

    yield start
    for proc in procs:
        stop_process(proc, timeout=5)


class Operator(TestNode):
    """Calls the services, publishes joint states, goals and task features, records EpisodeEvents."""

    def __init__(self, context, topics, node_name):
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray
        from std_srvs.srv import Trigger

        from warpd_ros.msg import EpisodeEvent
        from warpd_ros.qos import EVENTS_QOS, GOAL_QOS, SENSOR_QOS, TASK_FEATURES_QOS

        super().__init__(context, "test_episodes_operator")
        self.topics, self.node_name = topics, node_name
        self.events = []
        self.node.create_subscription(EpisodeEvent, topics["events"], self.events.append, EVENTS_QOS)
        self.states = self.node.create_publisher(JointState, topics["joint_states"], SENSOR_QOS)
        self.goals = self.node.create_publisher(PoseStamped, topics["goal"], GOAL_QOS)
        self.features = self.node.create_publisher(Float64MultiArray, topics["features"], TASK_FEATURES_QOS)
        self.clients = {s: self.node.create_client(Trigger, f"/{node_name}/{s}")
                        for s in ("start", "stop", "reset", "mark_success")}
        self.q = None  # published at 50 Hz while spinning
        self.goal = None  # (frame, xyz), published with each state
        self._last_pub = 0.0

    def connected(self, timeout=20.0):
        assert self.spin_until(lambda: self.node.count_publishers(self.topics["events"]) > 0
                               and self.node.count_subscribers(self.topics["goal"]) > 0, timeout), \
            "warpd_episodes never appeared"

    def spin(self, seconds, until=None):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.005)
            if time.monotonic() - self._last_pub >= 0.02:
                self._last_pub = time.monotonic()
                self._publish()
            if until is not None and until():
                return True
        return False

    def _publish(self):
        from geometry_msgs.msg import PoseStamped

        from warpd_ros.conversions import joint_state_msg

        if self.q is not None:  # the driver's own order, not the node's
            order = [2, 0, 1]
            self.states.publish(joint_state_msg([JOINTS[i] for i in order], [self.q[i] for i in order], [0.0] * 3,
                                                time.time_ns()))
        if self.goal is not None:
            msg = PoseStamped()
            msg.header.frame_id = self.goal[0]
            msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in self.goal[1])
            msg.pose.orientation.w = 1.0
            self.goals.publish(msg)

    def trigger(self, service):
        from std_srvs.srv import Trigger

        client = self.clients[service]
        assert client.wait_for_service(timeout_sec=10), f"{client.srv_name} never appeared"
        future = client.call_async(Trigger.Request())
        assert self.spin(10, until=future.done), f"{client.srv_name} did not answer"
        return future.result()

    def wait_events(self, n, timeout=10.0):
        assert self.spin(timeout, until=lambda: len(self.events) >= n), self.summary()
        self.spin(0.2)  # nothing more should come meanwhile
        return self.events

    def summary(self):
        return [(e.event, e.episode, e.detail) for e in self.events]


@pytest.fixture
def operator(rclpy_context):
    made = []

    def make(topics, node_name):
        made.append(Operator(rclpy_context, topics, node_name))
        made[-1].connected()
        return made[-1]

    yield make
    for op in made:
        op.close()


def _stop_clean(proc):
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    return out


def test_services_give_events_in_order_and_a_live_timeout(episodes, operator):
    proc, topics, name = episodes("services", task="reach_around_hw")
    op = operator(topics, name)

    assert op.trigger("stop").success is False  # nothing started yet
    assert op.trigger("mark_success").success is False
    started = op.trigger("start")
    assert started.success and "episode 1" in started.message
    assert op.trigger("start").success is False  # one runs: stop or reset first
    assert op.trigger("mark_success").success
    stop = op.trigger("stop")  # it already succeeded: no TIMEOUT for it
    assert stop.success and "already succeeded" in stop.message
    assert op.trigger("reset").success  # episode 2, nothing to end
    assert op.trigger("stop").success  # TIMEOUT "stopped by operator"
    assert op.trigger("start").success  # episode 3
    assert op.trigger("reset").success  # ends 3, starts 4
    assert op.trigger("stop").success
    op.wait_events(8)
    assert op.summary() == [(RESET, 1, "started"), (SUCCESS, 1, "operator"),
                            (RESET, 2, "started"), (TIMEOUT, 2, "stopped by operator"),
                            (RESET, 3, "started"), (TIMEOUT, 3, "stopped by operator"),
                            (RESET, 4, "started"), (TIMEOUT, 4, "stopped by operator")]

    # max_episode_s, set live: TIMEOUT after it
    assert op.set_parameter(name, "max_episode_s", 1.0).successful
    t0 = time.monotonic()
    assert op.trigger("start").success  # episode 5
    events = op.wait_events(10)
    assert time.monotonic() - t0 >= 0.9
    reset, timeout = events[-2], events[-1]
    assert (reset.event, reset.episode, timeout.event, timeout.episode) == (RESET, 5, TIMEOUT, 5), op.summary()
    assert "max_episode_s" in timeout.detail and 1.0 <= timeout.episode_time <= 1.5, timeout.episode_time
    assert all(e.task == "reach_around_hw" and e.mode == "" for e in events)
    assert np.isnan(timeout.distance)  # no joint state, no goal: no distance
    _stop_clean(proc)


@pytest.mark.once  # the monitor's geometry is distro-independent; the services test runs on both
def test_success_when_the_fingertip_holds_inside_the_radius_of_the_goal_pose(episodes, operator, reach):
    q_at, q_out, goal = reach
    # a hold twice the staleness limit: a stall of this process while it touches the goal cannot fake a hold
    proc, topics, name = episodes("monitor", success_radius=0.03, success_hold_s=0.6, stale_after_s=0.3)
    op = operator(topics, name)
    op.goal = ("world", goal)
    op.q = q_out  # 10+ cm away
    assert op.trigger("start").success
    op.spin(1.5)
    assert op.summary() == [(RESET, 1, "started")], "no SUCCESS while the fingertip is outside the radius"
    # a touch that does not last the hold time is no success
    op.q = q_at
    op.spin(0.1)
    op.q = q_out
    op.spin(0.8)
    assert op.summary() == [(RESET, 1, "started")]
    entered = time.monotonic()
    op.q = q_at + np.array([0.0, 0.0, 0.02])  # the wrist 0.02 rad off: 3 mm away, inside 3 cm
    events = op.wait_events(2, timeout=5.0)
    held = time.monotonic() - entered
    success = events[1]
    assert (success.event, success.episode) == (SUCCESS, 1), op.summary()
    assert held >= 0.58 and 0.0 < success.distance < 0.03, (held, success.distance)
    assert success.episode_time >= 2.9 and "within 0.03 m for 0.6 s" in success.detail
    assert len(events) == 2  # one event ends an episode: no more while it stays there
    assert "already succeeded" in op.trigger("stop").message
    _stop_clean(proc)


@pytest.mark.once  # the monitor's geometry is distro-independent; the services test runs on both
def test_a_goal_in_another_frame_is_ignored_and_task_features_stand_in(episodes, operator, reach):
    from std_msgs.msg import Float64MultiArray

    q_at, _, goal = reach
    proc, topics, name = episodes("frames", success_hold_s=0.0, goal_frame="world")
    op = operator(topics, name)
    op.goal = ("base_link", goal)  # the right point, in a frame the node cannot transform
    op.q = q_at
    assert op.trigger("start").success
    op.spin(1.5)
    assert op.summary() == [(RESET, 1, "started")], "a goal in another frame must be ignored"
    # no goal pose it can use: the first two task features are the goal (x, y), in the plane
    op.features.publish(Float64MultiArray(data=[float(goal[0]), float(goal[1]), 7.0]))
    events = op.wait_events(2, timeout=5.0)
    assert events[1].event == SUCCESS and events[1].distance < 0.001, op.summary()
    out = _stop_clean(proc)
    assert "ignoring goal pose in frame 'base_link'" in out
    assert out.count("ignoring goal pose in frame") <= 2  # throttled: 75 poses in 1.5 s


def test_a_link_the_model_lacks_is_a_clear_error(episodes):
    proc, _, _ = episodes("bad", link="nope")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    assert "no body or site 'nope'" in out and "Traceback" not in out
