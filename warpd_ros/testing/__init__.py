"""The kit that tests (test/) and benchmarks (bench/) share to drive warpd nodes over real DDS.

In the spirit of ros2_control_demo_testing: one place for what every ROS test and benchmark needs,
so neither imports the other and the stand-ins cannot drift apart.

- :mod:`.standin` — ``TestNode`` (a real rclpy node with its own executor) and ``RobotStandIn``, the
  one robot/planner stand-in: joint states, task features and policies out; commands, ControllerStatus
  and diagnostics in; waits and parameter helpers.
- :mod:`.processes` — start a node as a child process with the loopback environment, and stop it
  (signal, then kill) so none is ever left behind.
- :mod:`.policies` — synthetic policies of the kinds tests need, and the command a controller must
  publish for one (through ``CommandPipeline``, never a re-derived clip).
- :mod:`.faults` — the fault-injection scenarios (test/test_faults.py asserts them, bench/faults.py
  tabulates them).
- :mod:`.fuzz` — malformed PolicyWeights cases and the fuzz runs (test/test_fuzz_swap.py,
  bench/fuzz_swap.py).
- :mod:`.graph_episodes` — the whole sim graph run for N episodes, with each one's mode, and the
  demonstrations' mode shares (test/test_graph_modes.py, bench/graph_modes.py).
- :mod:`.from_bag` — record -> import-bag -> train -> bringup hil, each step the `warpd` command line, and
  deployment episodes scored on the driver emulator (test/test_from_bag.py, bench/from_bag.py).
- :mod:`.bags` — rosbag2 files written with rosbags, as `ros2 bag record` writes them (the import-bag and
  eval-bag tests).

Nothing is imported here: each module pulls in rclpy (or Hypothesis) only when it is used.
"""
