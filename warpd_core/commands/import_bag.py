"""`warpd import-bag`: turn a rosbag2 recording (joint states + commands, optionally goals, task
features and episode events) into a warpd dataset that `warpd train` takes as it is.

For demonstrations recorded on a real robot or a ROS sim, e.g. by teleoperation through a
velocity forward_command_controller: `ros2 bag record /joint_states
/forward_velocity_controller/commands /goal_pose /tf_static`. Needs no ROS install (see
data/rosbag_import.py for the pairing and splitting rules). Importing into an existing dataset
appends, with new episode indices, provided the joints, commands and features are the same.
"""
from __future__ import annotations

import argparse
import sys

from warpd_core.commands.argtypes import name_list, positive_float

HELP = "convert a rosbag2 recording of joint states and commands into a dataset (no ROS needed)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", help="rosbag2 directory (holds metadata.yaml; sqlite3 or mcap storage)")
    parser.add_argument("--out", required=True, help="dataset directory to create, or to append to")
    parser.add_argument("--task-name", default="rosbag",
                        help="task name stored with the episodes; data.task in the training config (default rosbag)")
    robot = parser.add_argument_group("robot")
    robot.add_argument("--joint-states", default="/joint_states", metavar="TOPIC",
                       help="sensor_msgs/msg/JointState topic: the observations; empty or NaN velocities are "
                            "derived from positions (default /joint_states)")
    robot.add_argument("--commands", default="/forward_velocity_controller/commands", metavar="TOPIC",
                       help="std_msgs/msg/Float64MultiArray (or Float32MultiArray) in --joints order, or "
                            "trajectory_msgs/msg/JointTrajectory (first point, matched by joint name): the actions "
                            "(default /forward_velocity_controller/commands)")
    robot.add_argument("--command-interface", choices=("velocity", "position"), default="velocity",
                       help="what the commands are: joint velocities (actions <joint>_vel) or position targets "
                            "(<joint>_pos) (default velocity)")
    robot.add_argument("--joints", type=name_list, metavar="A,B,...",
                       help="joints to observe and command, in the controller's command order (default: all "
                            "joints, in the order of the first JointState message)")
    task = parser.add_argument_group("goal and task features")
    task.add_argument("--goal", metavar="TOPIC",
                      help="geometry_msgs/msg/PoseStamped or PointStamped: the goal position, latest at or before "
                           "each step, as task features")
    task.add_argument("--frame", default="world",
                      help="training frame the goal is expressed in (default world); goals in another frame are "
                           "transformed by --goal-transform or /tf_static")
    task.add_argument("--goal-transform", type=transform, metavar="'X Y Z QX QY QZ QW'",
                      help="fixed transform from the goal message's frame to --frame (default: from /tf_static)")
    task.add_argument("--goal-features", type=name_list, default=("goal_x", "goal_y", "goal_z"), metavar="NAMES",
                      help="which goal coordinates become features, in order (default goal_x,goal_y,goal_z)")
    task.add_argument("--features", metavar="TOPIC",
                      help="std_msgs/msg/Float64MultiArray of extra task features, latest at or before each step")
    task.add_argument("--feature-names", type=name_list, metavar="A,B,...",
                      help="names of the --features values (default feature_0, feature_1, ...)")
    episodes = parser.add_argument_group("episodes and success")
    episodes.add_argument("--episode-events", metavar="TOPIC",
                          help="warpd_ros/msg/EpisodeEvent (RESET starts, SUCCESS/TIMEOUT end, with success and "
                               "mode) or std_msgs/msg/Bool (True starts, False stops): the episodes; without it, "
                               "pauses split them")
    episodes.add_argument("--hold-after-success", type=positive_float, default=0.0, metavar="SECONDS",
                          help="keep this long of each successful episode after its SUCCESS event (the robot "
                               "staying at the goal: policies then learn to stop there; default 0, the episode "
                               "ends at SUCCESS). Record it with warpd_sim's hold_after_success_s or by "
                               "sending SUCCESS before the robot is stopped")
    episodes.add_argument("--split-gap", type=positive_float, default=0.5, metavar="SECONDS",
                          help="start a new episode when no command arrives for this long (default 0.5; these three "
                               "split only without --episode-events)")
    episodes.add_argument("--split-idle", type=positive_float, metavar="SECONDS",
                          help="also split where velocity commands stay zero / position targets stay unchanged "
                               "this long; the idle commands are dropped")
    episodes.add_argument("--max-episode-seconds", type=positive_float, metavar="SECONDS",
                          help="also cut episodes longer than this (default: no limit)")
    episodes.add_argument("--success-rule", type=success_rule, metavar="LINK:RADIUS",
                          help="success when body or site LINK of --robot-model ends within RADIUS m of the goal "
                               "(forward kinematics of the last joint state; goal in the model's world frame)")
    episodes.add_argument("--robot-model", metavar="PATH|task:NAME",
                          help="MJCF (.xml) or URDF for --success-rule, or task:<name> for a registered task's model")
    episodes.add_argument("--labels", metavar="FILE",
                          help="YAML ({0: true, 1: {success: false, mode: left}}) or CSV (episode,success[,mode]): "
                               "success of episodes numbered from 0 in recording order; events and the rule come "
                               "first")
    parser.add_argument("--rate", type=positive_float, metavar="HZ",
                        help="resample each episode to this control rate (joint states interpolated, latest "
                             "command); default one step per command message")


def transform(text: str) -> tuple[float, ...]:
    """'x y z qx qy qz qw' -> seven floats."""
    try:
        values = tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        values = ()
    if len(values) != 7:
        raise argparse.ArgumentTypeError(f"expected 7 numbers 'x y z qx qy qz qw', got {text!r}")
    return values


def success_rule(text: str) -> tuple[str, float]:
    """'finger:0.05' -> ('finger', 0.05)."""
    link, sep, radius = text.rpartition(":")
    try:
        value = float(radius)
    except ValueError:
        value = -1.0
    if not sep or not link or not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected LINK:RADIUS like finger:0.05 (radius in m, > 0), got {text!r}")
    return link, value


def _check_frame(out, frame: str) -> None:
    """Appending goals of another frame would mix frames under one header: refuse."""
    from pathlib import Path

    from warpd_core.data import Dataset
    from warpd_core.errors import WarpdError
    from warpd_core.robot_contract import DEFAULT_FRAME

    if (Path(out) / "dataset.json").is_file():
        there = Dataset.open(out).info.task_frame or DEFAULT_FRAME
        if there != frame:
            raise WarpdError(f"cannot append to {out}: its goals are in frame {there!r}, this import's in {frame!r}",
                             f"import with --frame {there}, or write to a new dataset directory")


def run(args) -> int:
    from warpd_core.data import DatasetWriter
    from warpd_core.data.rosbag_import import ImportOptions, import_bag

    options = ImportOptions(
        joint_states_topic=args.joint_states, commands_topic=args.commands, joints=args.joints,
        command_interface=args.command_interface, split_gap=args.split_gap,
        max_episode_seconds=args.max_episode_seconds, split_idle=args.split_idle, rate=args.rate,
        goal_topic=args.goal, frame=args.frame, goal_transform=args.goal_transform,
        goal_feature_names=args.goal_features, features_topic=args.features, feature_names=args.feature_names,
        episode_events_topic=args.episode_events,
        hold_after_success=args.hold_after_success, success_rule=args.success_rule, robot_model=args.robot_model,
        labels=args.labels)
    bag = import_bag(args.bag, options, progress=True)
    _check_frame(args.out, bag.task_frame)
    with DatasetWriter(args.out, bag.dataset_info(args.task_name)) as writer:
        first = writer.next_episode_index
        for k, episode in enumerate(bag.episodes):
            writer.add_episode(episode.observations, episode.actions, bag.record(episode, first + k, args.task_name))
    steps = sum(len(e.actions) for e in bag.episodes)
    print(f"imported {len(bag.episodes)} episodes ({steps} steps) from {args.bag}")
    print(f"joints: {', '.join(bag.joints)}; {bag.command_interface} commands; "
          f"{'control rate ' + format(args.rate, 'g') + ' Hz' if args.rate else 'command period'} "
          f"-> control_dt {bag.control_dt} s")
    if bag.task_features:
        print(f"task features: {', '.join(bag.task_features)} (frame {bag.task_frame})")
    if bag.skipped_commands:
        print(f"skipped {bag.skipped_commands} commands received before the first joint state")
    for note in bag.notes:
        print(note)
    counts = bag.outcome_counts()
    print(f"episodes: {counts['successful']} successful, {counts['failed']} failed, {counts['unknown']} unknown")
    if not counts["successful"]:
        print("warning: no episode is marked successful, and training uses successful episodes only, so "
              "`warpd train` will refuse this data: give --episode-events, --success-rule or --labels",
              file=sys.stderr)
    print(f"dataset: {writer.path.resolve()} ({len(writer.records)} episodes)")
    return 0
