"""`warpd` subcommands that need no ROS: data collection, bag import, plotting, and the ML steps.

Each module has HELP, add_arguments(parser) and run(args) -> int, like the warpd_ros ones, and
imports its heavy dependencies inside run() so `warpd --help` stays fast. warpd_ros/cli.py lists
them in its COMMANDS table.
"""
