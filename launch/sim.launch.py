"""The sim graph: warpd_sim (MuJoCo) + warpd_controller + warpd_planner.

    ros2 launch warpd_ros sim.launch.py [config:=/path/to/sim.yaml]

Nodes, parameters and remappings come from warpd_ros.graph.load_graph("sim", config), the same
description `warpd bringup sim` starts from (see warpd_ros/launch_graph.py).
"""
from warpd_ros.launch_graph import launch_description


def generate_launch_description():
    return launch_description("sim")
