"""The body of launch/*.launch.py: a LaunchDescription built from warpd_ros.graph.

`launch`, `launch_ros` and `ament_index_python` exist only on full ROS 2 installs, so they are
imported when a launch file asks for its description, never when warpd_ros is imported.
"""
from __future__ import annotations

import os

from warpd_ros.graph import load_graph


def launch_description(kind: str):
    """`ros2 launch` description of graph `kind` with a `config` argument (default: the installed
    share/warpd_ros/config/<kind>.yaml), passed unchanged to every node."""
    from ament_index_python.packages import get_package_share_directory
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def nodes(context):
        config = LaunchConfiguration("config").perform(context)
        return [Node(package="warpd_ros", executable=spec.executable, name=spec.name, output="screen",
                     parameters=[config], remappings=list(spec.remappings.items()))
                for spec in load_graph(kind, config)]

    default = os.path.join(get_package_share_directory("warpd_ros"), "config", f"{kind}.yaml")
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=default,
                              description=f"ROS params file of the {kind} graph (nodes, parameters, remappings)"),
        OpaqueFunction(function=nodes),
    ])
