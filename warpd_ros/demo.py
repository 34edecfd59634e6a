"""`warpd demo`: the main job — the sim graph with the shipped checkpoint, under perturbations.

Starts sim + controller + planner exactly as `warpd bringup sim` does (same graph, same config),
listens to the graph for `--duration` seconds, stops it, then prints the episodes, success rate,
swaps accepted/rejected and loop timing, and writes a plot of the joint trajectories with policy
swaps, perturbations and episode outcomes marked.
"""
from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path

from warpd_core.errors import WarpdError

HELP = "run the MuJoCo sim demo (sim + controller + planner) under perturbations; print what happened, plot it"


def _duration(text: str) -> float:
    value = float(text)
    if not 5 <= value <= 600:
        raise argparse.ArgumentTypeError(f"duration must be 5..600 s, got {text}")
    return value


def _level(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"perturbation level must be in [0, 1], got {text}")
    return value


def _worth_showing(line: str) -> bool:
    return "[INFO]" not in line or "episode" in line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=_duration, default=60.0, help="seconds to run (default 60)")
    parser.add_argument("--level", type=_level, default=0.5,
                        help="perturbation level 0..1 for the sim (default 0.5; spec in config/perturbations.yaml)")
    parser.add_argument("--plot", type=Path, default=Path("warpd_demo.png"),
                        help="where to write the trajectory plot (default warpd_demo.png)")
    parser.add_argument("--video", type=Path, default=None, metavar="PATH",
                        help="also write a video of the episodes heard (.gif, or .mp4 with imageio-ffmpeg), "
                             "rendered offscreen with MuJoCo after the graph stops, so the run itself is not "
                             "slowed: pushes as arrows, policy swaps as a flashing outline, the effector's path, "
                             "a caption with episode, time and outcome (needs libosmesa6 on a machine without a display)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--task", default=None, metavar="TASK",
                       help="run the shipped sim graph of this task: reach_around (default, config/sim.yaml) or "
                            "panda_reach_around (the Franka Panda, config/sim_panda.yaml)")
    which.add_argument("--config", type=Path, default=None, help="ROS params file (default config/sim.yaml)")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: inherit)")
    parser.add_argument("--show-nodes", action="store_true", help="relay every line the nodes print")


def run(args: argparse.Namespace) -> int:
    from warpd_ros.bringup import Bringup, plan
    from warpd_ros.monitor import Monitor, sim_perturbations
    from warpd_ros.ros_env import loopback_environment, require_ros

    rclpy = require_ros()
    if args.video is not None:  # a bad path or a missing GL library must not cost the whole run first
        from warpd_core.eval.video import check_video_path, ensure_offscreen_gl

        check_video_path(args.video)
        ensure_offscreen_gl()
    from warpd_ros.graph import sim_config_for_task

    config = sim_config_for_task(args.task) if args.task else args.config
    children = plan("sim", config, [("warpd_sim", "perturbation_level", str(args.level))])
    env = loopback_environment(args.domain_id)
    env["PYTHONUNBUFFERED"] = "1"
    # by default only the sim's per-episode lines and anything above INFO
    graph = Bringup(children, env, show=(lambda line: True) if args.show_nodes else _worth_showing)
    print(f"warpd demo: sim + controller + planner for {args.duration:g} s at perturbation level {args.level}"
          f" ({config or 'config/sim.yaml'})")
    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]) if "ROS_DOMAIN_ID" in env else None)
    node = rclpy.create_node("warpd_demo_monitor", context=context)
    monitor = Monitor(node)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    dead = None
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C works even if started with SIGINT ignored
    try:
        graph.start()
        dead = _wait_until_controlled(executor, node, monitor, graph)
        deadline = time.monotonic() + args.duration
        while time.monotonic() < deadline and dead is None:
            executor.spin_once(timeout_sec=0.05)
            dead = graph.first_dead()
    except KeyboardInterrupt:
        print("warpd demo: interrupted")
    finally:
        graph.stop(grace=5.0)
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
    if dead is not None:
        tail = "\n".join(f"    {line}" for line in dead.tail)
        raise WarpdError(f"node {dead.name} died (exit code {dead.proc.returncode}):\n{tail}",
                         "run `warpd bringup sim` to see every node's output")
    print("--- what happened ---")
    summary = monitor.print_report()
    monitor.plot(args.plot, title=f"warpd sim demo, perturbation level {args.level}")
    print(f"plot: {args.plot}")
    if args.video is not None:
        info = monitor.write_video(args.video, sim_perturbations(config, args.level))
        print(f"video: {info.path} ({info.frames} frames, {info.seconds:.1f} s, rendered in {info.render_s:.1f} s)")
    return 0 if summary["episodes"] else 1


def _wait_until_controlled(executor, node, monitor, graph, timeout: float = 90.0):
    """Let the graph start (the planner loads torch and the checkpoint: seconds), then restart the
    episode once the controller runs a policy, so the report only covers controlled episodes.
    Returns a node that died meanwhile, if any."""
    from std_srvs.srv import Trigger

    from warpd_core.runtime.command_pipeline import Mode
    from warpd_ros.modes import status_mode

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
        if graph.first_dead() is not None:
            return graph.first_dead()
        status = monitor.record.status
        if status is not None and status_mode(status) == Mode.RUN:
            break
    else:
        raise WarpdError(f"the controller did not start running a policy within {timeout:g} s",
                         "run `warpd bringup sim` to see the nodes' output")
    client = node.create_client(Trigger, "/warpd_sim/reset")
    if client.wait_for_service(timeout_sec=10):
        future = client.call_async(Trigger.Request())
        while not future.done() and time.monotonic() < deadline + 10:
            executor.spin_once(timeout_sec=0.05)
    monitor.reset()
    print("warpd demo: controller running; episodes from here on are reported")
    return None
