"""launch_testing test of sim.launch.py, the ROS-standard way of testing a launch file.

Run by test/test_ros_tooling.py as `launch_test test/launch/sim_launch_test.py` in a shell where a
colcon install of warpd_ros is sourced (the package is found through ament, as on a ROS install):
while the graph runs, the sim reports successful episodes and the controller drives (RUN); after
launch shuts it down, every node exited 0, the controller sent its hold command last, and the first
episode did not time out while the planner was still loading.
"""
import unittest

import launch_testing
import launch_testing.asserts

from warpd_core.runtime.command_pipeline import Mode
from warpd_ros.modes import status_mode
from warpd_ros.testing.ros_tooling import controller_statuses_until_run, launch_file_test_description

NODES = ("warpd_sim", "warpd_controller", "warpd_planner")


def generate_test_description():
    return launch_file_test_description("sim.launch.py")


class TestSimGraphRuns(unittest.TestCase):
    def test_the_controller_drives_with_a_planned_policy(self):
        seen = controller_statuses_until_run(60.0)
        self.assertTrue(any(status_mode(s) == Mode.RUN for s in seen),
                        f"no ControllerStatus RUN within 60 s ({len(seen)} statuses seen)")

    def test_episodes_succeed(self, proc_output):
        proc_output.assertWaitFor("SUCCESS after", process="warpd_sim", timeout=90)


@launch_testing.post_shutdown_test()
class TestSimGraphStopsCleanly(unittest.TestCase):
    def test_every_node_exits_0(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)  # 0, not -2 (signal), -6 (abort) or -9 (killed)
        names = proc_info.process_names()
        self.assertEqual(len(names), len(NODES), names)
        for node in NODES:
            self.assertTrue(any(name.startswith(node) for name in names), f"{node} not among {names}")

    def test_the_controller_sent_its_hold_command_last(self, proc_output):
        launch_testing.asserts.assertInStderr(proc_output, "stopping: sent the hold command", "warpd_controller")

    def test_no_episode_timed_out_while_the_graph_warmed_up(self, proc_output):
        first = [line for io in proc_output if io.process_name.startswith("warpd_sim")
                 for line in io.text.decode(errors="replace").splitlines() if "episode 0 (seed" in line]
        self.assertTrue(first and "SUCCESS" in first[0], f"first episode: {first}")
