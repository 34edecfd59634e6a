"""warpd_sim: a warpd_core task in MuJoCo, stepped in (scaled) real time, as a ROS 2 robot.

    python -m warpd_ros.nodes.sim --ros-args --params-file config/sim.yaml

Publishes sensor_msgs/JointState on JOINT_STATES after every control step, the task features
(observation entries after the joints, e.g. reach_around's goal x, y) on TASK_FEATURES at
episode start and whenever they change, EpisodeEvents on EPISODE_EVENTS, and optionally
rosgraph_msgs/Clock on /clock. Subscribes joint velocity commands (Float64MultiArray) on
JOINT_COMMANDS. Services: `~/reset` and `~/perturb` (std_srvs/Trigger).

The goal as a geometry_msgs/PoseStamped on GOAL_POSE (frame `world`, with frame_prefix; identity
orientation), published right after the task features (episode start, and whenever the goal moves):
the task's goal_position() with the coordinates that are task features (goal_x/goal_y/goal_z) as
observed, i.e. with the same observation noise, since warpd_planner also takes goals from GOAL_POSE
and must not see a truer goal there than in the features; the others (reach_around's z) are exact.
Tasks that name no goal point publish no goal pose.

For RViz / Foxglove (README "RViz / Foxglove"): the URDF generated from the task's MuJoCo model on
ROBOT_DESCRIPTION (latched, once at start); /tf with every link of the robot, parent link -> child
link from `world`, at tf_rate_hz, stamped like the joint state it goes with; and a MarkerArray on
MARKERS at markers_rate_hz: the task's scene markers (goal, obstacles), the effector's path this
episode, and the points where the controller's active policy changed (from ControllerStatus). /tf
shows the true simulated state; joint_states carry the observation noise, if any. /tf and markers are
computed only while something subscribes to them (their CPU would otherwise be taken from the controller).

How the loop runs:
- A steady-clock wall timer fires every control_dt / real_time_factor seconds; each tick is one
  task step (control_dt of sim time) with the latest command. Without one that arrived within
  command_timeout_s (wall time), or since the episode's reset, it applies the no-command action:
  zero velocities, or for a position interface the joint positions where the lapse began (a
  command of zeros would send every joint to 0 rad). A command sent before a RESET was computed
  for the previous episode and is never applied to the next one. A tick that fires late is not
  made up, and one that comes less than half a period after the previous tick or joint state (rcl
  fires at once after a callback that overran its period) is dropped: sim time is steps x
  control_dt, so a loaded machine slows the sim down instead of making it jump, and a consumer
  that answers each joint state always has its command in before the next step. Each episode-end
  log line reports the real-time factor actually achieved.
- step_on=command (config/record_sim.yaml) is lockstep: a step also waits, up to command_timeout_s,
  for a command received after the latest joint state, so each command is applied to exactly the
  state it answered however late its sender is (recording two robots at once on 2 cores without it,
  ~1% of the steps ran on the command answering the state before). A step also comes at least 5 ms
  after its command arrived, so a recorder that orders by arrival gets the command before the state it
  produced. The sim then runs slower than real time rather than step on a stale command. A robot
  does not wait; this is for recording demonstrations in the sim.
- Perturbations come from the shared spec (perturbation_spec) at perturbation_level, applied by
  warpd_core's Perturber exactly as the evaluation runner applies them: pushes and the target
  shift before the step, action noise and actuation delay on the command, observation noise on
  what is published. The spec file's own `level` is ignored; the parameter sets it, from the next
  episode on.
- Observation noise: the task steps on the true state, but what leaves the node is what a noisy
  sensor would report — JointState positions/velocities and the task features carry the spec's
  Gaussian noise, so the controller and planner see the perturbed observation. Task features are
  published only when the *true* features change (and at episode start); the published value is
  the noisy reading of that step, i.e. one noisy measurement per change, not a 50 Hz stream.
- Episode start: with episode_start=controller_runs (config/sim.yaml) every episode waits, its clock
  stopped and the world held as between episodes, until a ControllerStatus reports RUN — after the
  first, with a policy stamped at or after the episode's reset: the seconds a planner takes to load
  its checkpoint are not counted as a TIMEOUT, and no episode takes a step on a policy planned for
  the previous one (as in-process evaluation plans at step 0; on a busy machine that policy otherwise
  ran for the planner's latency and pushed ~2 in 3 episodes round the far side). A fresh sim has no
  previous episode, so any running policy starts episode 0. `immediately` starts at once.
- Episode end: SUCCESS or TIMEOUT (from the task's StepResult) is published; after a SUCCESS the
  world keeps stepping for hold_after_success_s (0 by default; for recording demonstrations that
  show staying at the goal), then it pauses for reset_delay_s of sim time (the last joint state is
  re-published every tick with a fresh stamp so subscribers do not go stale; commands are not
  applied), then the next episode starts with seed + k (EpisodeEvent RESET).
- Command limits (position_lower/upper, velocity_limit, acceleration_limit: the controller's parameters,
  default none): each command is executed as warpd_controller would send it, through the same
  CommandPipeline, as a robot's own limiter does (libfranka's rate limiter, ros2_control joint_limits).
  For recording: a scripted expert or teleoperator that asks for a 1 rad/s step gets the ramp the
  deployed controller will give its policy, so the recorded states are the states the policy meets at
  deployment (the bag keeps the commands as sent). Zero velocity and the position hold are not limited.
- Stamps: sim time (also published on /clock) when publish_clock is true, else the node clock.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from warpd_core.errors import WarpdError
from warpd_core.perturb.perturber import Perturber
from warpd_core.perturb.spec import PerturbationSpec, Push
from warpd_core.robot_contract import POSITION, interface_of_actions
from warpd_core.robot_description import robot_description
from warpd_core.tasks.registry import make_task
from warpd_ros.limit_params import LIMIT_PARAMS, limits_from_params, validate_limit
from warpd_ros.params import Param, declare_parameters
from warpd_ros.ros_env import require_ros, resolve_package_file, run_node

rclpy = require_ros()

from rclpy.clock import Clock, ClockType  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile  # noqa: E402
import mujoco  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rosgraph_msgs.msg import Clock as ClockMsg  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray, String  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from warpd_ros import topics  # noqa: E402
from warpd_core.runtime.command_pipeline import POSITION as POSITION_INTERFACE  # noqa: E402
from warpd_core.runtime.command_pipeline import VELOCITY, CommandPipeline, LimitedExecution, Mode  # noqa: E402
from warpd_ros.conversions import float64_array_msg, joint_state_msg, ns_to_stamp, stamp_to_ns  # noqa: E402
from warpd_ros.modes import status_mode  # noqa: E402
from warpd_ros.msg import ControllerStatus, EpisodeEvent  # noqa: E402
from warpd_ros.qos import (COMMAND_QOS, EVENTS_QOS, GOAL_QOS, MARKERS_QOS, ROBOT_DESCRIPTION_QOS,  # noqa: E402
                           SENSOR_QOS, STATUS_QOS, TASK_FEATURES_QOS, TF_QOS)
from warpd_ros.visualization import EpisodeMarkers, tf_message  # noqa: E402

NODE_NAME = "warpd_sim"
CLOCK_TOPIC = "/clock"  # the ROS-wide name use_sim_time nodes listen on (not a warpd topic)
CLOCK_QOS = QoSProfile(depth=1)  # reliable keep-last-1: matches rclpy's best-effort /clock subscriber too

PARAMS = [
    Param("task", "reach_around", "warpd_core task to simulate (a joint-space task: obs = [q, qd, features]).",
          read_only=True),
    Param("seed", 0, "Seed of episode 0; episode k uses seed + k.", min=0, max=2**31 - 1, read_only=True),
    Param("real_time_factor", 1.0, "Sim seconds per wall second.", min=0.05, max=20.0),
    Param("publish_clock", False, "Publish the sim time on /clock and stamp messages with it.", read_only=True),
    Param("perturbation_spec", "config/perturbations.yaml",
          "Perturbation spec (YAML); relative paths: current directory, then the package share directory.",
          read_only=True),
    Param("perturbation_level", 0.0, "Perturbation level (0 = none, 1 = the spec's magnitudes); applies from "
          "the next episode, and at once to ~/perturb.", min=0.0, max=1.0),
    Param("max_episodes", 0, "Stop stepping after this many finished episodes (0 = unlimited).", min=0, max=1_000_000),
    Param("reset_delay_s", 0.5, "Pause (sim seconds) after a success or timeout before the next episode.",
          min=0.0, max=5.0),
    Param("hold_after_success_s", 0.0, "After a SUCCESS, keep stepping this many sim seconds (commands applied, "
          "states published) before the reset_delay_s pause: recorded demonstrations then show the robot staying "
          "at the goal (warpd import-bag --hold-after-success).", min=0.0, max=5.0),
    Param("command_timeout_s", 0.1, "Without a command for this long (wall seconds) the sim applies the no-command "
          "action (zero velocities; position interface: the joint positions where the lapse began).",
          min=0.005, max=1.0),
    Param("step_on", "timer", "timer: step every control_dt with the latest command. command: lockstep, for recording "
          "demonstrations: also wait (up to command_timeout_s) for a command received after the latest joint state.",
          choices=("timer", "command"), read_only=True),
    Param("episode_start", "immediately", "When an episode's clock starts: immediately, or once a ControllerStatus "
          "reports RUN with a policy stamped at or after its reset (controller_runs: neither the planner's start-up "
          "nor the previous episode's policy counts against the episode).",
          choices=("immediately", "controller_runs"), read_only=True),
    Param("tf_rate_hz", 50.0, "Rate (wall time) of /tf with the robot's link poses; 0 = no /tf. At most one per "
          "control step.", min=0.0, max=1000.0),
    Param("markers_rate_hz", 10.0, "Rate (wall time) of the MarkerArray (goal, obstacles, path, policy swaps); "
          "0 = none.", min=0.0, max=100.0),
    Param("frame_prefix", "", "Prefix of the tf frame names (as robot_state_publisher's frame_prefix), for several "
          "robots on one /tf, e.g. 'r1/'.", read_only=True),
    *LIMIT_PARAMS,
]


LOCKSTEP_GAP_S = 0.005  # step_on=command: a command is applied no sooner than this after it arrived


class SimNode(Node):
    def __init__(self, node_name: str = NODE_NAME, **kwargs):
        super().__init__(node_name, **kwargs)
        values = declare_parameters(self, PARAMS, self._on_params, validate_limit)
        self._rtf = values["real_time_factor"]
        self._level = values["perturbation_level"]
        self._max_episodes = values["max_episodes"]
        self._reset_delay_s = values["reset_delay_s"]
        self._hold_after_success_s = values["hold_after_success_s"]
        self._holding_until_ns = 0
        self._command_timeout_s = values["command_timeout_s"]
        self._seed = values["seed"]
        self._publish_clock = values["publish_clock"]
        self._tf_rate = values["tf_rate_hz"]
        self._markers_rate = values["markers_rate_hz"]
        self._frame_prefix = values["frame_prefix"]

        self.task = make_task(values["task"])  # WarpdError (with the known names) if unknown
        spec = self.task.spec
        self._n = len(spec.joint_names)
        if spec.action_dim != self._n or spec.obs_dim < 2 * self._n:
            raise WarpdError(f"task {spec.name!r} is not a joint-space task: warpd_sim needs one joint velocity "
                             f"command per joint and obs = [q, qd, features] ({self._n} joints, action_dim "
                             f"{spec.action_dim}, obs_dim {spec.obs_dim})", "use reach_around")
        spec_path = resolve_package_file(values["perturbation_spec"])
        self._base_spec = PerturbationSpec.from_yaml(spec_path)
        self._dt_ns = int(round(spec.control_dt * 1e9))
        self._push_bodies = self.task.push_bodies()

        self._joint_pub = self.create_publisher(JointState, topics.JOINT_STATES, SENSOR_QOS)
        self._features_pub = self.create_publisher(Float64MultiArray, topics.TASK_FEATURES, TASK_FEATURES_QOS)
        self._events_pub = self.create_publisher(EpisodeEvent, topics.EPISODE_EVENTS, EVENTS_QOS)
        self._goal_pub = self.create_publisher(PoseStamped, topics.GOAL_POSE, GOAL_QOS)
        self._has_goal = True  # until the task turns out to name no goal point
        self._clock_pub = self.create_publisher(ClockMsg, CLOCK_TOPIC, CLOCK_QOS) if self._publish_clock else None
        self._init_visualization()
        self.create_subscription(Float64MultiArray, topics.JOINT_COMMANDS, self._on_command, COMMAND_QOS)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_service(Trigger, "~/perturb", self._on_perturb)

        self._command = np.zeros(self._n)
        self._command_time: float | None = None  # monotonic seconds of the latest valid command
        self._position_interface = interface_of_actions(spec.joint_names, spec.action_names) == POSITION
        self._held_q: np.ndarray | None = None  # position interface: where the current command lapse began
        # the controller's limits on what is executed; an unlimited pipeline passes commands unchanged
        self._execution = LimitedExecution(CommandPipeline(
            limits_from_params(spec.joint_names, values), action_limit=1e300, dt=spec.control_dt,
            command_interface=POSITION_INTERFACE if self._position_interface else VELOCITY))
        self._last_true_obs: np.ndarray | None = None
        self._lockstep = values["step_on"] == "command"
        self._answered = False  # a command arrived after the latest joint state (step_on=command)
        self._state_wall = 0.0  # monotonic seconds of the latest joint state (published by every tick taken)
        self.late_commands = 0  # lockstep steps taken without an answer, after command_timeout_s
        self._bad_commands = 0
        self._sim_ns = 0
        self._episode = -1  # index of the current episode (0-based)
        # waiting (for the controller to run a policy) | running | paused (between episodes) | finished
        self._phase = "running"
        self._paused_until_ns = 0
        self._manual_pushes: list[tuple[int, int, np.ndarray]] = []  # (end_step, body, force)
        self._push_rng = np.random.default_rng(np.random.SeedSequence([self._seed, 0x5057]))
        self._last_seen: np.ndarray | None = None
        self._last_true_features: np.ndarray | None = None
        self._ended = self._successes = 0
        self._success_times: list[float] = []
        self._modes: dict[str, int] = {}
        self._episode_wall_start = time.monotonic()
        self.perturber = Perturber(self.task, self._base_spec.at_level(self._level))
        self._timer = None
        self._wait_for_controller = values["episode_start"] == "controller_runs"
        self._reset_ns = 0  # stamp of the latest reset: the episode waits for a policy stamped at or after it
        self._start_episode("start")
        # the episode start waits for it (episode_start=controller_runs); the markers show its policy swaps
        self.create_subscription(ControllerStatus, topics.CONTROLLER_STATUS, self._on_controller_status, STATUS_QOS)
        self._make_timer()
        self.get_logger().info(
            f"simulating {spec.name} ({self._n} joints, control_dt {spec.control_dt * 1e3:.0f} ms, "
            f"real-time factor {self._rtf:g}), perturbations {spec_path} at level {self._level:g}, "
            f"seed {self._seed}" + (", publishing /clock" if self._publish_clock else ""))

    # ---- parameters ---------------------------------------------------------------------------
    def _on_params(self, changes: dict) -> None:
        if "real_time_factor" in changes:
            self._rtf = changes["real_time_factor"]
            if self._timer is not None:
                self._make_timer()
        self._level = changes.get("perturbation_level", self._level)
        self._reset_delay_s = changes.get("reset_delay_s", self._reset_delay_s)
        self._hold_after_success_s = changes.get("hold_after_success_s", self._hold_after_success_s)
        self._command_timeout_s = changes.get("command_timeout_s", self._command_timeout_s)
        self._tf_rate = changes.get("tf_rate_hz", self._tf_rate)
        self._markers_rate = changes.get("markers_rate_hz", self._markers_rate)
        if "max_episodes" in changes:
            self._max_episodes = changes["max_episodes"]
            if self._phase == "finished" and not self._limit_reached():
                self.get_logger().info(f"max_episodes raised to {self._max_episodes}: stepping again")
                self._start_episode("max_episodes raised")
                self._make_timer()

    def _make_timer(self) -> None:
        if self._timer is not None:
            self.destroy_timer(self._timer)
        period = self.task.spec.control_dt / self._rtf
        # the steady clock: the sim is what defines sim time, so its own pace must not follow /clock
        self._timer = self.create_timer(period, self._tick, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _limit_reached(self) -> bool:
        return self._max_episodes > 0 and self._ended >= self._max_episodes

    # ---- inputs -------------------------------------------------------------------------------
    def _on_command(self, msg: Float64MultiArray) -> None:
        data = np.asarray(msg.data, dtype=np.float64)
        if data.shape != (self._n,) or not np.isfinite(data).all():
            self._bad_commands += 1
            why = f"{data.size} values, expected {self._n}" if data.shape != (self._n,) else "non-finite values"
            self.get_logger().warning(f"ignoring command with {why} ({self._bad_commands} ignored so far)",
                                   throttle_duration_sec=5.0)
            return
        self._command = data
        self._command_time = time.monotonic()
        self._held_q = None
        self._answered = True

    def _on_controller_status(self, msg: ControllerStatus) -> None:
        self._note_policy_swap(msg)
        if not self._wait_for_controller:
            return
        if self._phase != "waiting" or status_mode(msg) == Mode.HOLD or not msg.has_active_policy:
            return
        policy_stamp_ns = stamp_to_ns(msg.header.stamp) - int(round(msg.active_policy_age * 1e9))
        if self._episode > 0 and policy_stamp_ns < self._reset_ns:  # the previous episode's: wait for this one's
            return
        self._phase = "running"
        self._episode_wall_start = time.monotonic()
        log = self.get_logger().info if self._episode == 0 else self.get_logger().debug
        log(f"the controller runs policy {msg.active_policy_id}: episode {self._episode} starts")

    def _current_command(self) -> np.ndarray:
        """What the robot executes this step: the latest command within the limits, or the no-command action."""
        q = self._last_true_obs[:self._n]
        if self._command_time is not None and time.monotonic() - self._command_time <= self._command_timeout_s:
            limited = self._execution.execute(self._command, q)
            if limited is not None:
                return limited
        self._execution.held()
        if not self._position_interface:
            return np.zeros(self._n)
        if self._held_q is None:
            self._held_q = q.copy()
        return self._held_q

    # ---- the loop -----------------------------------------------------------------------------
    def _tick(self) -> None:
        if self._phase == "finished":
            return
        now = time.monotonic()
        # every tick taken publishes a joint state, so the latest one dates the previous tick too
        if now - self._state_wall < 0.5 * self.task.spec.control_dt / self._rtf:
            return  # early: rcl makes up a period the previous callback overran (a Panda reset takes ~70 ms)
        if self._lockstep and self._phase in ("running", "holding"):
            if not self._answered:
                if now - self._state_wall < self._command_timeout_s:
                    return  # lockstep: the world waits for the answer to its latest state
                self.late_commands += 1
            elif now - self._command_time < LOCKSTEP_GAP_S:
                return  # a recorder gets the command before the state it produces, not in a race with it
        self._sim_ns += self._dt_ns
        self._send_clock()
        if self._phase == "waiting":
            if self._last_seen is not None:  # the world held, its state fresh for the controller and planner
                self._publish_joint_state(self._last_seen)
            return
        if self._phase == "paused":
            if self._sim_ns >= self._paused_until_ns:
                self._start_episode("next episode")
            elif self._last_seen is not None:
                self._publish_joint_state(self._last_seen)
            return
        step = self.task.steps
        self.perturber.before_step(step)
        self._apply_manual_pushes(step)
        self._announce_scheduled_perturbations(step)
        result = self.task.step(self.perturber.act(self._current_command()))
        seen = self.perturber.observe(result.obs)
        if not (np.isfinite(result.obs).all() and np.isfinite(seen).all()):
            self.get_logger().error(f"episode {self._episode}: the simulation diverged (non-finite state); "
                                    "starting a new episode")
            self._start_episode("simulation diverged")
            return
        self._publish_observation(result.obs, seen)
        self._note_path_point()
        if self._phase == "holding":  # the episode has ended; only the time at the goal is left
            if self._sim_ns >= self._holding_until_ns:
                self._next_after_episode()
        elif result.done:
            self._end_episode(EpisodeEvent.SUCCESS if result.success else EpisodeEvent.TIMEOUT)

    def _apply_manual_pushes(self, step: int) -> None:
        self._manual_pushes = [p for p in self._manual_pushes if p[0] > step]
        for _, body, force in self._manual_pushes:
            self.task.data.xfrc_applied[body, :3] += force

    def _announce_scheduled_perturbations(self, step: int) -> None:
        for push in self.perturber.pushes:
            if push.start_step == step and np.any(push.force):
                duration = (push.end_step - push.start_step) * self.task.spec.control_dt
                self._event(EpisodeEvent.PERTURBATION, self._push_text(push.body, push.force, duration))
        p = self.perturber
        if step == p.shift_step and p.shift is not None and p.spec.level > 0:
            self._event(EpisodeEvent.PERTURBATION, f"target shifted by {np.linalg.norm(p.shift):.3f} m")

    def _push_text(self, body: int, force: np.ndarray, duration_s: float) -> str:
        return f"push {np.linalg.norm(force):.1f} N on {self.task.model.body(body).name} for {duration_s:.2f} s"

    # ---- episodes -----------------------------------------------------------------------------
    def _start_episode(self, why: str) -> None:
        self._episode += 1
        seed = self._seed + self._episode
        self.perturber.restore()  # nominal dynamics before the new perturber records them
        self.perturber = Perturber(self.task, self._base_spec.at_level(self._level))
        obs = self.task.reset(seed)
        self.perturber.reset(seed)
        self._command_time, self._held_q = None, None  # the previous episode's command is not this one's
        self._execution.reset()
        self._manual_pushes = []
        self._phase = "waiting" if self._wait_for_controller else "running"
        self._episode_wall_start = time.monotonic()
        self._reset_ns = self._stamp_ns()
        self._episode_markers.new_episode()
        self._note_path_point()
        self._event(EpisodeEvent.RESET, f"{why}; perturbation level {self._level:g}")
        self._publish_observation(obs, self.perturber.observe(obs), force_features=True)

    def _end_episode(self, event: int) -> None:
        success = event == EpisodeEvent.SUCCESS
        self._event(event)
        self._ended += 1
        episode_time = self.task.steps * self.task.spec.control_dt
        mode = self.task.mode_reached()
        if success:
            self._successes += 1
            self._success_times.append(episode_time)
            self._modes[str(mode)] = self._modes.get(str(mode), 0) + 1
        wall = max(time.monotonic() - self._episode_wall_start, 1e-9)
        self.get_logger().info(
            f"episode {self._episode} (seed {self._seed + self._episode}): {'SUCCESS' if success else 'TIMEOUT'} "
            f"after {episode_time:.2f} s, mode {mode or '-'}, distance {self.task.distance():.3f}; "
            f"{self._successes}/{self._ended} successful ({100.0 * self._successes / self._ended:.0f}%), "
            f"real-time factor {episode_time / wall:.2f}")
        if success and self._hold_after_success_s > 0:
            self._phase = "holding"
            self._holding_until_ns = self._sim_ns + int(self._hold_after_success_s * 1e9)
        else:
            self._next_after_episode()

    def _next_after_episode(self) -> None:
        """Finish, or pause before (or go straight to) the next episode."""
        if self._limit_reached():
            self._finish()
        elif self._reset_delay_s <= 0:
            self._start_episode("next episode")
        else:
            self._phase = "paused"
            self._paused_until_ns = self._sim_ns + int(self._reset_delay_s * 1e9)

    def _finish(self) -> None:
        self._phase = "finished"
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        mean = f"{np.mean(self._success_times):.2f} s" if self._success_times else "-"
        modes = ", ".join(f"{k} {v}" for k, v in sorted(self._modes.items())) or "-"
        self.get_logger().info(
            f"max_episodes={self._max_episodes} reached, stopped stepping: {self._successes}/{self._ended} "
            f"successful ({100.0 * self._successes / self._ended:.0f}%), mean time to success {mean}, "
            f"modes: {modes}; {self._bad_commands} bad commands ignored"
            + (f"; {self.late_commands} lockstep steps taken without a command" if self._lockstep else ""))

    # ---- outputs ------------------------------------------------------------------------------
    def _stamp_ns(self) -> int:
        return self._sim_ns if self._publish_clock else self.get_clock().now().nanoseconds

    def _send_clock(self) -> None:
        if self._clock_pub is not None:
            self._clock_pub.publish(ClockMsg(clock=ns_to_stamp(self._sim_ns)))

    def _publish_joint_state(self, seen: np.ndarray) -> None:
        n = self._n
        stamp_ns = self._stamp_ns()
        self._answered, self._state_wall = False, time.monotonic()
        self._joint_pub.publish(joint_state_msg(self.task.spec.joint_names, seen[:n], seen[n:2 * n], stamp_ns))
        self._publish_visualization(stamp_ns)

    # ---- RViz / Foxglove ----------------------------------------------------------------------
    def _init_visualization(self) -> None:
        """The URDF (published once, latched), /tf and the marker publishers, and their state."""
        self._description = robot_description(self.task.model)
        self._viz_data = mujoco.MjData(self.task.model)  # kinematics of the current qpos, off the sim's MjData
        self._tf_pub = self.create_publisher(TFMessage, topics.TF, TF_QOS)
        self._markers_pub = self.create_publisher(MarkerArray, topics.MARKERS, MARKERS_QOS)
        self._description_pub = self.create_publisher(String, topics.ROBOT_DESCRIPTION, ROBOT_DESCRIPTION_QOS)
        self._description_pub.publish(String(data=self._description.urdf))
        self._episode_markers = EpisodeMarkers(frame=self._frame_prefix + "world")
        self._has_effector = True
        self._last_policy_id: int | None = None
        self._last_tf = self._last_markers = -np.inf  # monotonic seconds

    def _due(self, last: float, rate_hz: float, now: float) -> bool:
        # 10% slack: a tick that fires a little early still counts at a rate equal to the control rate
        return rate_hz > 0 and now - last >= 0.9 / rate_hz

    def _publish_visualization(self, stamp_ns: int) -> None:
        """Only while something subscribes (RViz, Foxglove, a tf listener): on a 2-core host their CPU is
        otherwise taken from the controller beside the sim, which then misses ticks."""
        now = time.monotonic()
        if self._due(self._last_tf, self._tf_rate, now) and self._tf_pub.get_subscription_count() > 0:
            self._last_tf = now
            d = self._viz_data
            d.qpos[:] = self.task.data.qpos  # mocap bodies are no robot links: qpos is all the tree needs
            # the sim's own xpos lags qpos by one physics step (mj_step computes kinematics first)
            mujoco.mj_kinematics(self.task.model, d)
            self._tf_pub.publish(tf_message(self._description, d, stamp_ns, self._frame_prefix))
        if self._due(self._last_markers, self._markers_rate, now) and self._markers_pub.get_subscription_count() > 0:
            self._last_markers = now
            self._markers_pub.publish(self._episode_markers.message(self.task.scene_markers(), stamp_ns))

    def _effector(self) -> np.ndarray | None:
        if not self._has_effector:
            return None
        try:
            return self.task.effector_position()
        except NotImplementedError:
            self._has_effector = False  # a task that names no effector point: no path, no swap points
            return None

    def _note_path_point(self) -> None:
        point = self._effector()
        if point is not None:
            self._episode_markers.add_path_point(point)

    def _note_policy_swap(self, msg: ControllerStatus) -> None:
        """A swap point where the controller's active policy changed while an episode ran (from one policy
        to another: the first policy the controller runs is no swap)."""
        policy = int(msg.active_policy_id) if msg.has_active_policy else None
        changed = policy is not None and self._last_policy_id is not None and policy != self._last_policy_id
        self._last_policy_id = policy if policy is not None else self._last_policy_id
        if changed and self._phase == "running":
            point = self._effector()
            if point is not None:
                self._episode_markers.add_swap(point)

    def _publish_observation(self, true_obs: np.ndarray, seen: np.ndarray, force_features: bool = False) -> None:
        """Task features (when they changed) before the joint state: a consumer that acts on each joint
        state (warpd_expert with rate_hz 0) then acts on the features that go with it."""
        self._last_true_obs = np.asarray(true_obs, dtype=np.float64)
        self._last_seen = np.asarray(seen, dtype=np.float64)
        features = np.asarray(true_obs[2 * self._n:], dtype=np.float64)
        if force_features or self._last_true_features is None or not np.array_equal(features,
                                                                                    self._last_true_features):
            self._last_true_features = features.copy()
            self._features_pub.publish(float64_array_msg(self._last_seen[2 * self._n:]))
            self._publish_goal_pose(self._last_seen[2 * self._n:])
        self._publish_joint_state(self._last_seen)

    def _publish_goal_pose(self, seen_features: np.ndarray) -> None:
        """The task's goal in the world frame, its coordinates that are task features as observed (`seen_features`,
        with the observation noise); stamped like the joint state published with it."""
        if not self._has_goal:
            return
        try:
            goal = np.array(self.task.goal_position(), dtype=np.float64)
        except NotImplementedError:
            self._has_goal = False
            self.get_logger().info(f"{self.task.spec.name} names no goal point: no goal pose on {topics.GOAL_POSE}")
            return
        names = self.task.spec.obs_names[2 * self._n:]
        for axis, name in enumerate(("goal_x", "goal_y", "goal_z")):
            if name in names:
                goal[axis] = seen_features[names.index(name)]
        msg = PoseStamped()
        msg.header.stamp = ns_to_stamp(self._stamp_ns())
        msg.header.frame_id = self._frame_prefix + "world"
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in goal[:3])
        msg.pose.orientation.w = 1.0
        self._goal_pub.publish(msg)

    def _event(self, event: int, detail: str = "") -> None:
        msg = EpisodeEvent(event=event, episode=max(self._episode, 0), seed=self._seed + max(self._episode, 0),
                           task=self.task.spec.name, mode=self.task.mode_reached() or "",
                           episode_time=self.task.steps * self.task.spec.control_dt,
                           distance=float(self.task.distance()), detail=detail)
        msg.header.stamp = ns_to_stamp(self._stamp_ns())
        self._events_pub.publish(msg)

    # ---- services -----------------------------------------------------------------------------
    def _on_reset(self, request, response):
        if self._phase == "finished":
            response.success = False
            response.message = f"max_episodes={self._max_episodes} reached; raise it to run more episodes"
            return response
        self._start_episode("reset requested via ~/reset")
        response.success = True
        response.message = f"episode {self._episode} (seed {self._seed + self._episode}) started"
        return response

    def _on_perturb(self, request, response):
        if self._phase != "running":  # paused, finished, or waiting for the controller
            response.success = False
            response.message = f"no episode is running ({self._phase})"
            return response
        push = self._base_spec.push or Push()
        level = self._level if self._level > 0 else 1.0
        angle = self._push_rng.uniform(0.0, 2.0 * np.pi)
        force = level * push.force * np.array([np.cos(angle), np.sin(angle), 0.0])
        body = int(self._push_bodies[self._push_rng.integers(len(self._push_bodies))])
        steps = max(1, round(push.duration_s / self.task.spec.control_dt))
        self._manual_pushes.append((self.task.steps + steps, body, force))
        detail = self._push_text(body, force, steps * self.task.spec.control_dt) + " (requested via ~/perturb)"
        self._event(EpisodeEvent.PERTURBATION, detail)
        response.success, response.message = True, detail
        return response


def main(args=None) -> int:
    return run_node(SimNode, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
