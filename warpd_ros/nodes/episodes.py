"""warpd_episodes: episodes and success on a real robot, where no simulator says when an episode starts,
ends or succeeds.

Publishes EpisodeEvent on EPISODE_EVENTS (as warpd_sim does), so logs, bags, plots and supervisors read
hardware runs the way they read simulated ones:

- services (std_srvs/Trigger): ``~/start`` starts an episode (RESET, the episode number counting up from 1;
  refused while one runs), ``~/stop`` ends the running one (TIMEOUT, detail "stopped by operator"; an
  episode that already succeeded or timed out just stays ended), ``~/reset`` ends the running one as stop
  does and starts the next, ``~/mark_success`` is the operator's word that it succeeded (SUCCESS, detail
  "operator").
- a success monitor: the position of `link` by forward kinematics of `robot_model` (an MJCF/URDF path, or
  "task:<name>" for a registered task) at the joint positions of the latest JointState (JOINT_STATES),
  against the goal: the latest PoseStamped on GOAL_POSE (frames other than `goal_frame` or "" are ignored
  with a throttled warning; there is no tf here), else the first `goal_features` task features (latched
  TASK_FEATURES: goal x, y[, z]). Within `success_radius` for `success_hold_s` -> SUCCESS with the distance
  and the episode time; after `max_episode_s` (0: never) -> TIMEOUT. Each episode ends with one event.

Distances are 3-D, or in the x-y plane when `planar` is true or the goal has only x and y (reach_around's
two task features). `link` may name a body or a site (reach_around's `fingertip` site hangs 0.22 m below
its `finger` body, at the goal's height). `mode`: when `task` is a registered warpd task that can tell its
modes from the path of its effector point (Task.mode_of_path: reach_around's and the Panda's near/far side
of the pillar), the mode of the link's path over the episode, checked at `check_rate_hz`; else "".
Stamps and episode times are the node clock (use_sim_time works).

    python -m warpd_ros.nodes.episodes --ros-args -p max_episode_s:=20.0 -p autostart_episode:=true
    ros2 service call /warpd_episodes/reset std_srvs/srv/Trigger
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np

from warpd_ros.ros_env import require_ros, run_node

rclpy = require_ros()

from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from warpd_ros import topics  # noqa: E402
from warpd_ros.msg import EpisodeEvent  # noqa: E402
from warpd_ros.params import Param, declare_parameters  # noqa: E402
from warpd_ros.qos import EVENTS_QOS, GOAL_QOS, SENSOR_QOS, TASK_FEATURES_QOS  # noqa: E402

NODE_NAME = "warpd_episodes"
WARN_PERIOD_S = 5.0
STOPPED_BY_OPERATOR = "stopped by operator"

PARAMS = [
    Param("task", "reach_around", "Task name written into every EpisodeEvent.", read_only=True),
    Param("robot_model", "task:reach_around",
          "Robot model for forward kinematics: an MJCF/URDF path, or task:<name> for a registered task "
          "(task:reach_around, task:panda_reach_around).", read_only=True),
    Param("link", "fingertip", "Body (or site) of the model whose position must reach the goal.", read_only=True),
    Param("joint_names", ["shoulder", "elbow", "wrist"],
          "The model's joints that the JointState drives, by name (others stay at zero).", read_only=True),
    Param("success_radius", 0.03, "Success: the link within this distance of the goal, m.", min=0.0, max=10.0),
    Param("success_hold_s", 0.2, "... for at least this long, s (0: the first state inside).", min=0.0, max=60.0),
    Param("max_episode_s", 0.0, "TIMEOUT after this long without success, s (0: none).", min=0.0, max=86400.0),
    Param("planar", False, "Measure distances in the x-y plane only (as reach_around's own success does)."),
    Param("goal_frame", "world",
          "Frame of the robot model's base: goal poses in another frame (other than '') are ignored. No tf.",
          read_only=True),
    Param("goal_features", 2,
          "Until a goal pose arrives, the first this many task features are the goal (x, y[, z]); 0: ignore them.",
          min=0, max=3),
    Param("check_rate_hz", 50.0, "How often success and timeout are checked, Hz.", min=1.0, max=1000.0,
          read_only=True),
    Param("stale_after_s", 0.5, "A joint state older than this does not count towards success, s.",
          min=0.01, max=60.0),
    Param("autostart_episode", False, "Start episode 1 at start-up.", read_only=True),
]


def _mode_classifier(task: str):
    """The registered task named `task` when it can tell modes from an effector path, else None."""
    from warpd_core.tasks.base import Task
    from warpd_core.tasks.registry import make_task, task_names

    if task not in task_names():
        return None
    env = make_task(task)
    return None if type(env).mode_of_path is Task.mode_of_path else env


def load_kinematics(robot_model: str, link: str):
    """`LinkKinematics` of `link` in `robot_model` (warpd_core.kinematics, imported late: MuJoCo)."""
    from warpd_core.kinematics import LinkKinematics

    return LinkKinematics.load(robot_model, link)


class EpisodesNode(Node):
    def __init__(self, name: str = NODE_NAME, **kwargs):
        super().__init__(name, **kwargs)
        values = declare_parameters(self, PARAMS, on_change=self._on_change)
        self.task = values["task"]
        self.joint_names = [str(j) for j in values["joint_names"]]
        if not self.joint_names or len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"joint_names must be non-empty and unique, got {self.joint_names}")
        self.link = values["link"]
        self.kinematics = load_kinematics(values["robot_model"], self.link)
        self.radius = values["success_radius"]
        self.hold_s = values["success_hold_s"]
        self.max_episode_s = values["max_episode_s"]
        self.planar = values["planar"]
        self.goal_frame = values["goal_frame"]
        self.goal_features = values["goal_features"]
        self.stale_after_s = values["stale_after_s"]
        self._warned: dict[str, float] = {}
        self.mode_task = _mode_classifier(self.task)
        self.path: list[np.ndarray] = []  # the link's positions over the running episode (for its mode)
        self.position: np.ndarray | None = None  # the link's latest position, from _measure

        # the episode: number (0 before the first), whether it runs, when it started, and since when the link is in
        self.episode = 0
        self.running = False
        self.ended_as: int | None = None  # the event that ended the latest episode
        self.started_ns = 0
        self.inside_since_ns: int | None = None
        self.distance = math.nan
        # what the monitor knows
        self.q: np.ndarray | None = None
        self.q_ns = 0  # node clock when the joint state arrived
        self.pose_goal: np.ndarray | None = None
        self.features_goal: np.ndarray | None = None

        self.events_pub = self.create_publisher(EpisodeEvent, topics.EPISODE_EVENTS, EVENTS_QOS)
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_state, SENSOR_QOS)
        self.create_subscription(PoseStamped, topics.GOAL_POSE, self._on_goal_pose, GOAL_QOS)
        self.create_subscription(Float64MultiArray, topics.TASK_FEATURES, self._on_task_features, TASK_FEATURES_QOS)
        self.create_service(Trigger, "~/start", self._on_start)
        self.create_service(Trigger, "~/stop", self._on_stop)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_service(Trigger, "~/mark_success", self._on_mark_success)
        self.timer = self.create_timer(1.0 / values["check_rate_hz"], self._check)
        self.get_logger().info(
            f"episodes of {self.task}: {self.link} of {values['robot_model']} within {self.radius:g} m of the goal "
            f"for {self.hold_s:g} s is success; timeout {self.max_episode_s:g} s (0: none); events on "
            f"{self.events_pub.topic_name}")
        if values["autostart_episode"]:
            self._start()

    # ---------------------------------------------------------------- parameters
    def _on_change(self, changes: dict) -> None:  # one executor thread: no locking
        self.radius = changes.get("success_radius", self.radius)
        self.hold_s = changes.get("success_hold_s", self.hold_s)
        self.max_episode_s = changes.get("max_episode_s", self.max_episode_s)
        self.planar = changes.get("planar", self.planar)
        self.goal_features = changes.get("goal_features", self.goal_features)
        self.stale_after_s = changes.get("stale_after_s", self.stale_after_s)
        if "goal_features" in changes and changes["goal_features"] == 0:
            self.features_goal = None
        self.inside_since_ns = None  # a new criterion: the hold starts over

    def _warn(self, key: str, text: str) -> None:
        now = time.monotonic()
        if now - self._warned.get(key, -WARN_PERIOD_S) >= WARN_PERIOD_S:  # throttled per reason
            self._warned[key] = now
            self.get_logger().warning(text)

    # ---------------------------------------------------------------- inputs
    def _on_joint_state(self, msg: JointState) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        missing = [n for n in self.joint_names if n not in index]
        if missing or len(msg.position) != len(msg.name):
            self._warn("joint_state", f"ignoring joint state: lacks {missing}" if missing else
                       f"ignoring joint state: {len(msg.position)} positions for {len(msg.name)} names")
            return
        q = np.array([msg.position[index[n]] for n in self.joint_names], dtype=np.float64)
        if not np.isfinite(q).all():
            self._warn("joint_state", "ignoring joint state: NaN or Inf")
            return
        self.q, self.q_ns = q, self._now_ns()

    def _on_goal_pose(self, msg: PoseStamped) -> None:
        frame = msg.header.frame_id
        if frame not in ("", self.goal_frame):
            self._warn("goal_frame", f"ignoring goal pose in frame {frame!r}: goal_frame is {self.goal_frame!r} "
                       "(no tf here; publish the goal in that frame)")
            return
        p = msg.pose.position
        goal = np.array([p.x, p.y, p.z], dtype=np.float64)
        if not np.isfinite(goal).all():
            self._warn("goal_pose", "ignoring goal pose: NaN or Inf")
            return
        self._set_goal("pose_goal", goal)

    def _on_task_features(self, msg: Float64MultiArray) -> None:
        n = self.goal_features
        if n == 0:
            return
        values = np.asarray(msg.data, dtype=np.float64)
        if values.size < n or not np.isfinite(values[:n]).all():
            self._warn("task_features", f"ignoring task features {values.tolist()}: need {n} finite goal values")
            return
        self._set_goal("features_goal", values[:n].copy())

    def _set_goal(self, attr: str, goal: np.ndarray) -> None:
        previous = getattr(self, attr)
        setattr(self, attr, goal)
        if previous is None or previous.shape != goal.shape or not np.allclose(previous, goal):
            self.inside_since_ns = None  # the goal moved: the hold starts over

    def goal(self) -> np.ndarray | None:
        return self.pose_goal if self.pose_goal is not None else self.features_goal

    # ---------------------------------------------------------------- the monitor
    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _measure(self, now_ns: int) -> float:
        """Distance of the link to the goal at the latest fresh joint state, NaN when either is missing."""
        goal = self.goal()
        if goal is None or self.q is None or (now_ns - self.q_ns) > self.stale_after_s * 1e9:
            return math.nan
        position = np.asarray(self.kinematics.position(self.joint_names, self.q), dtype=np.float64)
        self.position = position
        dims = 2 if self.planar or goal.size == 2 else 3
        return float(np.linalg.norm(position[:dims] - goal[:dims]))

    def _check(self) -> None:
        if not self.running:
            return
        now = self._now_ns()
        self.position = None
        self.distance = self._measure(now)
        if self.position is not None:
            self.path.append(self.position)
        if self.distance <= self.radius:  # False for NaN
            if self.inside_since_ns is None:
                self.inside_since_ns = now
            if (now - self.inside_since_ns) >= self.hold_s * 1e9:
                self._end(EpisodeEvent.SUCCESS, f"{self.link} within {self.radius:g} m for {self.hold_s:g} s")
                return
        else:
            self.inside_since_ns = None
        if self.max_episode_s > 0 and (now - self.started_ns) >= self.max_episode_s * 1e9:
            self._end(EpisodeEvent.TIMEOUT, f"no success within max_episode_s {self.max_episode_s:g} s")

    # ---------------------------------------------------------------- episodes
    def _publish(self, event: int, detail: str, now_ns: int) -> None:
        mode = ""
        if event != EpisodeEvent.RESET and self.mode_task is not None and len(self.path) > 1:
            mode = self.mode_task.mode_of_path(np.array(self.path)) or ""
        msg = EpisodeEvent(event=event, episode=self.episode, seed=0, task=self.task, mode=mode,
                           episode_time=max(now_ns - self.started_ns, 0) / 1e9 if self.episode else 0.0,
                           distance=float(self.distance), detail=detail)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.events_pub.publish(msg)

    def _start(self) -> str:
        self.episode += 1
        self.running, self.ended_as = True, None
        self.started_ns = self._now_ns()
        self.inside_since_ns = None
        self.path = []
        self.distance = self._measure(self.started_ns)
        self._publish(EpisodeEvent.RESET, "started", self.started_ns)
        return f"episode {self.episode} started"

    def _end(self, event: int, detail: str) -> None:
        now = self._now_ns()
        if event != EpisodeEvent.SUCCESS or math.isnan(self.distance):
            self.distance = self._measure(now)
        self._publish(event, detail, now)
        self.running, self.ended_as = False, event
        self.inside_since_ns = None
        name = "SUCCESS" if event == EpisodeEvent.SUCCESS else "TIMEOUT"
        self.get_logger().info(f"episode {self.episode}: {name} ({detail}) after "
                               f"{(now - self.started_ns) / 1e9:.2f} s, distance {self.distance:.3f} m")

    def _stop(self) -> tuple[bool, str]:
        if self.running:
            self._end(EpisodeEvent.TIMEOUT, STOPPED_BY_OPERATOR)
            return True, f"episode {self.episode} stopped"
        if self.episode == 0:
            return False, "no episode has started"
        how = "succeeded" if self.ended_as == EpisodeEvent.SUCCESS else "ended"
        return True, f"episode {self.episode} already {how}"

    @staticmethod
    def _answer(response, success: bool, message: str):
        response.success, response.message = success, message
        return response

    def _on_start(self, _request, response):
        if self.running:
            return self._answer(response, False, f"episode {self.episode} is running: stop it, or call reset")
        return self._answer(response, True, self._start())

    def _on_stop(self, _request, response):
        return self._answer(response, *self._stop())

    def _on_reset(self, _request, response):
        ended = self._stop()[1] if self.episode else ""
        started = self._start()
        return self._answer(response, True, f"{ended}; {started}" if ended else started)

    def _on_mark_success(self, _request, response):
        if not self.running:
            return self._answer(response, False, "no episode is running")
        self.distance = self._measure(self._now_ns())
        self._end(EpisodeEvent.SUCCESS, "operator")
        return self._answer(response, True, f"episode {self.episode} succeeded (operator)")


def main(args=None) -> int:
    return run_node(EpisodesNode, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
