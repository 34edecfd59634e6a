"""The test side of a ROS graph: a real rclpy node with its own executor, and the few things
every ROS test does with it (spin until something happened, call a service, set a parameter);
`RobotStandIn`, a TestNode that plays robot and planner for a controller under test; and
starting/stopping node processes."""
import threading
import time
from collections import namedtuple
from dataclasses import dataclass


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
        sleeps or injects faults); do not call spin_until/spin_for/call afterwards."""
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

    def call(self, client, request, timeout: float = 10.0):
        assert client.wait_for_service(timeout_sec=timeout), f"{client.srv_name} never appeared"
        future = client.call_async(request)
        assert self.spin_until(future.done, timeout), f"{client.srv_name} did not answer"
        return future.result()

    def set_parameter(self, node_name: str, name: str, value):
        """Through the standard parameter service (what rqt_reconfigure uses); the SetParametersResult."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        if node_name not in self._parameter_clients:
            self._parameter_clients[node_name] = self.node.create_client(SetParameters,
                                                                        f"/{node_name}/set_parameters")
        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        return self.call(self._parameter_clients[node_name], request).results[0]

    def close(self) -> None:
        if self._spinner is not None:
            self._stop_spinning.set()
            self._spinner.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()


def stop_process(proc, sig=None, timeout: float = 10.0):
    """Stop a node process (and never leave it behind): its return code, or None if it had to be
    killed after `timeout` seconds."""
    import signal
    import subprocess

    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(sig if sig is not None else signal.SIGINT)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


@dataclass(frozen=True)
class JointStateFeed:
    """What a RobotStandIn publishes as joint states: names, positions, velocities, and how old the
    stamp is made (`stamp_lag_s` > 0: a state that arrives late, or a driver clock behind)."""

    names: tuple
    q: tuple
    qd: tuple
    stamp_lag_s: float = 0.0


Command = namedtuple("Command", "t wall_ns data")  # monotonic s, wall-clock ns, np.ndarray


class RobotStandIn(TestNode):
    """Plays robot and planner for a controller under test, over real DDS: publishes JointState at
    `rate_hz` from `feed` (None: publishes nothing) and latched task features, sends PolicyWeights;
    records every command (with receive times), ControllerStatus, the controller's diagnostics, the
    PolicyWeights on the topic, and joint states that other nodes (a sim) publish. Spins on its own
    thread, so a test can sleep and change `feed` meanwhile (one reference assignment)."""

    FRAME = "robot_stand_in"  # frame_id of its own joint states, to tell them from a sim's

    def __init__(self, context, feed: JointStateFeed | None, task_features, rate_hz: float = 100.0,
                 controller: str = "warpd_controller"):
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray

        from warpd_ros import topics
        from warpd_ros.msg import ControllerStatus, PolicyWeights
        from warpd_ros.qos import COMMAND_QOS, SENSOR_QOS, STATUS_QOS, TASK_FEATURES_QOS, policy_swap_qos

        super().__init__(context, "robot_stand_in", events_executor=True)  # 1 kHz of commands come in
        self.feed = feed
        self.controller = controller
        self.lock = threading.Lock()
        self.commands, self.statuses, self.diagnostics, self.policies, self.other_states = [], [], [], [], []
        self.last_state_sent: float | None = None  # monotonic time of the latest publish
        self.ticks: list[float] = []  # monotonic time of every joint-state timer callback, fed or not
        self._joint_pub = self.node.create_publisher(JointState, topics.JOINT_STATES, SENSOR_QOS)
        self._task_pub = self.node.create_publisher(Float64MultiArray, topics.TASK_FEATURES, TASK_FEATURES_QOS)
        self.policy_pub = self.node.create_publisher(PolicyWeights, topics.POLICY_WEIGHTS, policy_swap_qos())
        self.node.create_subscription(Float64MultiArray, topics.JOINT_COMMANDS, self._on_command, COMMAND_QOS)
        self.node.create_subscription(ControllerStatus, topics.CONTROLLER_STATUS,
                                      lambda m: self._record(self.statuses, m), STATUS_QOS)
        self.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics, STATUS_QOS)
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

    def send_policy(self, policy, validate: bool = True) -> float:
        """Stamp `policy` now (wall clock, the controller's clock) and publish it; the monotonic send time."""
        from warpd_ros.conversions import policy_to_msg

        policy.stamp_ns = time.time_ns()
        msg = policy_to_msg(policy, validate=validate)
        sent = time.monotonic()
        self.policy_pub.publish(msg)
        return sent

    # ---------------------------------------------------------------- recording
    def _record(self, into: list, msg) -> None:
        with self.lock:
            into.append((time.monotonic(), msg))

    def _on_command(self, msg) -> None:
        import numpy as np

        item = Command(time.monotonic(), time.time_ns(), np.array(msg.data))
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

    def commands_since(self, t: float) -> list:
        with self.lock:
            return [c for c in self.commands if c.t >= t]

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

    def get_parameters(self, node_name: str, names, timeout: float = 10.0) -> dict:
        """{name: value} of another node's parameters, through its parameter service (usable while this
        node spins in the background)."""
        from rclpy.parameter import parameter_value_to_python
        from rclpy.parameter_client import AsyncParameterClient

        client = AsyncParameterClient(self.node, node_name)
        assert client.wait_for_services(timeout_sec=timeout), f"{node_name}'s parameter services never appeared"
        future = client.get_parameters(list(names))
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert future.done(), f"{node_name} did not answer get_parameters"
        return {n: parameter_value_to_python(v) for n, v in zip(names, future.result().values)}

    def diagnostics_since(self, t: float) -> list:
        with self.lock:
            return [s for ts, s in self.diagnostics if ts >= t]


def start_node(argv, log_path, env=None):
    """Start a node process (`argv` as bringup.plan gives it), its output appended to `log_path`."""
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    with open(log_path, "a") as log:  # the child keeps its own descriptor
        return subprocess.Popen(argv, cwd=repo, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
