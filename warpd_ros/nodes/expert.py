"""warpd_expert: a task's scripted expert driving a robot (warpd_sim, or a real one) through ROS.

    python -m warpd_ros.nodes.expert --ros-args -p task:=reach_around -p seed:=0

Where warpd_controller runs a planner's policies, this node runs warpd_core's scripted expert
(`task.expert(mode, rng)`) in the same place of the graph: for demonstrations recorded from ROS
(`warpd record-bag`, then `warpd import-bag`), and to check a sim or robot set-up end to end with a
closed loop that is known to work.

The experts act on the observation alone ([q, qd, task features], as warpd_sim builds it), so the node
builds that observation from what it receives — JointState on JOINT_STATES (in `joint_names` order,
whatever order the driver publishes) and the latched task features on TASK_FEATURES — and asks a local
task instance of the same name only for its expert. It publishes one Float64MultiArray command per tick
on JOINT_COMMANDS at `rate_hz` (default: the task's control rate), or one per joint state with rate_hz 0
(which follows a sim at any real_time_factor).

Episodes: on every EpisodeEvent RESET (EPISODE_EVENTS) a new expert is drawn for that episode, its mode
from an rng seeded with seed + episode (or the `mode` parameter when set), so a run is reproducible from
the sim's seeds and this seed. After TIMEOUT, and after SUCCESS unless after_success is hold, no command
is sent until the next RESET. Before
the first RESET it drives the running episode with the expert of episode 0. Without a fresh joint state
(state_timeout_s) or the task features it sends nothing: a driver then applies its own timeout (warpd_sim:
zero velocity after command_timeout_s).
"""
from __future__ import annotations

import sys
import time

import numpy as np

from warpd_core.errors import WarpdError
from warpd_core.tasks.registry import make_task
from warpd_ros.params import Param, declare_parameters
from warpd_ros.ros_env import require_ros, run_node

rclpy = require_ros()

from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

from warpd_ros import topics  # noqa: E402
from warpd_ros.conversions import JointIndex, JointStateError, float64_array_msg  # noqa: E402
from warpd_ros.msg import EpisodeEvent  # noqa: E402
from warpd_ros.qos import COMMAND_QOS, EVENTS_QOS, SENSOR_QOS, TASK_FEATURES_QOS  # noqa: E402

NODE_NAME = "warpd_expert"

# Declared first: the other parameters' defaults come from the task.
TASK_PARAMS = [
    Param("task", "reach_around", "warpd_core task whose scripted expert drives the robot (a joint-space task: "
          "obs = [q, qd, features], one velocity or position command per joint).", read_only=True),
]


def task_params(spec) -> list[Param]:
    """The parameters whose defaults are the task's: its joint names and control rate."""
    return [
        Param("joint_names", list(spec.joint_names), "Joints, in the order the expert observes and commands them "
              "(the JointState names; default: the task's).", read_only=True),
        Param("rate_hz", 1.0 / spec.control_dt, "Command rate (Hz, node clock; default: the task's control rate). "
              "0: one command per joint state received.", min=0.0, max=1000.0, read_only=True),
        Param("seed", 0, "Episode k's expert mode is drawn from an rng seeded with seed + k.", min=0,
              max=2**31 - 1, read_only=True),
        Param("mode", "", "The expert's mode in every episode (one of the task's modes, e.g. near, far); '' = drawn "
              "per episode. A change applies from the next episode."),
        Param("after_success", "stop", "After a SUCCESS: stop (send nothing until the next RESET) or hold (keep "
              "commanding, so a sim with hold_after_success_s records the robot staying at the goal).",
              choices=("stop", "hold")),
        Param("state_timeout_s", 0.25, "Send nothing while the newest joint state is older than this (wall s).",
              min=0.01, max=10.0),
    ]


class ExpertNode(Node):
    def __init__(self, node_name: str = NODE_NAME, **kwargs):
        super().__init__(node_name, **kwargs)
        name = declare_parameters(self, TASK_PARAMS)["task"]
        self.task = make_task(name)  # WarpdError (with the known names) if unknown
        spec = self.task.spec
        values = declare_parameters(self, task_params(spec), self._on_params, self._validate)
        self.joint_names = [str(j) for j in values["joint_names"]]
        n = len(self.joint_names)
        if n != spec.action_dim or spec.obs_dim < 2 * n or len(set(self.joint_names)) != n:
            raise WarpdError(f"task {spec.name!r} needs {spec.action_dim} distinct joints (one command per joint, "
                             f"obs = [q, qd, features]), got joint_names {self.joint_names}",
                             f"its joints: {', '.join(spec.joint_names)}")
        self._n_features = spec.obs_dim - 2 * n
        self._seed = values["seed"]
        self._mode = values["mode"] or None
        self._state_timeout_s = values["state_timeout_s"]
        self._after_success = values["after_success"]
        self._index = JointIndex(self.joint_names)

        self._state: tuple[np.ndarray, np.ndarray] | None = None
        self._state_time = -np.inf  # monotonic seconds of the newest usable joint state
        self._features: np.ndarray | None = None
        self._episode = 0
        self._active = True  # False between an episode's end and the next RESET
        self.expert = self._draw_expert(0)
        self.counts = {"commands": 0, "episodes": 0, "bad_states": 0, "bad_features": 0}

        self._command_pub = self.create_publisher(Float64MultiArray, topics.JOINT_COMMANDS, COMMAND_QOS)
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_state, SENSOR_QOS)
        self.create_subscription(Float64MultiArray, topics.TASK_FEATURES, self._on_features, TASK_FEATURES_QOS)
        self.create_subscription(EpisodeEvent, topics.EPISODE_EVENTS, self._on_event, EVENTS_QOS)
        self._per_state = values["rate_hz"] == 0
        if not self._per_state:
            self.create_timer(1.0 / values["rate_hz"], self._tick)
        rate = "one command per joint state" if self._per_state else f"{values['rate_hz']:g} Hz"
        modes = f"drawn per episode with seed {self._seed}" if self._mode is None else self._mode
        self.get_logger().info(f"{self.expert.name} drives {spec.name} ({n} joints {self.joint_names}) at {rate} on "
                               f"{self._command_pub.topic_name}; modes {modes}")

    # ---- parameters ---------------------------------------------------------------------------
    def _validate(self, name: str, value) -> str | None:
        if name == "mode" and value and value not in self.task.spec.modes:
            return f"one of {', '.join(self.task.spec.modes)} (or '' to draw one per episode)"
        return None

    def _on_params(self, changes: dict) -> None:
        if "mode" in changes:
            self._mode = changes["mode"] or None
        self._state_timeout_s = changes.get("state_timeout_s", self._state_timeout_s)
        self._after_success = changes.get("after_success", self._after_success)

    # ---- inputs -------------------------------------------------------------------------------
    def _on_state(self, msg: JointState) -> None:
        try:
            self._state = self._index.read(msg)
        except JointStateError as exc:
            self.counts["bad_states"] += 1
            self.get_logger().warning(f"ignoring joint state: {exc}", throttle_duration_sec=5.0)
            return
        self._state_time = time.monotonic()
        if self._per_state:
            self._tick()

    def _on_features(self, msg: Float64MultiArray) -> None:
        data = np.asarray(msg.data, dtype=np.float64)
        if data.shape != (self._n_features,) or not np.isfinite(data).all():
            self.counts["bad_features"] += 1
            self.get_logger().warning(f"ignoring task features {list(data)}: {self.task.spec.name} has "
                                      f"{self._n_features} finite features", throttle_duration_sec=5.0)
            return
        self._features = data

    def _on_event(self, msg: EpisodeEvent) -> None:
        if msg.task and msg.task != self.task.spec.name:
            self.get_logger().warning(f"the sim runs {msg.task!r}, this expert is {self.task.spec.name!r}",
                                      throttle_duration_sec=30.0)
        if msg.event == EpisodeEvent.RESET:
            self._episode = int(msg.episode)
            self.expert = self._draw_expert(self._episode)
            self._active = True
            self.counts["episodes"] += 1
            self.get_logger().debug(f"episode {self._episode} (seed {msg.seed}): expert mode {self.expert.mode}")
        elif msg.event == EpisodeEvent.TIMEOUT or (msg.event == EpisodeEvent.SUCCESS and self._after_success == "stop"):
            self._active = False

    def _draw_expert(self, episode: int):
        return self.task.expert(self._mode, np.random.default_rng(self._seed + episode))

    # ---- output -------------------------------------------------------------------------------
    def _tick(self) -> None:
        if not self._active or self._state is None or self._features is None:
            return
        if time.monotonic() - self._state_time > self._state_timeout_s:
            return
        q, qd = self._state
        command = np.asarray(self.expert(np.concatenate([q, qd, self._features])), dtype=np.float64)
        if not np.isfinite(command).all():
            self.get_logger().error("the expert computed a non-finite command: not sent", throttle_duration_sec=5.0)
            return
        self._command_pub.publish(float64_array_msg(command))
        self.counts["commands"] += 1

    def on_stop(self) -> None:
        self.get_logger().info(f"stopping: {self.counts['commands']} commands sent over "
                               f"{self.counts['episodes']} episode resets")


def main(args=None) -> int:
    return run_node(ExpertNode, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
