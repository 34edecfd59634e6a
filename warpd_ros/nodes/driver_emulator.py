"""warpd_driver_emulator: stands in for a robot's ros2_control drivers in the HIL graph.

It plays joint_state_broadcaster + a forward_command_controller for `joint_names`, velocity or
position (`command_interface`): commands (Float64MultiArray, one value per joint, on JOINT_COMMANDS)
drive a joint model (`joint_model`, warpd_core/joint_models.py): by default a first-order one — the
velocity follows the commanded velocity (position interface: the velocity `position_gain` * (target -
q), within velocity_limit) with a lag (`velocity_tau_s`), the position integrates the velocity — or the
robot's own dynamics from its MuJoCo model (`task:<name>` or an MJCF). A position interface starts by
holding `initial_positions`, as a real one holds its state at activation. The model is stepped at
`rate_hz` on the wall clock, and every step's state is published as a JointState on JOINT_STATES,
stamped when it was computed. Like a real link it can be late (`latency_s` plus uniform `jitter_s`) and lossy (`drop_rate`); delayed states leave
in order. Like the real controller it holds the last valid command. It also publishes constant
task features (`task_features`, e.g. the goal) on TASK_FEATURES so a controller and planner
have a complete observation.

Commands of the wrong length or with NaN/Inf are ignored, counted and warned about (throttled).
`~/reset` (std_srvs/Trigger) puts the joints back at `initial_positions` at rest, as an operator
returning a real arm to its start posture between episodes would; set `initial_positions` and
`task_features` (both live) first for another start and goal.

    python -m warpd_ros.nodes.driver_emulator --ros-args -p latency_s:=0.01 -p drop_rate:=0.1
"""
from __future__ import annotations

import heapq
import math
import sys
import threading
import time

import numpy as np

from warpd_core.joint_models import FirstOrderJoints, ModelJoints
from warpd_ros.ros_env import require_ros, run_node

rclpy = require_ros()

from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from warpd_ros import topics  # noqa: E402
from warpd_ros.conversions import float64_array_msg, joint_state_msg  # noqa: E402
from warpd_ros.params import Param, declare_parameters  # noqa: E402
from warpd_ros.qos import COMMAND_QOS, SENSOR_QOS, TASK_FEATURES_QOS  # noqa: E402

NODE_NAME = "warpd_driver_emulator"
WARN_PERIOD_S = 2.0

PARAMS = [
    Param("joint_names", ["shoulder", "elbow", "wrist"],
          "Joints to emulate, in command order (the JointState names).", read_only=True),
    Param("initial_positions", [-1.4505, 1.2353, 0.7905],
          "Joint positions at start-up and at ~/reset, rad, one per joint (empty: all zero)."),
    Param("rate_hz", 500.0, "How often the joint model is stepped and its state published, Hz.",
          min=1.0, max=5000.0, read_only=True),
    Param("joint_model", "first_order", "How the joints answer commands: first_order (the parameters below), or the "
          "robot's own dynamics from its MuJoCo model: task:<name> or an MJCF file with one actuator per joint "
          "taking the command interface's values (warpd_core/joint_models.py; the parameters below then do not "
          "apply).", read_only=True),
    Param("velocity_tau_s", 0.02,
          "Time constant of the first-order velocity response to a command, s (0: instant).", min=0.0, max=1.0),
    Param("command_interface", "velocity", "What commands mean: velocity (rad/s) or position (rad targets, tracked "
          "by a proportional position loop).", choices=("velocity", "position"), read_only=True),
    Param("position_gain", 20.0, "Position interface: commanded joint velocity per rad of target error, 1/s.",
          min=0.1, max=1000.0),
    Param("velocity_limit", 1.5, "Commanded velocities are clipped to +-this, rad/s.", min=0.0, max=100.0),
    Param("latency_s", 0.0, "Delay between computing a joint state and publishing it, s.", min=0.0, max=1.0),
    Param("jitter_s", 0.0, "Extra delay drawn uniformly from [0, jitter_s] per message, s.", min=0.0, max=0.5),
    Param("drop_rate", 0.0, "Probability that a joint state message is not sent.", min=0.0, max=1.0),
    Param("task_features", [0.40, 0.22],
          "Constant task features published (latched) on the task features topic, e.g. goal x, y."),
    Param("seed", 0, "Seed of the random jitter and drops.", min=0, max=2**31 - 1, read_only=True),
]


def _finite_list(value) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in value)
    except (TypeError, ValueError):
        return False


class DelayLine:
    """Publishes messages at given monotonic times from its own thread, in order (a FIFO link)."""

    def __init__(self, publish):
        self._publish = publish
        self._queue: list[tuple[float, int, object]] = []
        self._seq = 0
        self._last_due = 0.0
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="delay_line", daemon=True)
        self._thread.start()

    def put(self, due: float, msg) -> None:
        with self._cond:
            due = max(due, self._last_due)  # a serial link does not reorder
            self._last_due = due
            self._seq += 1
            heapq.heappush(self._queue, (due, self._seq, msg))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._queue or self._queue[0][0] > time.monotonic()):
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, msg = heapq.heappop(self._queue)
            self._publish(msg)

    def pending(self) -> bool:
        with self._cond:
            return bool(self._queue)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=1.0)


class DriverEmulator(Node):
    def __init__(self, name: str = NODE_NAME, **kwargs):
        super().__init__(name, **kwargs)
        values = declare_parameters(self, PARAMS, on_change=self._on_change, validate=self._validate)
        self.joint_names = [str(j) for j in values["joint_names"]]
        if not self.joint_names or len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"joint_names must be non-empty and unique, got {self.joint_names}")
        n = len(self.joint_names)
        initial = list(values["initial_positions"]) or [0.0] * n
        if len(initial) != n:
            raise ValueError(f"initial_positions has {len(initial)} values for {n} joints {self.joint_names}")
        self.initial = np.array(initial, dtype=np.float64)
        self.q = self.initial.copy()
        self.qd = np.zeros(n)
        self.position_interface = values["command_interface"] == "position"
        self.command = self.q.copy() if self.position_interface else np.zeros(n)
        if values["joint_model"] == "first_order":
            self.joints = FirstOrderJoints(n, self.position_interface, values["velocity_tau_s"],
                                           values["position_gain"], values["velocity_limit"])
        else:
            self.joints = ModelJoints(values["joint_model"], self.joint_names)
        self.joints.reset(self.q)
        self.latency = values["latency_s"]
        self.jitter = values["jitter_s"]
        self.drop_rate = values["drop_rate"]
        self.rng = np.random.default_rng(values["seed"])
        self.counts = {"states": 0, "dropped": 0, "commands": 0, "rejected_length": 0, "rejected_nonfinite": 0}
        self._warned: dict[str, float] = {}

        self.state_pub = self.create_publisher(JointState, topics.JOINT_STATES, SENSOR_QOS)
        self.features_pub = self.create_publisher(Float64MultiArray, topics.TASK_FEATURES, TASK_FEATURES_QOS)
        self.command_sub = self.create_subscription(Float64MultiArray, topics.JOINT_COMMANDS, self._on_command,
                                                    COMMAND_QOS)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.delay_line = DelayLine(self._publish_state)
        self._publish_features(values["task_features"])
        self._last_step = time.monotonic()
        self.timer = self.create_timer(1.0 / values["rate_hz"], self._step)
        self.get_logger().info(
            f"emulating {n} joints {self.joint_names} ({values['joint_model']} joint model) at "
            f"{values['rate_hz']:g} Hz on {self.state_pub.topic_name}, {values['command_interface']} commands on "
            f"{self.command_sub.topic_name}; latency {self.latency * 1e3:g} ms + jitter {self.jitter * 1e3:g} ms, "
            f"drop rate {self.drop_rate:g}")

    # ---------------------------------------------------------------- parameters
    def _validate(self, name: str, value) -> str | None:
        if name == "task_features" and not _finite_list(value):
            return "must be a list of finite numbers"
        if name == "initial_positions" and not _finite_list(value):
            return "must be a list of finite numbers"
        if name == "initial_positions" and hasattr(self, "q") and len(value) != len(self.q):
            return f"needs {len(self.q)} values, one per joint {self.joint_names}"
        return None

    def _on_change(self, changes: dict) -> None:  # callbacks share one executor thread: no locking
        if isinstance(self.joints, FirstOrderJoints):
            self.joints.tau_s = changes.get("velocity_tau_s", self.joints.tau_s)
            self.joints.position_gain = changes.get("position_gain", self.joints.position_gain)
            self.joints.velocity_limit = changes.get("velocity_limit", self.joints.velocity_limit)
        self.latency = changes.get("latency_s", self.latency)
        self.jitter = changes.get("jitter_s", self.jitter)
        self.drop_rate = changes.get("drop_rate", self.drop_rate)
        if "task_features" in changes:
            self._publish_features(changes["task_features"])
        if "initial_positions" in changes:
            self.initial = np.array(changes["initial_positions"], dtype=np.float64)

    def _on_reset(self, _request, response):
        """Back to the start posture at rest; a position interface then holds it until the next command."""
        self.q, self.qd = self.initial.copy(), np.zeros_like(self.q)
        self.command = self.q.copy() if self.position_interface else np.zeros_like(self.q)
        self.joints.reset(self.q)
        response.success, response.message = True, f"joints at {self.q.tolist()}"
        return response

    def _publish_features(self, values) -> None:
        self.features_pub.publish(float64_array_msg(list(values)))

    # ---------------------------------------------------------------- commands
    def _on_command(self, msg: Float64MultiArray) -> None:
        data = np.asarray(msg.data, dtype=np.float64)
        if data.shape != self.command.shape:
            self._reject("rejected_length", f"ignoring a command with {data.size} values for "
                         f"{self.command.size} joints {self.joint_names}")
            return
        if not np.isfinite(data).all():
            self._reject("rejected_nonfinite", "ignoring a command with NaN/Inf")
            return
        self.command = data  # held until the next valid command, as forward_command_controller does
        self.counts["commands"] += 1

    def _reject(self, key: str, text: str) -> None:
        self.counts[key] += 1
        now = time.monotonic()
        if now - self._warned.get(key, -WARN_PERIOD_S) >= WARN_PERIOD_S:  # throttled per reason
            self._warned[key] = now
            self.get_logger().warning(f"{text} ({self.counts[key]} so far)")

    # ---------------------------------------------------------------- the joint model
    def _step(self) -> None:
        now = time.monotonic()
        dt = min(max(now - self._last_step, 0.0), 0.1)  # a stalled process does not teleport the arm
        self._last_step = now
        self.q, self.qd = self.joints.step(self.command, dt)
        self.counts["states"] += 1
        if self.drop_rate > 0 and self.rng.random() < self.drop_rate:
            self.counts["dropped"] += 1
            return
        msg = joint_state_msg(self.joint_names, self.q, self.qd, self.get_clock().now().nanoseconds)
        delay = self.latency + (self.rng.uniform(0.0, self.jitter) if self.jitter > 0 else 0.0)
        if delay > 0 or self.delay_line.pending():  # nothing overtakes a state still in the line
            self.delay_line.put(now + delay, msg)
        else:
            self._publish_state(msg)

    def _publish_state(self, msg: JointState) -> None:
        try:
            self.state_pub.publish(msg)
        except Exception:
            if self.context.ok():
                raise
            # SIGINT/SIGTERM shut the context down during this step: nothing left to publish to

    def destroy_node(self):
        if getattr(self, "delay_line", None) is not None:
            self.delay_line.stop()
        return super().destroy_node()


def main(args=None) -> int:
    return run_node(DriverEmulator, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
