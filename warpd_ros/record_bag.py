"""`warpd record-bag`: record topics into a rosbag2 (MCAP) without rosbag2 — for pip installs.

    warpd record-bag --out demos_bag joint_states forward_velocity_controller/commands \\
        warpd/goal_pose warpd/episode_events

Records until Ctrl-C / SIGTERM (or --duration), then closes the bag complete and prints the messages per
topic. The bag reads back with `warpd import-bag`, rosbags' AnyReader, `ros2 bag` or Foxglove; message
definitions are embedded (warpd_ros/bag_recorder.py says how topics, types and QoS are found).
"""
from __future__ import annotations

import argparse
import signal
import sys
import time

from warpd_core.errors import WarpdError

HELP = "record topics into a rosbag2 in MCAP storage (no rosbag2 install needed)"
NODE_NAME = "warpd_record_bag"
DRAIN_S = 0.1  # after the stop, messages already received (queued in the subscriptions) are still written


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topics", nargs="+", metavar="TOPIC",
                        help="topics to record (relative names resolve in the root namespace: joint_states is "
                             "/joint_states)")
    parser.add_argument("--out", required=True, metavar="DIR", help="bag directory to create (must not exist)")
    parser.add_argument("--wait", type=_positive, default=10.0, metavar="SECONDS",
                        help="how long to wait for each topic to appear in the graph; one that has not by then is "
                             "not recorded (default 10)")
    parser.add_argument("--duration", type=_positive, metavar="SECONDS",
                        help="stop after this many seconds (default: at Ctrl-C or SIGTERM)")


def run(args) -> int:
    from warpd_ros.ros_env import require_ros

    rclpy = require_ros()
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from warpd_ros.bag_recorder import BagRecorder

    stop: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: stop.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}

    def say(text: str) -> None:
        print(text, flush=True)

    context = Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node(NODE_NAME, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    recorder = BagRecorder(node, args.out, args.topics, log=say)
    try:
        recorder.start()
        say(f"recording {len(recorder.wanted)} topics into {args.out}"
            + (f" for {args.duration:g} s" if args.duration else "; Ctrl-C to stop"))
        start = time.monotonic()
        gave_up = False
        while not stop and context.ok():
            executor.spin_once(timeout_sec=0.05)
            elapsed = time.monotonic() - start
            if not gave_up and elapsed >= args.wait:
                gave_up = True
                for topic in recorder.give_up(f"it did not appear within {args.wait:g} s"):
                    print(f"warpd record-bag: warning: {topic} did not appear within {args.wait:g} s: not recorded",
                          file=sys.stderr, flush=True)
                if not recorder.topics:
                    raise WarpdError(f"none of the topics {', '.join(recorder.wanted)} appeared within "
                                     f"{args.wait:g} s", "is the graph running in this ROS_DOMAIN_ID, and are the "
                                     "names right? (`warpd doctor` checks the set-up)")
            if args.duration is not None and elapsed >= args.duration:
                break
        drain_until = time.monotonic() + DRAIN_S  # what has arrived by the stop still goes into the bag
        while context.ok() and time.monotonic() < drain_until:
            executor.spin_once(timeout_sec=0.01)
        if stop:
            say(f"stopped by {signal.Signals(stop[0]).name}")
    finally:
        recorder.close()  # the executor no longer spins: nothing writes concurrently
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        context.try_shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    say(recorder.summary())
    return 0
