"""The test side of a ROS graph: `TestNode`, a real rclpy node with its own executor and the few things
every ROS test does with it (spin until something happened, call a service, get/set a parameter), and
`RobotStandIn`, the one TestNode that plays robot and planner for a controller under test — in the
controller tests, the fault scenarios, the fuzz run over DDS and the timing benchmark alike."""
from __future__ import annotations

import bisect
import math
import threading
import time
from collections import namedtuple
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

# The stand-in robot: joints in its own order (not the controller's, exercising JointIndex), fixed
# positions/velocities, and the task features of reach_around.
JOINTS = ("shoulder", "elbow", "wrist")
DRIVER_ORDER = ("wrist", "shoulder", "elbow")
Q = {"shoulder": 0.4, "elbow": -0.7, "wrist": 1.1}
QD = {"shoulder": 0.05, "elbow": -0.3, "wrist": 0.2}
TASK = (0.35, -0.12)
CONTROLLER = "warpd_controller"


@contextmanager
def ros_context():
    """A fresh rclpy context, shut down on exit (each test or bench owns its own)."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        context.try_shutdown()


@contextmanager
def running(factory, *args, **kwargs):
    """``factory(context, *args, **kwargs)`` in a context of its own; closed, and the context shut down, on exit."""
    with ros_context() as context:
        node = factory(context, *args, **kwargs)
        try:
            yield node
        finally:
            node.close()


class TestNode:
    __test__ = False  # a helper, not a test class

    def __init__(self, context, name: str, events_executor: bool = False):
        """`events_executor`: rclpy's EventsExecutor (~3x less CPU per callback; what the nodes use), for a
        node that receives a 1 kHz stream; else the SingleThreadedExecutor."""
        import rclpy

        self.node = rclpy.create_node(name, context=context)
        if events_executor:
            from rclpy.experimental import EventsExecutor

            self.executor = EventsExecutor(context=context)
        else:
            self.executor = rclpy.executors.SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._parameter_clients = {}
        self._spinner = None  # set by spin_in_background
        self._stop_spinning = threading.Event()

    def spin_in_background(self) -> None:
        """Spin on a thread of its own from now on (for nodes that must keep publishing while a test
        sleeps or injects faults); spin_until/spin_for must not be called afterwards (call and the
        parameter helpers then wait instead of spinning)."""
        def spin():
            while not self._stop_spinning.is_set():
                self.executor.spin_once(timeout_sec=0.05)

        self._spinner = threading.Thread(target=spin, name=f"{self.node.get_name()}_spin", daemon=True)
        self._spinner.start()

    def spin_until(self, condition, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.01)
        return bool(condition())

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def wait_until(self, condition, timeout: float) -> bool:
        """spin_until, or (spinning in the background) poll until `condition()` or `timeout`."""
        if self._spinner is None:
            return self.spin_until(condition, timeout)
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        return bool(condition())

    def call(self, client, request, timeout: float = 10.0):
        assert client.wait_for_service(timeout_sec=timeout), f"{client.srv_name} never appeared"
        future = client.call_async(request)
        assert self.wait_until(future.done, timeout), f"{client.srv_name} did not answer"
        return future.result()

    def _parameter_client(self, node_name: str, timeout: float):
        from rclpy.parameter_client import AsyncParameterClient

        if node_name not in self._parameter_clients:
            self._parameter_clients[node_name] = AsyncParameterClient(self.node, node_name)
        client = self._parameter_clients[node_name]
        assert client.wait_for_services(timeout_sec=timeout), f"{node_name}'s parameter services never appeared"
        return client

    def set_parameter(self, node_name: str, name: str, value, timeout: float = 10.0):
        """Through the standard parameter service (what rqt_reconfigure uses); the SetParametersResult."""
        from rclpy.parameter import Parameter

        future = self._parameter_client(node_name, timeout).set_parameters([Parameter(name, value=value)])
        assert self.wait_until(future.done, timeout), f"{node_name} did not answer set_parameters {name}"
        return future.result().results[0]

    def get_parameters(self, node_name: str, names, timeout: float = 10.0) -> dict:
        """{name: value} of another node's parameters, through its parameter service."""
        from rclpy.parameter import parameter_value_to_python

        names = list(names)
        future = self._parameter_client(node_name, timeout).get_parameters(names)
        assert self.wait_until(future.done, timeout), f"{node_name} did not answer get_parameters"
        return {n: parameter_value_to_python(v) for n, v in zip(names, future.result().values)}

    def close(self) -> None:
        if self._spinner is not None:
            self._stop_spinning.set()
            self._spinner.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()


@dataclass(frozen=True)
class JointStateFeed:
    """What a RobotStandIn publishes as joint states: names, positions, velocities, and how old the
    stamp is made (`stamp_lag_s` > 0: a state that arrives late, or a driver clock behind)."""

    names: tuple
    q: tuple
    qd: tuple
    stamp_lag_s: float = 0.0


def feed(q: dict = Q, qd: dict = QD, order=DRIVER_ORDER, stamp_lag_s: float = 0.0) -> JointStateFeed:
    """The stand-in robot's joint states ({joint: value}) in the driver's `order`."""
    return JointStateFeed(tuple(order), tuple(q[j] for j in order), tuple(qd[j] for j in order), stamp_lag_s)


NOMINAL = feed()


def observation(joints=JOINTS, q: dict = Q, qd: dict = QD, task=TASK) -> np.ndarray:
    """The observation a controller with `joints` builds from the stand-in's joint states and task features."""
    return np.array([q[j] for j in joints] + [qd[j] for j in joints] + list(task))


def diagnostic_values(status) -> dict:
    """A DiagnosticStatus's key-values as a dict of strings."""
    return {kv.key: kv.value for kv in status.values}


def status_stamp_ns(status) -> int:
    return status.header.stamp.sec * 10**9 + status.header.stamp.nanosec


Command = namedtuple("Command", "t wall_ns data")  # monotonic s, wall-clock ns, np.ndarray


class RobotStandIn(TestNode):
    """Plays robot and planner for a controller under test, over real DDS: publishes JointState at
    `rate_hz` from `feed` (None: publishes nothing) and latched task features, sends PolicyWeights;
    records every command (with receive times), ControllerStatus, the controller's diagnostics, the
    PolicyWeights on the topic (unless `record_policies` is False), and joint states that other nodes
    (a sim) publish. Spins on its own thread, so a test can sleep and change `feed` meanwhile (one
    reference assignment).

    For swap latency, :meth:`send_policy` with `expect` notes when the first command equal to the
    expected one arrives (`published` / `first_command`, policy_id -> monotonic time)."""

    FRAME = "robot_stand_in"  # frame_id of its own joint states, to tell them from a sim's

    def __init__(self, context, feed: JointStateFeed | None = NOMINAL, task_features=TASK, rate_hz: float = 100.0,
                 controller: str = CONTROLLER, name: str = "robot_stand_in", record_policies: bool = True):
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray

        from warpd_ros import topics
        from warpd_ros.msg import ControllerStatus, PolicyWeights
        from warpd_ros.qos import COMMAND_QOS, SENSOR_QOS, STATUS_QOS, TASK_FEATURES_QOS, policy_swap_qos

        super().__init__(context, name, events_executor=True)  # 1 kHz of commands come in
        self.feed = feed
        self.controller = controller
        self.lock = threading.Lock()
        self.commands, self.statuses, self.diagnostics, self.policies, self.other_states = [], [], [], [], []
        self.last_state_sent: float | None = None  # monotonic time of the latest publish
        self.ticks: list[float] = []  # monotonic time of every joint-state timer callback, fed or not
        self.published: dict[int, float] = {}  # policy_id -> monotonic time it was sent with `expect`
        self.first_command: dict[int, float] = {}  # policy_id -> receive time of its first expected command
        self._pending: tuple[int, np.ndarray] | None = None
        self._trigger_clients = {}
        self._joint_pub = self.node.create_publisher(JointState, topics.JOINT_STATES, SENSOR_QOS)
        self._task_pub = self.node.create_publisher(Float64MultiArray, topics.TASK_FEATURES, TASK_FEATURES_QOS)
        self.policy_pub = self.node.create_publisher(PolicyWeights, topics.POLICY_WEIGHTS, policy_swap_qos())
        self.node.create_subscription(Float64MultiArray, topics.JOINT_COMMANDS, self._on_command, COMMAND_QOS)
        self.node.create_subscription(ControllerStatus, topics.CONTROLLER_STATUS,
                                      lambda m: self._record(self.statuses, m), STATUS_QOS)
        self.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics, STATUS_QOS)
        if record_policies:  # off where this process sends policies so large that decoding its own copy would load it
            self.node.create_subscription(PolicyWeights, topics.POLICY_WEIGHTS,
                                          lambda m: self._record(self.policies, m), policy_swap_qos(depth=100))
        self.node.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_state, SENSOR_QOS)
        self.send_task_features(task_features)
        self.node.create_timer(1.0 / rate_hz, self._publish_joint_state)
        self.spin_in_background()

    # ---------------------------------------------------------------- outputs
    def _publish_joint_state(self) -> None:
        from warpd_ros.conversions import joint_state_msg

        self.ticks.append(time.monotonic())
        feed = self.feed
        if feed is None:
            return
        msg = joint_state_msg(feed.names, feed.q, feed.qd, time.time_ns() - int(feed.stamp_lag_s * 1e9))
        msg.header.frame_id = self.FRAME
        self.last_state_sent = time.monotonic()
        self._joint_pub.publish(msg)

    def send_task_features(self, values) -> None:
        from warpd_ros.conversions import float64_array_msg

        self._task_pub.publish(float64_array_msg(values))

    def send_policy(self, policy, validate: bool = True, restamp: bool = True, expect=None) -> float:
        """Publish `policy`, stamped now (wall clock, the controller's clock) unless `restamp` is False (a
        deliberately old or future stamp); the monotonic send time. `validate` False sends a bad policy as
        it is. `expect`: the command it must produce, for the swap-latency bookkeeping."""
        from warpd_ros.conversions import policy_to_msg

        if restamp:
            policy.stamp_ns = time.time_ns()
        msg = policy_to_msg(policy, validate=validate)
        if expect is not None:
            self._pending = (policy.policy_id, np.asarray(expect))
        sent = time.monotonic()
        if expect is not None:
            self.published[policy.policy_id] = sent
        self.policy_pub.publish(msg)
        return sent

    def send_and_wait(self, policy, timeout: float = 5.0):
        """Publish `policy` as it is (unvalidated, its own stamp) and wait until the controller has
        accepted or rejected it; that ControllerStatus (AssertionError if it never comes)."""
        before = self.status()
        handled = before.swaps_accepted + before.swaps_rejected
        self.send_policy(policy, validate=False, restamp=False)
        return self.fresh_status(lambda s: s.swaps_accepted + s.swaps_rejected > handled, timeout,
                                 what=f"the controller to handle policy {policy.policy_id}")

    # ---------------------------------------------------------------- recording
    def _record(self, into: list, msg) -> None:
        with self.lock:
            into.append((time.monotonic(), msg))

    def _on_command(self, msg) -> None:
        item = Command(time.monotonic(), time.time_ns(), np.array(msg.data))
        pending = self._pending
        if pending is not None and item.data.shape == pending[1].shape and \
                np.allclose(item.data, pending[1], rtol=0, atol=1e-9):
            self.first_command.setdefault(pending[0], item.t)
            self._pending = None
        with self.lock:
            self.commands.append(item)

    def _on_diagnostics(self, msg) -> None:
        now = time.monotonic()
        with self.lock:
            self.diagnostics.extend((now, s) for s in msg.status if s.name == self.controller)

    def _on_joint_state(self, msg) -> None:
        if msg.header.frame_id != self.FRAME:
            self._record(self.other_states, msg)

    def longest_stall(self, t0: float, t1: float) -> float:
        """The longest this node went without its timer running in [t0, t1] (s): a loaded machine that
        stalls the test process delays its joint states and its view of the commands alike."""
        with self.lock:
            ticks = [t for t in self.ticks if t0 <= t <= t1]
        bounds = [t0, *ticks, t1]
        return max(b - a for a, b in zip(bounds, bounds[1:]))

    def clear(self) -> None:
        """Forget everything recorded so far."""
        with self.lock:
            for records in (self.commands, self.statuses, self.diagnostics, self.policies, self.other_states,
                            self.ticks):
                records.clear()

    # ---------------------------------------------------------------- commands
    def commands_between(self, t0: float, t1: float = math.inf) -> list:
        """The commands received in [t0, t1) (bisected: the record grows by 1 kHz)."""
        with self.lock:
            lo = bisect.bisect_left(self.commands, t0, key=lambda c: c.t)
            hi = bisect.bisect_left(self.commands, t1, key=lambda c: c.t)
            return self.commands[lo:hi]

    def commands_since(self, t: float) -> list:
        return self.commands_between(t)

    def wait_command(self, predicate, after: float, timeout: float):
        """The receive time of the first command after `after` that satisfies `predicate`, or None."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            commands = self.commands_between(after)
            found = next((c.t for c in commands[seen:] if predicate(c)), None)
            if found is not None or time.monotonic() >= deadline:
                return found
            seen = len(commands)
            time.sleep(0.005)

    def settled_commands(self, n: int = 20, timeout: float = 3.0) -> list:
        """The data of `n` commands published after this call (so after any change made before it)."""
        t0 = time.monotonic() + 0.05
        assert self.wait_until(lambda: len(self.commands_since(t0)) >= n, timeout), \
            f"timed out after {timeout} s waiting for {n} commands"
        return [c.data for c in self.commands_since(t0)]

    # ---------------------------------------------------------------- status and diagnostics
    def status(self):
        """The latest ControllerStatus, or None."""
        with self.lock:
            return self.statuses[-1][1] if self.statuses else None

    def wait_for_status(self, predicate, timeout: float, since: float | None = None):
        """The first ControllerStatus received after `since` (default: now) that satisfies `predicate`,
        or None after `timeout` seconds."""
        since = time.monotonic() if since is None else since
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                candidates = [m for t, m in self.statuses if t >= since]
            found = next((m for m in candidates if predicate(m)), None)  # outside the lock: it may take it
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(0.01)

    def fresh_status(self, predicate=lambda s: True, timeout: float = 5.0, what: str = "a status"):
        """The first ControllerStatus assembled (stamped) after now that satisfies `predicate`;
        AssertionError naming `what` after `timeout` seconds."""
        since = time.monotonic()  # a status stamped after t0 was received after this
        t0 = time.time_ns()
        found = self.wait_for_status(lambda s: status_stamp_ns(s) > t0 and predicate(s), timeout, since)
        assert found is not None, f"timed out after {timeout} s waiting for {what}"
        return found

    def wait_for_controller(self, proc, timeout: float, since: float | None = None):
        """The first ControllerStatus after `since` (default: any), or None if the controller process
        `proc` exits or `timeout` passes first."""
        since = -math.inf if since is None else since
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            status = self.wait_for_status(lambda s: True, 0, since)
            if status is not None or time.monotonic() >= deadline:
                return status
            time.sleep(0.05)
        return None

    def diagnostics_since(self, t: float) -> list:
        with self.lock:
            return [s for ts, s in self.diagnostics if ts >= t]

    def wait_diagnostic(self, predicate, since: float, timeout: float):
        """The first of the controller's DiagnosticStatus received after `since` that satisfies
        `predicate`, or None."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((d for d in self.diagnostics_since(since) if predicate(d)), None)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(0.02)

    def fresh_diagnostic(self, timeout: float = 3.0):
        """The controller's first DiagnosticStatus received after now; AssertionError after `timeout`."""
        found = self.wait_diagnostic(lambda d: True, time.monotonic(), timeout)
        assert found is not None, f"timed out after {timeout} s waiting for a {self.controller} DiagnosticStatus"
        return found

    # ---------------------------------------------------------------- the controller's parameters and services
    def set_param(self, name: str, value):
        """Set one of the controller's parameters; the SetParametersResult."""
        return self.set_parameter(self.controller, name, value)

    def controller_parameters(self, names) -> dict:
        return self.get_parameters(self.controller, names)

    def call_trigger(self, service: str, timeout: float = 5.0):
        """Call the controller's std_srvs/Trigger `service` (e.g. "promote_shadow"); the response."""
        from std_srvs.srv import Trigger

        name = f"/{self.controller}/{service}"
        if name not in self._trigger_clients:
            self._trigger_clients[name] = self.node.create_client(Trigger, name)
        return self.call(self._trigger_clients[name], Trigger.Request(), timeout)

    def lifecycle(self, transition: str, timeout: float = 10.0) -> bool:
        """Ask the controller for a lifecycle `transition` (configure, activate, deactivate, cleanup, shutdown)
        through its standard ChangeState service, as `ros2 lifecycle set` (and `warpd lifecycle`) does."""
        return self._lifecycle_client().change(transition, timeout)

    def lifecycle_state(self, timeout: float = 10.0) -> str:
        """The controller's lifecycle state label (unconfigured, inactive, active, finalized)."""
        return self._lifecycle_client().state(timeout)

    def _lifecycle_client(self):
        from warpd_ros.lifecycle import LifecycleClient

        if "lifecycle" not in self._trigger_clients:
            self._trigger_clients["lifecycle"] = LifecycleClient(
                self.node, f"/{self.controller}", lambda future, timeout: self.wait_until(future.done, timeout))
        return self._trigger_clients["lifecycle"]
