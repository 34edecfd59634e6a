"""`python -m warpd_ros.nodes NODE [--ros-args ...]`: run one node with stop signals caught from the start
(warpd_ros/node_process.py says why). NODE is warpd_sim, warpd_controller, warpd_planner,
warpd_driver_emulator or warpd_episodes."""
import sys

from warpd_ros.node_process import run_node_executable

if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
    sys.exit("usage: python -m warpd_ros.nodes NODE [--ros-args ...]")
sys.exit(run_node_executable(sys.argv[1]))
