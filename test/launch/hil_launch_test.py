"""launch_testing test of hil.launch.py: driver emulator + controller + planner, policies signed.

Run by test/test_ros_tooling.py as `launch_test test/launch/hil_launch_test.py` in a shell where a
colcon install of warpd_ros is sourced and `warpd keygen` has made the signing key hil.yaml names.
While it runs, the controller accepts the planner's signed policies and drives (RUN); after launch
shuts it down, every node exited 0 and the controller sent its hold command last.
"""
import unittest

import launch_testing
import launch_testing.asserts

from warpd_core.runtime.command_pipeline import Mode
from warpd_ros.modes import status_mode
from warpd_ros.testing.ros_tooling import controller_statuses_until_run, launch_file_test_description


def generate_test_description():
    return launch_file_test_description("hil.launch.py")


class TestHilGraphRuns(unittest.TestCase):
    def test_signed_policies_drive_the_emulated_robot(self):
        running = [s for s in controller_statuses_until_run(60.0) if status_mode(s) == Mode.RUN]
        self.assertTrue(running, "no ControllerStatus RUN within 60 s")
        self.assertGreater(running[-1].swaps_accepted, 0)


@launch_testing.post_shutdown_test()
class TestHilGraphStopsCleanly(unittest.TestCase):
    def test_every_node_exits_0_and_the_controller_holds_last(self, proc_info, proc_output):
        launch_testing.asserts.assertExitCodes(proc_info)
        self.assertEqual(len(proc_info.process_names()), 3, proc_info.process_names())
        launch_testing.asserts.assertInStderr(proc_output, "stopping: sent the hold command", "warpd_controller")
