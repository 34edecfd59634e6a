"""The rclpy side of hil-check: its node, the subscriptions that record the graph, parameter
calls to other nodes, and the conversion of what was received into plain :class:`Samples`.

The only module of hil-check that touches rclpy or ROS messages, and only inside functions (after
`require_ros` in the command), so `warpd hil-check --help` and the analysis work without ROS.
Modes cross the boundary here: ControllerStatus codes become :class:`Mode` in `to_samples`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from warpd_core.errors import WarpdError
from warpd_core.runtime.command_pipeline import Mode
from warpd_ros.hil_check.analysis import Commands, JointStates, Policy, Samples, Status

NODE_NAME = "warpd_hil_check"
PROBE_S = 3.0  # how long to look for a running graph before starting the emulated one
STREAM_DEPTH = 200  # history of the best-effort state/command subscriptions (0.2-0.4 s of samples)
SERVICE_TIMEOUT_S = 5.0
UNKNOWN_NODE = "_NODE_NAME_UNKNOWN_"  # rmw's name for a publisher whose node is not discovered yet
# what the analysis needs to know of the controller (asked from the running node, else the config)
CONTROLLER_SETTINGS = ["joint_names", "action_limit", "stale_timeout_s", "swap_mode", "hold_mode", "control_rate_hz",
                       "command_interface", "position_lower", "position_upper", "velocity_limit"]


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


def driving(status) -> bool:
    """Whether a received ControllerStatus reports the controller driving the robot (RUN or SHADOW)."""
    from warpd_ros.modes import status_mode

    return status_mode(status) in (Mode.RUN, Mode.SHADOW)


def to_samples(rec: Recording, joint_names) -> Samples:
    """The recording as plain records for the analysis: messages decoded, joints read in the
    controller's order (`joint_names`), modes as Mode, policies as executors (None: refused)."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    from warpd_core.runtime.mlp_runtime import MLPPolicy
    from warpd_ros.conversions import JointIndex, JointStateError, msg_to_policy, stamp_to_ns
    from warpd_ros.modes import mode_from_status

    def stream(samples, msg_type):
        recv = np.array([s[0] for s in samples], dtype=np.int64)
        sent = np.array([s[1] for s in samples], dtype=np.int64)
        return recv, sent, [s[2] for s in samples], [deserialize_message(s[3], msg_type) for s in samples]

    index = JointIndex(joint_names)

    def joints(msg):
        try:
            return index.read(msg)
        except JointStateError:
            return None

    def executor(msg):
        try:
            return MLPPolicy(msg_to_policy(msg))
        except Exception:  # the controller refuses it too; not a swap
            return None

    recv, sent, seq, states = stream(rec.states, JointState)
    state_samples = JointStates(recv, sent, seq, np.array([stamp_to_ns(m.header.stamp) for m in states],
                                                          dtype=np.int64), [joints(m) for m in states])
    recv, sent, seq, commands = stream(rec.commands, Float64MultiArray)
    command_samples = Commands(recv, sent, seq, [np.asarray(m.data, dtype=np.float64) for m in commands])
    statuses = [Status(t, mode_from_status(m.mode), m.mode_reason, m.period_error_p99, m.period_error_max,
                       m.missed_ticks, m.loop_rate_hz, m.target_rate_hz) for t, m in rec.statuses]
    policies = [Policy(t, stamp_to_ns(m.header.stamp), executor(m)) for t, m in rec.policies]
    return Samples(state_samples, command_samples, statuses, policies, list(rec.features))


def init_context(rclpy, domain_id):
    from rclpy.signals import SignalHandlerOptions

    context = rclpy.context.Context()
    # Python's own SIGINT handling (KeyboardInterrupt between spin_once calls) stops the run cleanly
    rclpy.init(context=context, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
    return context


def something_answers(rclpy, domain_id, topic_names: dict) -> bool:
    """Does anything publish joint states or controller status? (A throw-away node looks for PROBE_S.)"""
    context = init_context(rclpy, domain_id)
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


def controller_settings(session, config_params: dict) -> dict:
    """The controller's joints, limits and modes: asked from the node that publishes commands, else the config."""
    from warpd_ros.nodes.controller import PARAMS

    names = CONTROLLER_SETTINGS
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
