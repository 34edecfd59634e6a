"""The hardware-in-the-loop graph: warpd_controller + warpd_planner against ros2_control drivers
(warpd_driver_emulator stands in for them unless config drops it; see config/hil.yaml).

    ros2 launch warpd_ros hil.launch.py [config:=/path/to/hil.yaml]

Nodes, parameters and remappings come from warpd_ros.graph.load_graph("hil", config), the same
description `warpd bringup hil` starts from (see warpd_ros/launch_graph.py).
"""
from warpd_ros.launch_graph import launch_description


def generate_launch_description():
    return launch_description("hil")
