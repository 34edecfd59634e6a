"""`warpd hil-check`: measure a running HIL graph against thresholds before a policy goes on a robot.

A real rclpy node (``warpd_hil_check``) in this process listens to the graph — joint states,
commands, ControllerStatus, PolicyWeights, task features — over a window of ``--duration``
seconds, and judges, side by side:

1. the joint-state rate and the largest gap between joint states;
2. state -> command latency: for each joint state, from when the driver sampled it (its header
   stamp) to the first command received after the state arrived here; with the state's age
   (stamp -> received) shown beside it, so a slow link and a slow controller are told apart;
3. loop timing: the controller's own period error (worst ControllerStatus window) and missed
   ticks over the window; as a cross-check, the intervals between commands as received here;
4. the share of status reports in which the controller drove the robot (RUN/SHADOW);
5. swap latency: for every PolicyWeights the planner published in the window, the time from its
   stamp to the first received command equal to what the new policy computes for the state the
   controller saw (its predecessor computing something else) — behaviour-neutral, it only
   watches the planner's own policies;
6. HOLD reaction (the driver emulator only): its ``drop_rate`` is set to 1 for ~1 s through the
   parameter service and the time from the last joint state to the first zero (HOLD) command is
   measured; the controller must then keep the robot still until states return.

Times come from the middleware (``received_timestamp`` of each sample, system clock) rather than
from when a Python callback ran, so this process's own scheduling hardly enters the numbers.
State and command streams are subscribed best effort and raw (no deserialisation while
measuring) so that watching does not load the graph.

Thresholds come from the ``warpd_hil_check`` entry of the config (config/hil.yaml), a ROS params
entry like the nodes' own. Exit status: 0 when every check passes (or is skipped), 1 when one
fails, 2 for usage or config errors, or when a node of a graph started here dies.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from warpd_core.errors import WarpdError
from warpd_ros.graph import HIL_CHECK_KEY

HELP = "measure latency, loop timing, swaps and HOLD of a HIL graph against thresholds; pass/fail table"
EPILOG = """\
Without --start-emulated, hil-check measures whatever answers on the graph's topics (a real robot's
ros2_control drivers plus the warpd controller and planner, with the remappings of the config's
warpd_graph entry); when nothing answers it starts the emulated HIL graph itself, like
`warpd bringup hil`, measures it and stops it.

examples:
  warpd hil-check                                      measure what runs, else the emulated graph
  warpd hil-check --start-emulated --duration 20
  warpd hil-check --start-emulated --set warpd_driver_emulator.latency_s=0.05   does a slow link pass?
  warpd hil-check --config my_robot.yaml --json hil.json

exit status: 0 when every check passes, 1 when one fails, 2 for usage/config errors."""

ENTRY = HIL_CHECK_KEY  # the config entry with the thresholds (also accepted as /warpd_hil_check)
NODE_NAME = "warpd_hil_check"
PROBE_S = 3.0  # how long to look for a running graph before starting the emulated one
READY_TIMEOUT_S = 60.0  # the planner loads torch and a checkpoint: seconds, more on a busy machine
WARM_UP_S = 1.0  # after the controller drives: multi-process start-ups may stall a subscriber once
MIN_SINCE_START_S = 2.0  # ... in the first 2 s after this process's node appeared
FAULT_S = 1.0  # how long the emulator sends no joint states in the fault test
RECOVER_S = 0.5  # after the fault: states must come back
SWAP_TOLERANCE = 1e-6  # |command - policy(state)| within this counts as "that policy's command"
SWAP_SEARCH_S = 0.5  # look this long after a policy's stamp for its first command
STATE_CANDIDATES = 4  # states received before a command that the controller may have used
LATE_MS = 50.0  # a sample received this long after it was sent was delivered late (see blind_intervals)
STREAM_DEPTH = 200  # history of the best-effort state/command subscriptions (0.2-0.4 s of samples)
SERVICE_TIMEOUT_S = 5.0
UNKNOWN_NODE = "_NODE_NAME_UNKNOWN_"  # rmw's name for a publisher whose node is not discovered yet
PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


# ------------------------------------------------------------------------------------------ thresholds
@dataclass(frozen=True)
class Threshold:
    key: str
    bound: str  # "min" or "max"
    unit: str
    description: str


THRESHOLDS = (
    Threshold("min_joint_state_rate_hz", "min", "Hz", "joint states received per second over the window"),
    Threshold("max_joint_state_gap_ms", "max", "ms", "largest interval between two received joint states"),
    Threshold("max_state_to_command_latency_ms", "max", "ms",
              "p99 of joint-state stamp -> first command received after the state"),
    Threshold("max_period_error_p99_us", "max", "µs", "controller's p99 loop period error, worst status window"),
    Threshold("max_missed_ticks_per_s", "max", "/s", "controller ticks longer than 2 periods, per second of window"),
    Threshold("max_command_gap_ms", "max", "ms", "largest interval between two received commands"),
    Threshold("min_run_share", "min", "", "share of status reports with the controller in RUN/SHADOW (0..1)"),
    Threshold("max_swap_latency_ms", "max", "ms", "p99 of policy stamp -> first command of that policy"),
    Threshold("max_hold_reaction_s", "max", "s", "last joint state -> first HOLD command (fault test)"),
)


def load_thresholds(path: str | Path) -> dict:
    """The thresholds of the config's warpd_hil_check entry, or WarpdError saying what is wrong."""
    from warpd_ros.graph import read_params_file

    params = read_params_file(path)
    names = [n for n in (ENTRY, "/" + ENTRY) if n in params]
    example = "\n".join(f"    {t.key}: ..." for t in THRESHOLDS)
    if not names:
        raise WarpdError(f"config file {path} has no {ENTRY} entry with the hil-check thresholds",
                         f"add (see config/hil.yaml):\n{ENTRY}:\n  ros__parameters:\n{example}")
    if len(names) > 1:
        raise WarpdError(f"config file {path} has both {ENTRY} and /{ENTRY} entries; keep one")
    entry = params[names[0]]
    known = {t.key for t in THRESHOLDS}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise WarpdError(f"config file {path}: {ENTRY} has unknown thresholds {unknown}",
                         f"known: {', '.join(t.key for t in THRESHOLDS)}")
    missing = [t.key for t in THRESHOLDS if t.key not in entry]
    if missing:
        raise WarpdError(f"config file {path}: {ENTRY} lacks thresholds {missing}",
                         "every check needs its threshold; see config/hil.yaml")
    values = {}
    for t in THRESHOLDS:
        value = entry[t.key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise WarpdError(f"config file {path}: {ENTRY}.{t.key} ({t.description}) must be a number >= 0, "
                             f"got {value!r}")
        if t.key == "min_run_share" and value > 1:
            raise WarpdError(f"config file {path}: {ENTRY}.min_run_share is a share, 0..1; got {value!r}")
        values[t.key] = float(value)
    return values


# ------------------------------------------------------------------------------------------ statistics
def percentiles(values, qs=(50, 99)) -> dict:
    """{"n", "p50", "p99", "max"} (NaN when empty)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {"n": 0, **{f"p{q}": math.nan for q in qs}, "max": math.nan}
    return {"n": int(values.size), **{f"p{q}": float(v) for q, v in zip(qs, np.percentile(values, qs))},
            "max": float(values.max())}


def spans_mask(t: np.ndarray, spans) -> np.ndarray:
    """Which times fall inside any of the (start, end) spans."""
    mask = np.zeros(np.shape(t), dtype=bool)
    for a, b in spans:
        mask |= (t >= a) & (t <= b)
    return mask


def spans_overlap(starts: np.ndarray, ends: np.ndarray, spans) -> np.ndarray:
    """Which intervals [start, end] overlap any of the spans."""
    mask = np.zeros(np.shape(starts), dtype=bool)
    for a, b in spans:
        mask |= (starts <= b) & (ends >= a)
    return mask


def _merge(spans) -> list:
    merged = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def blind_intervals(streams, late_ns: float = LATE_MS * 1e6) -> list:
    """Spans in which hil-check itself received nothing in time: every stream was delivered late at once.

    `streams` are (sent ns, received ns) arrays, one pair per stream, from different publishers (the
    driver's joint states, the controller's commands). A sample received more than `late_ns` after
    it was sent spans [sent, received]; where the late spans of all streams overlap, the publishers
    kept sending but this process did not take the samples — a stall of the checker (or of the
    whole machine, which the controller's own timing shows). Those spans are left out of the
    stream statistics instead of being blamed on the driver or the controller.
    """
    common = None
    for sent, received in streams:
        late = (received - sent) > late_ns
        spans = _merge(zip(sent[late].tolist(), received[late].tolist()))
        if common is None:
            common = spans
        else:
            common = _merge([(max(a, c), min(b, d)) for a, b in common for c, d in spans if max(a, c) <= min(b, d)])
        if not common:
            return []
    return common or []


def stream_stats(recv_ns: np.ndarray, t0: int, t1: int, blind=()) -> dict:
    """Rate (Hz) and the largest gap (ms) of a stream of receive times within [t0, t1], blind spans left out."""
    seen = ~spans_mask(recv_ns, blind)
    inside = recv_ns[(recv_ns >= t0) & (recv_ns <= t1) & seen]
    # gaps at the window's edges count too: from the last sample before it, and up to its end (not to
    # the first sample after it: the fault test cuts the states right after the window)
    edges = np.concatenate([recv_ns[(recv_ns < t0) & seen][-1:], inside, [t1]]).astype(np.int64)
    gaps = np.diff(edges)
    gaps[spans_overlap(edges[:-1], edges[1:], blind)] = 0
    blind_s = sum(max(0, min(b, t1) - max(a, t0)) for a, b in blind) * 1e-9
    worst = int(np.argmax(gaps)) if gaps.size else 0
    return {"count": int(inside.size), "rate_hz": inside.size / max((t1 - t0) * 1e-9 - blind_s, 1e-9),
            "max_gap_ms": float(gaps[worst]) * 1e-6 if gaps.size else 0.0,
            "max_gap_at_s": float((edges[worst] - t0) * 1e-9) if gaps.size else 0.0}


def state_to_command(state_recv: np.ndarray, state_stamp: np.ndarray, cmd_recv: np.ndarray) -> dict:
    """For each state, the first command received after it: latency from the state's stamp and its age.

    Returns arrays in ms: `latency` (stamp -> that command), `age` (stamp -> state received) and
    `reaction` (state received -> that command), and `command_recv` (ns); states after the last
    command are left out.
    """
    idx = np.searchsorted(cmd_recv, state_recv, side="right")
    ok = idx < cmd_recv.size
    nxt = cmd_recv[idx[ok]]
    return {"latency": (nxt - state_stamp[ok]) * 1e-6, "age": (state_recv[ok] - state_stamp[ok]) * 1e-6,
            "reaction": (nxt - state_recv[ok]) * 1e-6, "command_recv": nxt}


def usable_stamps(state_recv: np.ndarray, state_stamp: np.ndarray) -> bool:
    """Joint-state stamps on this machine's clock: not zero, not in the future, not seconds old."""
    if state_stamp.size == 0:
        return False
    age = (state_recv - state_stamp) * 1e-9
    return bool(np.all(state_stamp > 0) and np.percentile(age, 1) > -0.002 and np.median(age) < 5.0)


# ------------------------------------------------------------------------------------------ the listener
@dataclass
class Recording:
    states: list = field(default_factory=list)  # (received ns, sent ns, publication seq, raw JointState bytes)
    commands: list = field(default_factory=list)  # (received ns, sent ns, publication seq, raw Float64MultiArray)
    statuses: list = field(default_factory=list)  # (received ns, ControllerStatus)
    policies: list = field(default_factory=list)  # (received ns, PolicyWeights)
    features: list = field(default_factory=list)  # (received ns, np.ndarray)


class Listener:
    """The hil-check subscriptions; nothing is analysed while measuring, samples are only kept.

    The two fast streams (joint states ~500 Hz, commands ~1 kHz) live on a node of their own that
    no executor spins: `drain()` takes everything waiting in their (deep, best-effort) histories
    every few milliseconds, with the middleware's receive time of each sample, still serialised.
    Through executor callbacks the same 1500 samples/s cost this process ~0.33 of a core (rclpy's
    SingleThreadedExecutor, the only one that passes the receive time); drained, ~0.07 — on a
    small machine the checker must not steal the controller's CPU. The slow topics (status,
    policies, task features) use ordinary callbacks on the main node.
    """

    def __init__(self, node, streams_node, topic_names: dict):
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray

        from warpd_ros import qos
        from warpd_ros.msg import ControllerStatus, PolicyWeights

        self.rec = Recording()
        # best effort matches reliable and best-effort publishers alike, and never slows a publisher down
        stream = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=STREAM_DEPTH,
                            reliability=ReliabilityPolicy.BEST_EFFORT)
        rec = self.rec
        self._streams = [
            (streams_node.create_subscription(JointState, topic_names["joint_states"], _unused, stream, raw=True),
             rec.states),
            (streams_node.create_subscription(Float64MultiArray, topic_names["joint_commands"], _unused, stream,
                                              raw=True), rec.commands),
        ]
        node.create_subscription(ControllerStatus, topic_names["controller_status"],
                                 lambda msg, info: rec.statuses.append((info["received_timestamp"], msg)),
                                 qos.STATUS_QOS)
        node.create_subscription(PolicyWeights, topic_names["policy_weights"],
                                 lambda msg, info: rec.policies.append((info["received_timestamp"], msg)),
                                 qos.policy_swap_qos(depth=10))
        node.create_subscription(Float64MultiArray, topic_names["task_features"],
                                 lambda msg, info: rec.features.append(
                                     (info["received_timestamp"], np.asarray(msg.data, dtype=np.float64))),
                                 qos.TASK_FEATURES_QOS)

    def drain(self) -> None:
        """Take every sample waiting on the fast streams (what an executor would do, one by one)."""
        for sub, samples in self._streams:
            with sub.handle:
                while True:
                    taken = sub.handle.take_message(sub.msg_type, sub.raw)
                    if taken is None:
                        break
                    raw, info = taken
                    samples.append((info["received_timestamp"], info["source_timestamp"],
                                    info.get("publication_sequence_number"), raw))


def _unused(_msg) -> None:  # the fast streams are drained, never dispatched by an executor
    pass


# ------------------------------------------------------------------------------------------ the session
class Session:
    """The hil-check node, its executor, and (optionally) the graph it started."""

    def __init__(self, rclpy, context, topic_names: dict, graph=None):
        self.rclpy = rclpy
        self.context = context
        self.graph = graph
        self.topic_names = topic_names
        self.node = rclpy.create_node(NODE_NAME, context=context)
        self.streams_node = rclpy.create_node(NODE_NAME + "_streams", context=context, start_parameter_services=False)
        self.started_ns = time.time_ns()
        self.listener = Listener(self.node, self.streams_node, topic_names)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._clients: dict = {}

    @property
    def rec(self) -> Recording:
        return self.listener.rec

    def close(self) -> None:
        self.executor.shutdown()
        self.streams_node.destroy_node()
        self.node.destroy_node()

    def spin_for(self, seconds: float, until=None) -> bool:
        """Spin for `seconds` or until `until()` is true (returns whether it became true)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.005)
            self.listener.drain()
            self.check_graph()
            if until is not None and until():
                return True
        return False

    def check_graph(self) -> None:
        dead = self.graph.first_dead() if self.graph is not None else None
        if dead is not None:
            tail = "\n".join(f"    {line}" for line in dead.tail) or "    (no output)"
            raise WarpdError(f"node {dead.name} died (exit code {dead.proc.returncode}); its last lines:\n{tail}",
                             "a bad --set value? `warpd bringup hil` with the same --set shows every node's output")

    def resolve(self, key: str) -> str:
        return self.node.resolve_topic_name(self.topic_names[key])

    def publisher_nodes(self, key: str, timeout: float = SERVICE_TIMEOUT_S) -> list[str]:
        """Nodes publishing on `key`. A publisher's DDS endpoint can be known before the ROS node that
        owns it (rmw reports _NODE_NAME_UNKNOWN_ until that node's discovery info arrives): wait for
        the names, up to `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            infos = self.node.get_publishers_info_by_topic(self.resolve(key))
            unknown = any(UNKNOWN_NODE in info.node_name for info in infos)
            if not unknown or time.monotonic() >= deadline:
                break
            self.executor.spin_once(timeout_sec=0.05)
            self.listener.drain()
        names = [f"{info.node_namespace.rstrip('/')}/{info.node_name}" for info in infos
                 if UNKNOWN_NODE not in info.node_name]
        return [n for n in dict.fromkeys(names) if n != self.node.get_fully_qualified_name()]

    def wait_future(self, future, timeout: float = SERVICE_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.005)
            self.listener.drain()
        return future.result() if future.done() else None

    def _client(self, node_name: str):
        """One parameter client per remote node (each makes seven service clients; rclpy cannot destroy them)."""
        from rclpy.parameter_client import AsyncParameterClient

        if node_name not in self._clients:
            self._clients[node_name] = AsyncParameterClient(self.node, node_name)
        client = self._clients[node_name]
        return client if client.wait_for_services(timeout_sec=SERVICE_TIMEOUT_S) else None

    def get_parameters(self, node_name: str, names: list[str]) -> dict:
        """{name: value} of another node's parameters (None where not declared); {} when it does not answer."""
        from rclpy.parameter import parameter_value_to_python

        client = self._client(node_name)
        response = self.wait_future(client.get_parameters(names)) if client is not None else None
        if response is None:
            return {}
        return {n: (parameter_value_to_python(v) if v.type else None) for n, v in zip(names, response.values)}

    def set_parameter(self, node_name: str, name: str, value) -> str | None:
        """Set one parameter of another node; None on success, else why not."""
        from rclpy.parameter import Parameter

        client = self._client(node_name)
        if client is None:
            return f"{node_name}'s parameter services do not answer"
        response = self.wait_future(client.set_parameters([Parameter(name, value=value)]))
        if response is None:
            return f"{node_name} did not answer set_parameters within {SERVICE_TIMEOUT_S:g} s"
        result = response.results[0]
        return None if result.successful else f"{node_name} refused {name}={value}: {result.reason}"


# ------------------------------------------------------------------------------------------ the run
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
                        help="start the HIL graph (driver emulator + controller + planner) here, measure it, stop it "
                             "(the default when nothing answers on the graph's topics)")
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


def _init_context(rclpy, domain_id):
    from rclpy.signals import SignalHandlerOptions

    context = rclpy.context.Context()
    # Python's own SIGINT handling (KeyboardInterrupt between spin_once calls) stops the run cleanly
    rclpy.init(context=context, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
    return context


def _something_answers(rclpy, domain_id, topic_names: dict) -> bool:
    """Does anything publish joint states or controller status? (A throw-away node looks for PROBE_S.)"""
    context = _init_context(rclpy, domain_id)
    node = rclpy.create_node(NODE_NAME + "_probe", context=context)
    try:
        deadline = time.monotonic() + PROBE_S
        topics_ = [node.resolve_topic_name(topic_names[k]) for k in ("joint_states", "controller_status")]
        while time.monotonic() < deadline:
            if any(node.count_publishers(t) for t in topics_):
                return True
            time.sleep(0.1)
        return False
    finally:
        node.destroy_node()
        context.try_shutdown()


def run(args: argparse.Namespace) -> int:
    from warpd_ros.bringup import Bringup, plan
    from warpd_ros.graph import default_config, load_graph, read_params_file
    from warpd_ros.keygen import provide_graph_keys
    from warpd_ros.ros_env import loopback_environment, require_ros

    config = Path(args.config) if args.config is not None else default_config("hil")
    thresholds = load_thresholds(config)
    topic_names = _topic_names(config)
    config_params = read_params_file(config)
    rclpy = require_ros()
    domain_id = args.domain_id

    start = args.start_emulated
    if not start:
        if _something_answers(rclpy, domain_id, topic_names):
            if args.overrides:
                raise WarpdError("--set only applies to a graph hil-check starts, and a graph is already running",
                                 "set parameters of running nodes with `ros2 param set`, or stop the graph and "
                                 "use --start-emulated")
            print(f"warpd hil-check: measuring the running graph ({topic_names['joint_states']}, "
                  f"{topic_names['joint_commands']}) for {args.duration:g} s")
        else:
            print(f"warpd hil-check: nothing publishes on {topic_names['joint_states']} or "
                  f"{topic_names['controller_status']}: starting the emulated HIL graph")
            start = True

    graph = None
    if start:
        children = plan("hil", config, args.overrides)
        provide_graph_keys(load_graph("hil", config), args.overrides, lambda text: print(f"warpd hil-check: {text}"))
        env = loopback_environment(args.domain_id)
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("RCUTILS_LOGGING_BUFFERED_STREAM", "1")
        # this process's own participant talks to the graph over loopback too
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        os.environ.pop("ROS_STATIC_PEERS", None)
        if "ROS_DOMAIN_ID" in env:
            domain_id = int(env["ROS_DOMAIN_ID"])
        graph = Bringup(children, env, show=(lambda line: True) if args.show_nodes else _worth_showing)
        print(f"warpd hil-check: starting {', '.join(c.name for c in children)} from {config}"
              + (f" with {', '.join(f'{n}.{p}={v}' for n, p, v in args.overrides)}" if args.overrides else ""))

    context = _init_context(rclpy, domain_id)
    session = None
    # SIGTERM stops the run like Ctrl-C: the graph started here is stopped and, mid fault test, the
    # emulator's drop_rate is restored (the default SIGTERM action would leave it cutting states)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        session = Session(rclpy, context, topic_names, graph)
        if graph is not None:
            graph.start()
        measured = _measure(session, args, config_params)
    finally:
        if graph is not None and any(c.proc is not None for c in graph.children):
            graph.children = [c for c in graph.children if c.proc is not None]
            graph.stop(grace=5.0)
        if session is not None:
            session.close()
        context.try_shutdown()
        signal.signal(signal.SIGTERM, previous)

    rows = judge(measured, thresholds)
    print_report(rows, measured)
    if args.json is not None:
        args.json.write_text(json.dumps({"config": str(config), "thresholds": thresholds, "measured": measured,
                                         "checks": rows}, indent=2, default=_json_default))
        print(f"raw numbers: {args.json}")
    return 1 if any(r["result"] == FAIL for r in rows) else 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt()


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _measure(session: Session, args: argparse.Namespace, config_params: dict) -> dict:
    """Wait for the graph to drive, measure the window, run the fault test; the analysed numbers."""
    from warpd_ros.msg import ControllerStatus

    rec = session.rec
    driving = (ControllerStatus.MODE_RUN, ControllerStatus.MODE_SHADOW)
    print(f"warpd hil-check: waiting for joint states, commands and a driving controller (up to {READY_TIMEOUT_S:g} s)")
    ready = session.spin_for(READY_TIMEOUT_S, until=lambda: bool(
        rec.states and rec.commands and rec.statuses and rec.statuses[-1][1].mode in driving))
    notes = []
    if not ready:
        missing = [what for what, got in (("joint states", rec.states), ("commands", rec.commands),
                                          ("controller status", rec.statuses)) if not got]
        notes.append(f"not ready after {READY_TIMEOUT_S:g} s (" + (f"no {', '.join(missing)}" if missing else
                                                                  "the controller never drove") + "); measured anyway")
        print(f"warpd hil-check: {notes[-1]}")
    # asking the nodes for parameters creates service clients: discovery traffic, done before the warm-up
    controller = _controller_settings(session, config_params)
    emulator = _find_emulator(session)
    warm = max(WARM_UP_S, MIN_SINCE_START_S - (time.time_ns() - session.started_ns) * 1e-9)
    session.spin_for(warm)

    print(f"warpd hil-check: measuring for {args.duration:g} s")
    t0, cpu0 = time.time_ns(), time.process_time()
    session.spin_for(args.duration)
    t1, cpu1 = time.time_ns(), time.process_time()

    fault = {"tested": False, "why": ""}
    if not args.fault_test:
        fault["why"] = "not tested (--no-fault-test)"
    elif emulator is None:
        fault["why"] = "not tested (needs the emulator)"
    else:
        fault = _fault_test(session, emulator)
    measured = analyse(rec, t0, t1, controller, fault)
    measured["notes"] = notes + measured.get("notes", [])
    measured["emulator"] = emulator
    measured["hil_check_cpu_share"] = (cpu1 - cpu0) / ((t1 - t0) * 1e-9)  # of one core: what watching costs
    return measured


def _controller_settings(session: Session, config_params: dict) -> dict:
    """The controller's joints, limits and modes: asked from the node that publishes commands, else the config."""
    from warpd_ros.nodes.controller import PARAMS

    names = ["joint_names", "action_limit", "stale_timeout_s", "swap_mode", "hold_mode", "control_rate_hz"]
    settings = {p.name: p.default for p in PARAMS if p.name in names}
    settings["source"] = "defaults"
    configured = config_params.get("warpd_controller", {})
    if configured:
        settings.update({k: configured[k] for k in names if k in configured}, source="config")
    for node_name in session.publisher_nodes("controller_status") or session.publisher_nodes("joint_commands"):
        values = session.get_parameters(node_name, names)
        if values.get("joint_names") and values.get("action_limit") is not None:
            settings.update({k: v for k, v in values.items() if v is not None}, source=node_name)
            break
    return settings


def _find_emulator(session: Session) -> str | None:
    """The node publishing joint states, if it is warpd_driver_emulator (it has a drop_rate parameter)."""
    for node_name in session.publisher_nodes("joint_states"):
        values = session.get_parameters(node_name, ["drop_rate", "latency_s"])
        if isinstance(values.get("drop_rate"), float) and isinstance(values.get("latency_s"), float):
            return node_name
    return None


def _fault_test(session: Session, emulator: str) -> dict:
    """Cut the emulator's joint states (drop_rate 1) for FAULT_S, then restore them."""
    original = session.get_parameters(emulator, ["drop_rate"]).get("drop_rate")
    if original is None:
        return {"tested": False, "why": f"not tested ({emulator} did not report its drop_rate)"}
    print(f"warpd hil-check: fault test: no joint states from {emulator} for {FAULT_S:g} s")
    cut = time.time_ns()
    error = session.set_parameter(emulator, "drop_rate", 1.0)
    if error:
        return {"tested": False, "why": f"not tested ({error})"}
    cut_done = time.time_ns()
    restore = None
    try:
        session.spin_for(FAULT_S)
    finally:
        restore = time.time_ns()
        error = session.set_parameter(emulator, "drop_rate", float(original))
    if error:
        raise WarpdError(f"could not restore {emulator}'s drop_rate to {original}: {error}")
    restored = time.time_ns()
    session.spin_for(RECOVER_S)
    return {"tested": True, "why": "", "cut_ns": cut, "cut_done_ns": cut_done, "restore_ns": restore,
            "restored_ns": restored, "end_ns": time.time_ns()}


# ------------------------------------------------------------------------------------------ analysis
def _decode(samples: list, msg_type) -> tuple[np.ndarray, np.ndarray, list]:
    """(received ns, sent ns, messages) of drained samples."""
    from rclpy.serialization import deserialize_message

    recv = np.array([s[0] for s in samples], dtype=np.int64)
    sent = np.array([s[1] for s in samples], dtype=np.int64)
    return recv, sent, [deserialize_message(s[3], msg_type) for s in samples]


def _lost(samples: list) -> int:
    """Samples published but not received here (gaps in publication sequence numbers)."""
    seqs = np.array([s[2] for s in samples if s[2] is not None], dtype=np.int64)
    if seqs.size < 2:
        return 0
    steps = np.diff(seqs)
    return int(steps[(steps > 1) & (steps < 10_000)].sum() - np.count_nonzero((steps > 1) & (steps < 10_000)))


def analyse(rec: Recording, t0: int, t1: int, controller: dict, fault: dict) -> dict:
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    from warpd_ros.conversions import stamp_to_ns

    window_s = (t1 - t0) * 1e-9
    out: dict = {"window_s": window_s, "controller": controller, "notes": []}
    state_recv, state_sent, states = _decode(rec.states, JointState)
    cmd_recv, cmd_sent, commands = _decode(rec.commands, Float64MultiArray)
    state_stamp = np.array([stamp_to_ns(m.header.stamp) for m in states], dtype=np.int64)
    blind = blind_intervals([(state_sent, state_recv), (cmd_sent, cmd_recv)])
    out["blind_spans"] = [((a - t0) * 1e-9, (b - a) * 1e-6) for a, b in blind]  # (start s after t0, length ms)
    blind_in_window = [(a, b) for a, b in blind if b >= t0 and a <= t1]
    if blind_in_window:
        total = sum(min(b, t1) - max(a, t0) for a, b in blind_in_window) * 1e-6
        worst = max(blind_in_window, key=lambda span: span[1] - span[0])
        out["notes"].append(f"hil-check itself was not scheduled for {total:.0f} ms in all (longest "
                            f"{(worst[1] - worst[0]) * 1e-6:.0f} ms at +{(worst[0] - t0) * 1e-9:.1f} s): states and "
                            "commands, sent on time, arrived late at once; that time is left out of the stream checks")
    in_window = (state_recv >= t0) & (state_recv <= t1) & ~spans_mask(state_recv, blind)

    out["joint_states"] = stream_stats(state_recv, t0, t1, blind)
    out["joint_states"]["lost_here"] = _lost([s for s in rec.states if t0 <= s[0] <= t1])
    out["commands"] = stream_stats(cmd_recv, t0, t1, blind)
    out["commands"]["lost_here"] = _lost([s for s in rec.commands if t0 <= s[0] <= t1])
    for key in ("joint_states", "commands"):
        if out[key]["lost_here"]:
            out["notes"].append(f"{out[key]['lost_here']} {key.replace('_', ' ')} were published but not received "
                                f"by hil-check (it was too slow): rates and gaps may look worse than they are")

    # 2. state -> command latency
    stamps_ok = usable_stamps(state_recv[in_window], state_stamp[in_window])
    if not stamps_ok and in_window.any():
        out["notes"].append("joint-state stamps are not on this machine's clock (unset, or clocks not synchronised): "
                            "latency is measured from when each state was received here")
    stamp = state_stamp if stamps_ok else state_recv
    lat = state_to_command(state_recv[in_window], stamp[in_window], cmd_recv)
    seen = ~spans_mask(lat["command_recv"], blind)
    out["state_to_command_ms"] = percentiles(lat["latency"][seen])
    out["state_age_ms"] = percentiles(lat["age"][seen])
    out["state_reaction_ms"] = percentiles(lat["reaction"][seen])
    out["stamps_usable"] = stamps_ok

    # 3. loop timing: the controller's own windows, and command intervals here
    window_statuses = [m for t, m in rec.statuses if t0 <= t <= t1]
    before = [m for t, m in rec.statuses if t < t0]
    out["status_reports"] = len(window_statuses)
    if window_statuses:
        p99s = np.array([m.period_error_p99 for m in window_statuses]) * 1e6
        base = before[-1] if before else window_statuses[0]
        out["period_error_p99_us"] = {"worst_window": float(p99s.max()), "median_window": float(np.median(p99s)),
                                      "max_us": float(max(m.period_error_max for m in window_statuses) * 1e6),
                                      "windows": p99s.tolist()}
        out["missed_ticks"] = int(window_statuses[-1].missed_ticks - base.missed_ticks)
        out["missed_ticks_per_s"] = out["missed_ticks"] / window_s
        out["loop_rate_hz_min"] = float(min(m.loop_rate_hz for m in window_statuses))
        out["target_rate_hz"] = float(window_statuses[-1].target_rate_hz)
        driving = sum(m.mode in (1, 2) for m in window_statuses)  # ControllerStatus.MODE_RUN / MODE_SHADOW
        out["run_share"] = driving / len(window_statuses)
        out["hold_reasons"] = sorted({m.mode_reason for m in window_statuses if m.mode == 0})
    nominal_ns = 1e9 / out.get("target_rate_hz", controller.get("control_rate_hz", 1000.0))
    received = cmd_recv[(cmd_recv >= t0) & (cmd_recv <= t1)]
    intervals = np.diff(received)[~spans_overlap(received[:-1], received[1:], blind)]
    out["command_interval_error_us"] = percentiles(np.abs(intervals - nominal_ns) * 1e-3)

    # 4. swaps
    out["swaps"] = swap_latencies(rec, states, state_recv, commands, cmd_recv, t0, t1, controller, blind)

    # 5. HOLD
    out["hold"] = hold_reaction(fault, state_recv, commands, cmd_recv, blind) if fault.get("tested") else \
        {"tested": False, "why": fault.get("why", "not tested")}
    return out


def _features_at(features: list, t: int):
    value = None
    for recv, values in features:
        if recv <= t:
            value = values
        else:
            break
    if value is None and features:
        value = features[0][1]  # latched: the graph's features were there before this process subscribed
    return value


def swap_latencies(rec: Recording, states: list, state_recv: np.ndarray, commands: list, cmd_recv: np.ndarray,
                   t0: int, t1: int, controller: dict, blind=()) -> dict:
    """Stamp -> first command of the new policy, for every policy stamped within [t0, t1].

    A command counts as the new policy's when it equals (within SWAP_TOLERANCE, after the
    controller's clipping) what the new policy computes for one of the last STATE_CANDIDATES
    states received before the command (or the one after: the controller may have seen it first),
    while the previous policy computes something else for every one of them.
    """
    from warpd_core.runtime.mlp_runtime import MLPPolicy
    from warpd_ros.conversions import JointIndex, JointStateError, msg_to_policy, stamp_to_ns

    result = {"policies_seen": 0, "measured": 0, "ambiguous": 0, "not_found": 0, "blind": 0, "latencies_ms": [],
              "receive_to_switch_ms": []}
    if controller.get("swap_mode") == "shadow":
        result["why"] = "the controller is in swap_mode shadow (new policies do not drive until promoted)"
        return result
    policies = sorted(rec.policies, key=lambda p: p[0])
    joints = JointIndex(controller["joint_names"])
    limit = float(controller["action_limit"])
    obs_cache: dict[int, np.ndarray | None] = {}

    def obs_of(i: int):
        if i not in obs_cache:
            features = _features_at(rec.features, int(state_recv[i]))
            try:
                q, qd = joints.read(states[i])
            except JointStateError:
                q = None
            obs_cache[i] = None if q is None or features is None else np.concatenate((q, qd, features))
        return obs_cache[i]

    def actions(executor, candidates):
        outs = []
        for i in candidates:
            obs = obs_of(i)
            if obs is None:
                continue
            try:
                action = executor.select_action(obs)
            except ValueError:
                continue
            outs.append(np.minimum(np.maximum(action, -limit), limit))
        return outs

    previous = None
    for k, (recv, msg) in enumerate(policies):
        try:
            executor = MLPPolicy(msg_to_policy(msg))
        except Exception:  # the controller refuses it too; not a swap
            continue
        stamp = stamp_to_ns(msg.header.stamp)
        old, previous = previous, executor
        if not (t0 <= stamp <= t1) or old is None:
            continue
        result["policies_seen"] += 1
        next_stamp = stamp_to_ns(policies[k + 1][1].header.stamp) if k + 1 < len(policies) else None
        end = stamp + int(SWAP_SEARCH_S * 1e9)
        if next_stamp is not None:
            end = min(end, next_stamp)
        first = int(np.searchsorted(cmd_recv, stamp, side="left"))
        found, ambiguous = None, False
        for j in range(first, cmd_recv.size):
            if cmd_recv[j] > end:
                break
            command = np.asarray(commands[j].data, dtype=np.float64)
            s = int(np.searchsorted(state_recv, cmd_recv[j], side="right"))
            candidates = range(max(0, s - STATE_CANDIDATES), min(state_recv.size, s + 1))
            new_actions, old_actions = actions(executor, candidates), actions(old, candidates)
            if not new_actions or any(a.shape != command.shape for a in new_actions):
                continue
            matches_new = any(np.max(np.abs(a - command)) <= SWAP_TOLERANCE for a in new_actions)
            matches_old = any(np.max(np.abs(a - command)) <= SWAP_TOLERANCE for a in old_actions)
            if matches_new and matches_old:
                ambiguous = True
                continue
            if matches_new:
                found = int(cmd_recv[j])
                break
        if found is None:
            result["ambiguous" if ambiguous else "not_found"] += 1
            continue
        if spans_overlap(np.array([stamp]), np.array([found]), blind)[0]:
            result["blind"] += 1  # hil-check stalled meanwhile: the latency would be its own
            continue
        result["measured"] += 1
        result["latencies_ms"].append((found - stamp) * 1e-6)
        result["receive_to_switch_ms"].append((found - recv) * 1e-6)
    result["stats_ms"] = percentiles(result["latencies_ms"])
    return result


def hold_reaction(fault: dict, state_recv: np.ndarray, commands: list, cmd_recv: np.ndarray, blind=()) -> dict:
    """Last joint state before the cut -> first all-zero command; and no motion until states return."""
    out = {"tested": True}
    before = state_recv[state_recv <= fault["restore_ns"]]
    if before.size == 0:
        return {**out, "why": "no joint states before the cut"}
    last_state = int(before.max())
    if last_state < fault["cut_ns"] - int(0.05e9):
        return {**out, "why": "joint states had already stopped before the cut"}
    out["last_state_after_cut_ms"] = (last_state - fault["cut_ns"]) * 1e-6
    lead = [np.asarray(c.data) for t, c in zip(cmd_recv, commands) if last_state - int(0.1e9) <= t <= last_state]
    out["driving_before_cut"] = bool(lead) and any(np.any(c != 0) for c in lead)
    if not out["driving_before_cut"]:
        return {**out, "why": "the controller was not driving before the cut (its commands were already zero)"}
    # Commands received before the restore request were computed without new states: no state can be
    # published while drop_rate is 1 (a state still in a delay line is covered by `last_state`).
    end = fault["restore_ns"]
    out["outage_s"] = (end - last_state) * 1e-9
    hold = None
    moving_after_hold = 0
    for t, c in zip(cmd_recv, commands):
        if t <= last_state or t >= end:
            continue
        zero = not np.any(np.asarray(c.data) != 0)
        if hold is None and zero:
            hold = int(t)
        elif hold is not None and not zero:
            moving_after_hold += 1
    resumed = state_recv[state_recv > end]
    out["states_resumed"] = bool(resumed.size)
    if hold is None:
        return {**out, "why": f"no HOLD (zero) command during the {out['outage_s']:.2f} s without joint states"}
    out["reaction_s"] = (hold - last_state) * 1e-9
    out["moving_after_hold"] = moving_after_hold
    if spans_overlap(np.array([last_state]), np.array([hold]), blind)[0]:
        return {**out, "tested": False, "why": "not measured: hil-check itself stalled during the fault test; rerun"}
    return out


# ------------------------------------------------------------------------------------------ verdict
def _fmt(value: float, digits: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def judge(m: dict, th: dict) -> list[dict]:
    """One row per check: {"check", "measured", "threshold", "result", "why"}."""
    rows = []
    spec = {t.key: t for t in THRESHOLDS}

    def row(check, key, measured, value, why_fail, skip=None):
        t, limit = spec[key], th[key]
        unit = "" if not t.unit else (t.unit if t.unit.startswith("/") else " " + t.unit)
        threshold = f"{'>=' if t.bound == 'min' else '<='} {limit:g}{unit}"
        if skip:
            rows.append({"check": check, "measured": measured, "threshold": threshold, "result": SKIP, "why": skip})
            return
        ok = value is not None and not math.isnan(value) and (value >= limit if t.bound == "min" else value <= limit)
        rows.append({"check": check, "measured": measured, "threshold": threshold, "result": PASS if ok else FAIL,
                     "why": "" if ok else why_fail})

    js = m["joint_states"]
    row("joint-state rate", "min_joint_state_rate_hz", f"{js['rate_hz']:.1f} Hz ({js['count']} states)", js["rate_hz"],
        f"the driver delivers {js['rate_hz']:.1f} joint states/s, fewer than {th['min_joint_state_rate_hz']:g} "
        "(dropped messages, or a slow driver)" if js["count"] else "no joint states received")
    row("joint-state max gap", "max_joint_state_gap_ms", f"{js['max_gap_ms']:.1f} ms", js["max_gap_ms"],
        f"no joint state arrived for {js['max_gap_ms']:.1f} ms (at +{js['max_gap_at_s']:.1f} s)")

    lat, age = m["state_to_command_ms"], m["state_age_ms"]
    origin = "stamp (when the driver sampled it)" if m["stamps_usable"] else "arrival"
    row("state -> command latency p99", "max_state_to_command_latency_ms",
        f"{_fmt(lat['p99'])} ms (p50 {_fmt(lat['p50'])}, max {_fmt(lat['max'])}; state age p99 {_fmt(age['p99'])} ms)",
        lat["p99"],
        (f"from a joint state's {origin} to the first command after it arrived takes {_fmt(lat['p99'])} ms at p99; "
         f"of that, the state is already {_fmt(age['p99'])} ms old when it arrives (driver/link latency)")
        if lat["n"] else "no joint state was followed by a command")

    no_status = "no ControllerStatus received (is warpd_controller running, with the same topic remappings?)"
    if m.get("status_reports"):
        pe = m["period_error_p99_us"]
        row("loop period error p99 (controller)", "max_period_error_p99_us",
            f"{pe['worst_window']:.0f} µs worst window (median {pe['median_window']:.0f}, max {pe['max_us']:.0f})",
            pe["worst_window"],
            f"the control loop jitters: p99 period error {pe['worst_window']:.0f} µs in its worst 100 ms window")
        row("missed ticks (controller)", "max_missed_ticks_per_s",
            f"{m['missed_ticks_per_s']:.1f}/s ({m['missed_ticks']} in {m['window_s']:.1f} s)", m["missed_ticks_per_s"],
            f"{m['missed_ticks']} control ticks came more than two periods late")
    else:
        row("loop period error p99 (controller)", "max_period_error_p99_us", "no status", None, no_status)
        row("missed ticks (controller)", "max_missed_ticks_per_s", "no status", None, no_status)
    cs, ce = m["commands"], m["command_interval_error_us"]
    row("command max gap (received here)", "max_command_gap_ms",
        f"{cs['max_gap_ms']:.1f} ms ({cs['rate_hz']:.0f} Hz; interval error p99 {_fmt(ce['p99'], 0)} µs)",
        cs["max_gap_ms"] if cs["count"] else None,
        f"no command arrived for {cs['max_gap_ms']:.1f} ms (at +{cs['max_gap_at_s']:.1f} s)" if cs["count"]
        else "no commands received")
    if m.get("status_reports"):
        reasons = m.get("hold_reasons") or []
        row("controller driving (RUN/SHADOW)", "min_run_share",
            f"{100 * m['run_share']:.0f}% of {m['status_reports']} reports", m["run_share"],
            "the controller held instead of driving" + (f" ({'; '.join(reasons)})" if reasons else ""))
    else:
        row("controller driving (RUN/SHADOW)", "min_run_share", "no status", None, no_status)

    sw = m["swaps"]
    stats = sw.get("stats_ms", percentiles([]))
    skip = sw.get("why")
    if not sw["policies_seen"]:
        skip = skip or "no policy was published during the window (is warpd_planner running?)"
    elif not sw["measured"] and sw.get("blind") and not sw["not_found"]:
        skip = skip or "not measured: hil-check itself stalled whenever a policy arrived; rerun"
    row("policy swap latency p99", "max_swap_latency_ms",
        f"{_fmt(stats['p99'])} ms (p50 {_fmt(stats['p50'])}, max {_fmt(stats['max'])}; "
        f"{sw['measured']}/{sw['policies_seen']} swaps seen)" if sw["policies_seen"] else "-",
        stats["p99"] if sw["measured"] else None,
        (f"new policies reached the commands {_fmt(stats['p99'])} ms after they were made (p99)" if sw["measured"]
         else f"none of the {sw['policies_seen']} policies published showed up in the commands "
              f"({sw['not_found']} not found, {sw['ambiguous']} indistinguishable from their predecessor)"), skip=skip)

    hold = m["hold"]
    if not hold.get("tested"):
        row("HOLD reaction (fault test)", "max_hold_reaction_s", "-", None, "", skip=hold.get("why", "not tested"))
    elif "reaction_s" not in hold:
        row("HOLD reaction (fault test)", "max_hold_reaction_s", "no HOLD", None, hold["why"])
    else:
        moving = hold["moving_after_hold"]
        row("HOLD reaction (fault test)", "max_hold_reaction_s",
            f"{hold['reaction_s']:.3f} s after the last state" + (f"; then {moving} moving commands" if moving else ""),
            hold["reaction_s"] if moving == 0 else math.inf,
            (f"after holding, the controller commanded motion again ({moving} non-zero commands) without joint states"
             if moving else f"the controller held {hold['reaction_s']:.3f} s after the last joint state "
                            "(its stale_timeout_s?)"))
    return rows


def print_report(rows: list[dict], m: dict, out=print) -> None:
    headers = ("check", "measured", "threshold", "result")
    widths = [max(len(h), *(len(r[k]) for r in rows)) for h, k in zip(headers, ("check", "measured", "threshold",
                                                                               "result"))]
    line = "  ".join(f"{h:<{w}}" for h, w in zip(headers, widths))
    out("")
    out(line)
    out("  ".join("-" * w for w in widths))
    for r in rows:
        out("  ".join(f"{r[k]:<{w}}" for k, w in zip(("check", "measured", "threshold", "result"), widths)))
    out("")
    for note in m.get("notes", []):
        out(f"note: {note}")
    for r in rows:
        if r["result"] == SKIP:
            out(f"skipped: {r['check']}: {r['why']}")
    failed = [r for r in rows if r["result"] == FAIL]
    if failed:
        out(f"verdict: FAIL ({len(failed)} of {len(rows)} checks failed)")
        for r in failed:
            out(f"  {r['check']}: {r['measured']} (threshold {r['threshold']}): {r['why']}")
    else:
        out(f"verdict: PASS ({sum(r['result'] == PASS for r in rows)} checks passed"
            + (f", {sum(r['result'] == SKIP for r in rows)} skipped)" if any(r['result'] == SKIP for r in rows)
               else ")"))
