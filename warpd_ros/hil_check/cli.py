"""`warpd hil-check`'s command line: arguments, the config, one measurement, the verdict and the exit status.

hil-check starts nodes only when told to (`--start-emulated`), and then only a graph that is emulated: one
whose config lists warpd_driver_emulator among its nodes. Without the flag it measures what already runs,
and when nothing answers it says what it waited for and exits 2, starting nothing: with the emulator
removed from the config (a real robot), the graph would be a real controller and planner on the robot's
command topic."""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
from pathlib import Path

from warpd_core.errors import WarpdError
from warpd_ros.hil_check.report import failed, judge, print_report, write_json
from warpd_ros.hil_check.thresholds import load_thresholds

HELP = "measure latency, loop timing, swaps and HOLD of a HIL graph against thresholds; pass/fail table"
EPILOG = """\
Without --start-emulated, hil-check measures whatever answers on the graph's topics (a real robot's
ros2_control drivers plus the warpd controller and planner, with the remappings of the config's
warpd_graph entry). When nothing answers within 3 s it starts nothing: it says which topics it waited
for and exits 2. It never starts a graph unless told to.

With --start-emulated it starts the emulated HIL graph itself, like `warpd bringup hil`, measures it and
stops it. It refuses (exit 2, nothing started) when the config's warpd_graph nodes do not include
warpd_driver_emulator: that graph would drive whatever listens on the command topic, i.e. a real robot.

examples:
  warpd hil-check                                      measure the graph that runs (nothing is started)
  warpd hil-check --start-emulated --duration 20       start the emulated graph here and measure it
  warpd hil-check --start-emulated --set warpd_driver_emulator.latency_s=0.05   does a slow link pass?
  warpd hil-check --config my_robot.yaml --json hil.json

exit status: 0 when every check passes, 1 when one fails, 2 for usage/config errors, when nothing
answers without --start-emulated, or when --start-emulated is refused."""
STOP_GRACE_S = 5.0  # a started graph's nodes get this long after SIGINT (then bringup escalates)


def _duration(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"duration must be 1..3600 s, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from warpd_ros.bringup import parse_override
    from warpd_ros.ros_env import parse_domain_id

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--duration", type=_duration, default=10.0, help="measurement window, s (default 10)")
    parser.add_argument("--config", type=Path, default=None,
                        help="ROS params file with the thresholds and the graph (default config/hil.yaml)")
    parser.add_argument("--start-emulated", action="store_true",
                        help="start the emulated HIL graph (driver emulator + controller + planner) here, measure "
                             "it, stop it; refused when the config's warpd_graph nodes lack warpd_driver_emulator. "
                             "Without it nothing is ever started")
    parser.add_argument("--set", dest="overrides", type=parse_override, action="append", default=[],
                        metavar="NODE.PARAM=VALUE",
                        help="parameter of a node of the graph started here, e.g. warpd_driver_emulator.latency_s=0.05")
    parser.add_argument("--fault-test", action=argparse.BooleanOptionalAction, default=True,
                        help="against the driver emulator: cut joint states for ~1 s and time the controller's HOLD "
                             "(default on; a real driver is never cut)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the raw numbers here")
    parser.add_argument("--domain-id", type=parse_domain_id, default=None, help="ROS_DOMAIN_ID (default: inherit)")
    parser.add_argument("--show-nodes", action="store_true",
                        help="relay every line the started nodes print (default: warnings and errors only)")


def _worth_showing(line: str) -> bool:
    return "[INFO]" not in line and "[DEBUG]" not in line


def _topic_names(config: Path) -> dict:
    """Topic key -> name for the checker, with the config's warpd_graph remappings applied."""
    from warpd_ros.graph import TOPICS, load_graph

    specs = load_graph("hil", config)
    remap = specs[0].remappings if specs else {}
    return {key: remap.get(default, default) for key, default in TOPICS.items()}


EMULATOR = "warpd_driver_emulator"


def _check_emulated(config: Path) -> None:
    """WarpdError unless the config's HIL graph includes the driver emulator: without it the graph started
    here would be a real controller and planner on the robot's command topic."""
    from warpd_ros.graph import GRAPH_KEY, load_graph

    names = [spec.name for spec in load_graph("hil", config)]
    if EMULATOR not in names:
        raise WarpdError(f"--start-emulated refused: the graph of {config} ({GRAPH_KEY} nodes: {', '.join(names)}) "
                         f"has no {EMULATOR}, so it would not be emulated: its controller would command "
                         "whatever drivers listen on the command topic. Nothing was started",
                         f"to check a real robot, start its graph yourself (`warpd bringup hil --config {config}`) "
                         "and run hil-check without --start-emulated; to check the emulated graph, use a config "
                         f"whose {GRAPH_KEY} nodes include {EMULATOR} (the default config/hil.yaml)")


def _nothing_answers(config: Path, topic_names: dict, domain_id) -> WarpdError:
    from warpd_ros.hil_check.recorder import PROBE_S

    domain = domain_id if domain_id is not None else os.environ.get("ROS_DOMAIN_ID", "0") or "0"
    return WarpdError(f"nothing publishes on {topic_names['joint_states']} or {topic_names['controller_status']} "
                      f"(waited {PROBE_S:g} s in ROS domain {domain}); nothing was started and nothing measured",
                      "start the graph to check first (a robot's drivers plus `warpd bringup hil --config "
                      f"{config}`), or let hil-check start the emulated graph: warpd hil-check --start-emulated")


def _emulated_graph(config: Path, args: argparse.Namespace):
    """The emulated HIL graph as `warpd bringup hil` would start it (not started yet), and the domain
    id this process must join to see it."""
    from warpd_ros.bringup import Bringup, graph_environment, plan
    from warpd_ros.graph import load_graph
    from warpd_ros.keygen import provide_graph_keys

    children = plan("hil", config, args.overrides)
    provide_graph_keys(load_graph("hil", config), args.overrides, lambda text: print(f"warpd hil-check: {text}"))
    env = graph_environment(args.domain_id)
    # this process's own participant talks to the graph over loopback too
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.pop("ROS_STATIC_PEERS", None)
    domain_id = int(env["ROS_DOMAIN_ID"]) if "ROS_DOMAIN_ID" in env else args.domain_id
    graph = Bringup(children, env, show=(lambda line: True) if args.show_nodes else _worth_showing)
    print(f"warpd hil-check: starting {', '.join(c.name for c in children)} from {config}"
          + (f" with {', '.join(f'{n}.{p}={v}' for n, p, v in args.overrides)}" if args.overrides else ""))
    return graph, domain_id


def run(args: argparse.Namespace) -> int:
    from warpd_ros.graph import default_config, read_params_file
    from warpd_ros.hil_check.measure import measure
    from warpd_ros.hil_check.recorder import Session, init_context, something_answers
    from warpd_ros.ros_env import require_ros

    config = Path(args.config) if args.config is not None else default_config("hil")
    thresholds = load_thresholds(config)
    topic_names = _topic_names(config)
    config_params = read_params_file(config)
    rclpy = require_ros()
    domain_id = args.domain_id

    graph = None
    if args.start_emulated:
        _check_emulated(config)  # before anything starts
        graph, domain_id = _emulated_graph(config, args)
    else:
        if not something_answers(rclpy, domain_id, topic_names):
            raise _nothing_answers(config, topic_names, domain_id)
        if args.overrides:
            raise WarpdError("--set only applies to a graph hil-check starts, and a graph is already running",
                             "set parameters of running nodes with `ros2 param set`, or stop the graph and "
                             "use --start-emulated")
        print(f"warpd hil-check: measuring the running graph ({topic_names['joint_states']}, "
              f"{topic_names['joint_commands']}) for {args.duration:g} s")

    context = init_context(rclpy, domain_id)
    session = None
    # SIGTERM stops the run like Ctrl-C: the graph started here is stopped and, mid fault test, the
    # emulator's drop_rate is restored (the default SIGTERM action would leave it cutting states)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        session = Session(rclpy, context, topic_names, graph)
        with graph.running(STOP_GRACE_S) if graph is not None else contextlib.nullcontext():
            measured = measure(session, args, config_params)
    finally:
        if session is not None:
            session.close()
        context.try_shutdown()
        signal.signal(signal.SIGTERM, previous)

    rows = judge(measured, thresholds)
    print_report(rows, measured)
    if args.json is not None:
        write_json(args.json, config, thresholds, measured, rows)
        print(f"raw numbers: {args.json}")
    return 1 if failed(rows) else 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt()
