"""warpd_sim publishes its goal as a geometry_msgs/PoseStamped on GOAL_POSE: at every episode start, in the
world frame (with frame_prefix), equal to the task's goal for that episode's seed; and the goal_position hook
of the tasks it comes from."""
import numpy as np
import pytest

from warpd_core.tasks import make_task
from warpd_core.tasks.base import SceneMarker, Task
from warpd_core.tasks.reach_around import ReachAroundTask
from warpd_ros.testing.processes import start_module, stop_process
from warpd_ros.testing.standin import TestNode, running

pytestmark = pytest.mark.once  # the sim's own publishing over plain pub/sub: distro-independent


def test_reach_around_goal_position_is_the_observed_goal_in_world_xyz():
    task = make_task("reach_around")
    for seed in (0, 7):
        obs = task.reset(seed)
        goal = task.goal_position()
        assert goal.shape == (3,) and goal[2] == pytest.approx(0.08)  # the goal body's height in the MJCF
        assert np.allclose(goal[:2], obs[6:8], atol=1e-6)
    task.displace_target(np.array([0.01, 0.05, 0.0]))  # follows the goal when it moves
    assert np.allclose(task.goal_position()[:2], task.observe()[6:8], atol=1e-6)


def test_the_default_goal_position_is_the_goal_marker_and_none_without_one():
    class Marked(ReachAroundTask):
        goal_position = Task.goal_position  # the base class's default

    task = Marked()
    task.reset(3)
    assert np.allclose(task.goal_position(), task.data.mocap_pos[task._goal_mocap])

    class Unmarked(Marked):
        def scene_markers(self):
            return [SceneMarker("obstacle", "sphere", (0.0, 0.0, 0.0), (0.1,) * 3)]

    with pytest.raises(NotImplementedError, match="does not name a goal point"):
        Unmarked().goal_position()


class GoalProbe(TestNode):
    def __init__(self, context):
        from geometry_msgs.msg import PoseStamped
        from std_msgs.msg import Float64MultiArray

        from warpd_ros import topics
        from warpd_ros.msg import EpisodeEvent
        from warpd_ros.qos import EVENTS_QOS, GOAL_QOS, TASK_FEATURES_QOS

        super().__init__(context, "test_goal_probe")
        self.goals, self.features, self.events = [], [], []
        self.node.create_subscription(PoseStamped, topics.GOAL_POSE, self.goals.append, GOAL_QOS)
        self.node.create_subscription(Float64MultiArray, topics.TASK_FEATURES,
                                      lambda m: self.features.append(np.array(m.data)), TASK_FEATURES_QOS)
        self.node.create_subscription(EpisodeEvent, topics.EPISODE_EVENTS, self.events.append, EVENTS_QOS)


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.parametrize("level", [0.0, 1.0])
def test_sim_publishes_each_episodes_goal_as_a_pose_in_its_world_frame(tmp_path, level):
    from warpd_ros.msg import EpisodeEvent

    log = tmp_path / "sim.log"
    # no commands: every episode times out after 5 sim s; at 20x that is a new goal every ~0.3 s
    proc = start_module("warpd_ros.nodes.sim", {"seed": 100, "real_time_factor": 20.0, "reset_delay_s": 0.0,
                                                "frame_prefix": "r1/", "tf_rate_hz": 0.0, "markers_rate_hz": 0.0,
                                                "perturbation_level": level},
                        log_path=log, unbuffered=True)
    try:
        with running(GoalProbe) as probe:
            def resets():
                return [e for e in probe.events if e.event == EpisodeEvent.RESET]

            # the goal pose is volatile: only episodes that start after the probe matched are seen
            assert probe.spin_until(lambda: len(resets()) >= 3 and len(probe.goals) >= 3, 45), log.read_text()
            probe.spin_for(0.3)  # the goals that go with the last resets
            assert proc.poll() is None
    finally:
        assert stop_process(proc) == 0
    task = make_task("reach_around")
    def ns(msg):
        return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec

    checked, noisy = 0, []
    for goal in probe.goals:
        # published right after its episode's RESET, in the same step: the latest reset at or before it
        reset = max((e for e in resets() if ns(e) <= ns(goal)), key=ns, default=None)
        if reset is None:
            continue
        if ns(goal) - ns(reset) > 0.05e9:  # not the reset's (one step is 1 ms of wall time at 20x): a target shift
            assert level > 0
            continue
        task.reset(int(reset.seed))
        position = goal.pose.position
        assert goal.header.frame_id == "r1/world"
        xyz, true = np.array([position.x, position.y, position.z]), task.goal_position()
        if level == 0:
            assert np.allclose(xyz, true, atol=1e-6)
        else:  # x, y are task features: observed, with the noise; z is none: exact
            assert xyz[2] == pytest.approx(true[2], abs=1e-9) and np.allclose(xyz[:2], true[:2], atol=0.05)
            noisy.append(np.abs(xyz[:2] - true[:2]).max())
        q = goal.pose.orientation
        assert (q.x, q.y, q.z, q.w) == (0.0, 0.0, 0.0, 1.0)
        checked += 1
    assert checked >= 2, ([(e.seed, ns(e)) for e in resets()], [ns(g) for g in probe.goals])
    assert level == 0 or max(noisy) > 1e-5  # the noise is there
    # the pose's x, y are the features published just before it (noisy alike at level 1)
    features = np.array(probe.features)
    for g in probe.goals:
        assert np.abs(features - [g.pose.position.x, g.pose.position.y]).max(axis=1).min() < 1e-12
    assert "Traceback" not in log.read_text()
