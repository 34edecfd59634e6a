"""The body of launch/*.launch.py: a LaunchDescription built from warpd_ros.graph.

`launch`, `launch_ros` and `ament_index_python` exist only on full ROS 2 installs, so they are
imported when a launch file asks for its description, never when warpd_ros is imported.
"""
from __future__ import annotations

import os

from warpd_ros.graph import check_namespace, load_graph, namespaced_config


def launch_description(kind: str):
    """`ros2 launch` description of graph `kind` with a `config` argument (default: the installed
    share/warpd_ros/config/<kind>.yaml), passed unchanged to every node, and a `namespace` argument
    (default none) that puts every node, and so every relative topic, under it; the nodes then read
    a copy of the config keyed by their full names (warpd_ros.graph.namespaced_config)."""
    from ament_index_python.packages import get_package_share_directory
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def nodes(context):
        config = LaunchConfiguration("config").perform(context)
        namespace = check_namespace(LaunchConfiguration("namespace").perform(context))
        params_file = str(namespaced_config(config, namespace)) if namespace else config
        autostart = LaunchConfiguration("autostart").perform(context).strip().lower()
        if autostart not in ("", "true", "false"):
            raise ValueError(f"autostart:={autostart!r}: expected true or false")
        return [Node(package="warpd_ros", executable=spec.executable, name=spec.name, namespace=namespace or None,
                     output="screen", remappings=list(spec.remappings.items()),
                     parameters=[params_file] + ([{"autostart": autostart == "true"}]
                                                 if autostart and spec.name == "warpd_controller" else []))
                for spec in load_graph(kind, config)]

    default = os.path.join(get_package_share_directory("warpd_ros"), "config", f"{kind}.yaml")
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=default,
                              description=f"ROS params file of the {kind} graph (nodes, parameters, remappings)"),
        DeclareLaunchArgument("autostart", default_value="",
                              description="true: the controller configures and activates itself once joint states "
                                          "are fresh; false: it stays unconfigured until `ros2 lifecycle set`; "
                                          "default: the config's warpd_controller.autostart (true if unset)"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of every node and topic, e.g. r1 (several robots in one "
                                          "domain); default: none"),
        OpaqueFunction(function=nodes),
    ])
