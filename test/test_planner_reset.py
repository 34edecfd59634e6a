"""warpd_planner on an EpisodeEvent RESET plans the episode's first policy from the post-reset joint
state and task features, at once, whatever order the three topics arrive in.

Why: planning only on the replan period, an episode's first plan came up to 16 steps in, from a
state the previous episode's last policy had already set moving, and the graph lost WARPD's
multimodality (far 91%). The check is exact: the planner process (seed fixed, replan period 30 s so
its timer stays out of the way) must publish, weight for weight, what a Planner with the same seed
samples in this process from the post-reset observation.
"""
import time

import numpy as np
import pytest

from conftest import REPO
from warpd_ros.testing.processes import start_module, stop_process
from warpd_ros.testing.standin import TestNode, running

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.once]  # plan-on-reset logic over plain pub/sub: distro-independent

CHECKPOINT = REPO / "checkpoints" / "reach_around" / "checkpoint.safetensors"
JOINTS = ["shoulder", "elbow", "wrist"]
SEED, STEPS, SAMPLER = 7, 10, "ddim"
# The previous episode's final state (at its goal, still moving) and two new start states.
PRE = np.array([-0.6, 1.1, 0.9, 0.3, -0.2, 0.1, 0.41, 0.23])
STARTS = [np.array([-1.2, 1.6, 0.7, 0.0, 0.0, 0.0, 0.39, 0.21]), np.array([-1.1, 1.5, 0.8, 0.0, 0.0, 0.0, 0.42, 0.24])]


class Sim(TestNode):
    """Plays warpd_sim: joint states at 50 Hz stamped now, latched task features, EpisodeEvents."""

    def __init__(self, context):
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray

        from warpd_ros import qos, topics
        from warpd_ros.msg import EpisodeEvent, PolicyWeights

        super().__init__(context, "test_planner_reset_sim")
        self.obs, self.policies = PRE, []
        self.state_pub = self.node.create_publisher(JointState, topics.JOINT_STATES, qos.SENSOR_QOS)
        self.features_pub = self.node.create_publisher(Float64MultiArray, topics.TASK_FEATURES, qos.TASK_FEATURES_QOS)
        self.events_pub = self.node.create_publisher(EpisodeEvent, topics.EPISODE_EVENTS, qos.EVENTS_QOS)
        self.node.create_subscription(PolicyWeights, topics.POLICY_WEIGHTS,
                                      lambda m: self.policies.append((time.monotonic(), m)), qos.policy_swap_qos(50))
        self.send_features()
        self.node.create_timer(0.02, self.send_state)

    def send_state(self):
        from warpd_ros.conversions import joint_state_msg

        self.state_pub.publish(joint_state_msg(JOINTS, self.obs[:3], self.obs[3:6], time.time_ns()))

    def send_features(self):
        from warpd_ros.conversions import float64_array_msg

        self.features_pub.publish(float64_array_msg(self.obs[6:]))

    def send_reset(self, stamp_ns: int):
        from warpd_ros.conversions import ns_to_stamp
        from warpd_ros.msg import EpisodeEvent

        msg = EpisodeEvent(event=EpisodeEvent.RESET, task="reach_around")
        msg.header.stamp = ns_to_stamp(stamp_ns)
        self.events_pub.publish(msg)


def expected_weights(observations) -> list[np.ndarray]:
    """What a Planner seeded like the node samples for these observations, in order."""
    import torch

    from warpd_core.policies.warpd.planner import Planner

    torch.set_num_threads(1)  # as the node runs it
    planner = Planner.from_checkpoint(CHECKPOINT, "reach_around", steps=STEPS, guidance_scale=1.0, sampler=SAMPLER,
                                      seed=SEED)
    return [np.asarray(planner.generate(obs).weights, np.float32) for obs in observations]


@pytest.fixture(scope="module")
def planner(tmp_path_factory):
    log = tmp_path_factory.mktemp("planner_reset") / "planner.log"
    params = {"checkpoint": CHECKPOINT, "replan_period_s": 30.0, "seed": SEED, "diffusion_steps": STEPS,
              "sampler": SAMPLER}
    proc = start_module("warpd_ros.nodes.planner", params, log_path=log, unbuffered=True)
    try:
        yield proc, log
    finally:
        stop_process(proc)


def test_first_policy_of_an_episode_is_planned_from_its_start_state(planner):
    from warpd_ros.conversions import from_float32_field

    proc, log = planner
    expected = expected_weights(STARTS)
    with running(Sim) as sim:
        # ready: the planner is up and subscribed (it answers parameter requests) and has the pre-reset inputs
        sim.get_parameters("warpd_planner", ["seed"], timeout=60)
        sim.spin_for(1.0)
        assert sim.policies == [], "no plan was due yet (replan period 30 s)"
        # reset 1 in the sim's own order: RESET, the first state, then the features
        sim.send_reset(time.time_ns())
        sim.obs = STARTS[0]
        sim.send_state()
        sim.send_features()
        assert sim.spin_until(lambda: len(sim.policies) >= 1, 5.0), log.read_text()
        sim.spin_for(1.0)
        # reset 2 arriving the other way round: features, the first state, and the RESET (stamped first) last
        reset_ns = time.time_ns()
        sim.obs = STARTS[1]
        sim.send_features()
        sim.send_state()
        sim.send_reset(reset_ns)
        assert sim.spin_until(lambda: len(sim.policies) >= 2, 5.0), log.read_text()
        sim.spin_for(0.5)
    assert proc.poll() is None and len(sim.policies) == 2, "one plan per reset, none from the timer"
    got = [from_float32_field(m.weights) for _, m in sim.policies]
    for want, have in zip(expected, got):
        assert np.allclose(have, want, atol=1e-4), "not planned from the post-reset observation"
    assert not np.allclose(got[0], expected_weights([PRE])[0], atol=1e-2)  # the same noise from PRE differs
