"""`warpd import-bag`: turn a rosbag2 recording (joint states + commands) into a warpd dataset.

For demonstrations recorded on a real robot or a ROS sim, e.g. by teleoperation through a
velocity forward_command_controller: `ros2 bag record /joint_states
/forward_velocity_controller/commands`. Needs no ROS install (see data/rosbag_import.py for the
pairing and splitting rules). Importing into an existing dataset appends, with new episode
indices, provided the joints and command layout are the same.
"""
from __future__ import annotations

import argparse

from warpd_core.commands.argtypes import name_list, positive_float

HELP = "convert a rosbag2 recording of joint states and commands into a dataset (no ROS needed)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", help="rosbag2 directory (holds metadata.yaml; sqlite3 or mcap storage)")
    parser.add_argument("--out", required=True, help="dataset directory to create, or to append to")
    parser.add_argument("--joint-states", default="/joint_states", metavar="TOPIC",
                        help="sensor_msgs/msg/JointState topic: the observations (default /joint_states)")
    parser.add_argument("--commands", default="/forward_velocity_controller/commands", metavar="TOPIC",
                        help="std_msgs/msg/Float64MultiArray topic: one step per message, its data is the action "
                             "(default /forward_velocity_controller/commands)")
    parser.add_argument("--joints", type=name_list, metavar="A,B,...",
                        help="joints to observe, in this order (default: all joints, in the order of the first "
                             "JointState message)")
    parser.add_argument("--split-gap", type=positive_float, default=0.5, metavar="SECONDS",
                        help="start a new episode when no command arrives for this long (default 0.5)")
    parser.add_argument("--max-episode-seconds", type=positive_float, metavar="SECONDS",
                        help="also cut episodes longer than this (default: no limit)")
    parser.add_argument("--task-name", default="rosbag",
                        help="task name stored with the episodes (default rosbag)")


def run(args) -> int:
    from warpd_core.data import DatasetWriter
    from warpd_core.data.rosbag_import import import_bag

    bag = import_bag(args.bag, args.joint_states, args.commands, args.joints, args.split_gap,
                     args.max_episode_seconds, progress=True)
    with DatasetWriter(args.out, bag.dataset_info(args.task_name)) as writer:
        first = writer.next_episode_index
        for k, episode in enumerate(bag.episodes):
            writer.add_episode(episode.observations, episode.actions, bag.record(episode, first + k, args.task_name))
    steps = sum(len(e.actions) for e in bag.episodes)
    print(f"imported {len(bag.episodes)} episodes ({steps} steps) from {args.bag}")
    print(f"joints: {', '.join(bag.joints)}; command period {bag.control_dt} s")
    if bag.skipped_commands:
        print(f"skipped {bag.skipped_commands} commands received before the first joint state")
    print(f"dataset: {writer.path.resolve()} ({len(writer.records)} episodes)")
    return 0
