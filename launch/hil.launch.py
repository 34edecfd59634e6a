"""The hardware-in-the-loop graph: warpd_controller + warpd_planner against ros2_control drivers
(warpd_driver_emulator stands in for them unless config drops it; see config/hil.yaml).

    ros2 launch warpd_ros hil.launch.py [config:=/path/to/hil.yaml]

Nodes, parameters and remappings come from warpd_ros.graph.load_graph("hil", config), the same
description `warpd bringup hil` starts from; `config` is a ROS params file (default: the
installed share/warpd_ros/config/hil.yaml), passed unchanged to every node.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from warpd_ros.graph import load_graph

KIND = "hil"


def _nodes(context):
    config = LaunchConfiguration("config").perform(context)
    return [Node(package="warpd_ros", executable=spec.executable, name=spec.name, output="screen",
                 parameters=[config], remappings=list(spec.remappings.items()))
            for spec in load_graph(KIND, config)]


def generate_launch_description():
    default = os.path.join(get_package_share_directory("warpd_ros"), "config", f"{KIND}.yaml")
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=default,
                              description=f"ROS params file of the {KIND} graph (nodes, parameters, remappings)"),
        OpaqueFunction(function=_nodes),
    ])
