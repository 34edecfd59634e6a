"""warpd_sim with episode_start=controller_runs (config/sim.yaml) holds every episode until the controller
reports RUN; after the first (a fresh sim has no previous episode), with a policy stamped at or after
that episode's reset.

Why: otherwise a new episode's first steps run the policy planned for the previous one, for as long as
the planner takes to plan from the new start state; on a busy machine that is several steps, and the
graph went far in ~2 of 3 episodes (issue 13, bench/graph_modes.py). Whether the sim is stepping is
read from `~/perturb`, which refuses while no episode runs.
"""
import time

import pytest

from warpd_ros.testing.processes import start_module, stop_process
from warpd_ros.testing.standin import TestNode, running

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.once]  # episode-start logic over plain pub/sub: distro-independent


class Controller(TestNode):
    """Plays the controller: ControllerStatus at 20 Hz, RUN with a policy of a given stamp."""

    def __init__(self, context):
        from std_srvs.srv import Trigger

        from warpd_ros import qos, topics
        from warpd_ros.msg import ControllerStatus

        super().__init__(context, "test_episode_start_controller")
        self.policy_stamp_ns = None  # None: HOLD, no policy
        self.status_pub = self.node.create_publisher(ControllerStatus, topics.CONTROLLER_STATUS, qos.STATUS_QOS)
        self.reset_client = self.node.create_client(Trigger, "/warpd_sim/reset")
        self.perturb_client = self.node.create_client(Trigger, "/warpd_sim/perturb")
        self.node.create_timer(0.05, self.send_status)

    def send_status(self):
        from warpd_ros.conversions import ns_to_stamp
        from warpd_ros.msg import ControllerStatus

        now = time.time_ns()
        msg = ControllerStatus(mode=ControllerStatus.MODE_HOLD)
        if self.policy_stamp_ns is not None:
            msg = ControllerStatus(mode=ControllerStatus.MODE_RUN, has_active_policy=True, active_policy_id=1,
                                   active_policy_age=(now - self.policy_stamp_ns) * 1e-9)
        msg.header.stamp = ns_to_stamp(now)
        self.status_pub.publish(msg)

    def running(self) -> bool:
        from std_srvs.srv import Trigger

        return self.call(self.perturb_client, Trigger.Request()).success

    def becomes_running(self, timeout: float = 3.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running():
                return True
            self.spin_for(0.1)
        return False


def test_each_episode_waits_for_a_policy_planned_after_its_reset(tmp_path):
    from std_srvs.srv import Trigger

    log = tmp_path / "sim.log"
    before_start = time.time_ns()
    proc = start_module("warpd_ros.nodes.sim", {"episode_start": "controller_runs", "seed": 3},
                        log_path=log, unbuffered=True)
    try:
        with running(Controller) as controller:
            assert controller.perturb_client.wait_for_service(timeout_sec=30), log.read_text()
            controller.spin_for(0.5)
            assert not controller.running(), "episode 0 must wait while the controller holds"
            controller.policy_stamp_ns = before_start  # a policy older than the sim still starts episode 0
            assert controller.becomes_running(), log.read_text()

            controller.policy_stamp_ns = time.time_ns()
            assert controller.call(controller.reset_client, Trigger.Request()).success
            controller.spin_for(0.5)  # RUN all along, but with the policy planned before the reset
            assert not controller.running(), "episode 1 started on the previous episode's policy"
            controller.policy_stamp_ns = time.time_ns()
            assert controller.becomes_running(), log.read_text()
    finally:
        assert stop_process(proc) == 0
