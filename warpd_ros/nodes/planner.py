"""warpd_planner: samples closed-loop policies from a WARPD checkpoint and publishes them.

    python -m warpd_ros.nodes.planner --ros-args --params-file config/sim.yaml

Every `replan_period_s` (and on `~/replan`, std_srvs/Trigger) it takes the latest joint state and
task features, builds obs = [q, qd (in `joint_names` order), features], samples a policy with
warpd_core's Planner (latent diffusion -> hypernetwork) and publishes it as PolicyWeights on
POLICY_WEIGHTS: planner_id = this node's name, joint_names set, header stamp = the node clock
when it was generated (sim time under use_sim_time), valid_for = `valid_for_s`, and policy_id
strictly increasing, starting at the wall-clock time in ms so ids keep increasing across a
restart (controllers refuse an id that is not newer than the last one from the same planner).
`~/set_task` (warpd_ros/SetTask) switches to another task the checkpoint knows.
The checkpoint's robot contract (warpd_core/robot_contract.py) must match `joint_names` (names and
order), `n_task_features` and `command_interface` ('' = take the checkpoint's), or the node refuses
to start saying what differs; every policy carries that interface. Task features come from
TASK_FEATURES (latched) or from a goal PoseStamped on GOAL_POSE (default QoS: `ros2 topic pub`, RViz,
a perception node), in the checkpoint's task frame; with n_task_features 0 nothing is waited for.
With `signing_key_file` set, every policy is signed (auth_tag = HMAC-SHA256 over the weights and
every metadata field, warpd_core/runtime/signing.py) after its stamp is set, as the last step.
A DiagnosticArray on DIAGNOSTICS (~1 Hz) carries the planning latency (`planner_latency_ms` =
p50 over the last 200 plans, plus p95 and the latest) and counters.

- Planning runs here, in this process, inside the replan timer's callback (after a reset, the input's
  callback that completes it): the single-threaded
  executor handles one callback at a time, so the Planner (and its torch generator) is only ever
  used by one thread, and joint states that arrive meanwhile queue up (the newest is used next).
- The replan timer runs on the node clock (so under use_sim_time "every 16 control steps" holds
  at any real-time factor); joint-state freshness (0.5 s) is judged by wall-clock arrival time.
- Episode resets (plan_on_reset): on an EpisodeEvent RESET the planner plans at once from the first
  joint state stamped at or after it and the task features sent with it, then restarts the replan
  period, so each episode's first policy is planned from its own start state, as in-process
  evaluation does. On the period alone, an episode's first plan came 0-16 steps in, from a state
  that the policy planned at the previous episode's goal had set moving, and ~90% of episodes went
  round the far side (bench/graph_modes.py).
- torch gets one intra-op thread unless OMP_NUM_THREADS says otherwise (run_node's
  limit_math_threads): on a busy 2-core machine, two threads stall each other (measured: sampling
  takes ~8 ms with one thread, 30-440 ms with two while the sim and the controller run).
"""
import sys
import time
from collections import deque

import numpy as np

from warpd_core.errors import WarpdError
from warpd_core.policies.warpd.checkpoint import load_checkpoint
from warpd_core.policies.warpd.planner import Planner
from warpd_core.robot_contract import COMMAND_INTERFACES, read_checkpoint_contract
from warpd_core.runtime.compute_budget import measure_budget
from warpd_core.runtime.signing import load_key, sign_policy
from warpd_ros.params import Param, declare_parameters
from warpd_ros.ros_env import require_ros, resolve_package_file, run_node

rclpy = require_ros()

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402
from rclpy.clock import Clock, ClockType  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from warpd_ros import topics  # noqa: E402
from warpd_ros.conversions import (JointIndex, JointStateError, goal_pose_features, policy_to_msg,  # noqa: E402
                                   stamp_to_ns)
from warpd_ros.msg import EpisodeEvent, PolicyWeights  # noqa: E402
from warpd_ros.qos import EVENTS_QOS, GOAL_QOS, SENSOR_QOS, STATUS_QOS, TASK_FEATURES_QOS, policy_swap_qos  # noqa: E402
from warpd_ros.srv import SetTask  # noqa: E402

NODE_NAME = "warpd_planner"
STATE_FRESH_S = 0.5  # a joint state older than this (wall-clock arrival) is not planned from
LATENCY_WINDOW = 200  # plans the latency percentiles are taken over
DIAGNOSTICS_PERIOD_S = 1.0
RESET_FEATURES_WAIT_S = 0.1  # after a reset, plan without fresh task features once this long has passed
RECENT_STATES = 64  # (stamp, arrival) of the latest joint states, to tell pre- from post-reset inputs

PARAMS = [
    Param("checkpoint", "checkpoints/reach_around/checkpoint.safetensors",
          "WARPD checkpoint (safetensors); relative paths: current directory, then the package share directory.",
          read_only=True),
    Param("task", "", "Task to plan for; '' = the checkpoint's first task. Must be one the checkpoint knows."),
    Param("replan_period_s", 0.32, "Seconds between plans (node clock; 0.32 = 16 control steps of 20 ms).",
          min=0.02, max=60.0),
    Param("diffusion_steps", 0, "Denoising steps per plan; 0 = the checkpoint's own (what it was trained and "
          "benchmarked with).", min=0, max=200),
    Param("sampler", "", "Diffusion sampler: ddim or dpm; '' = the checkpoint's own.", choices=("", "ddim", "dpm")),
    Param("guidance_scale", 1.0, "Classifier-free guidance scale (1 = conditional only).", min=0.0, max=20.0),
    Param("valid_for_s", 1.0, "How long a published policy may run without a successor (0 = until replaced).",
          min=0.0, max=600.0),
    Param("plan_on_reset", True, "On an EpisodeEvent RESET plan at once from the first post-reset joint state and "
          "task features, and restart the replan period there (false: plan on the period only)."),
    Param("seed", 0, "Seed of the sampling noise.", min=0, max=2**31 - 1, read_only=True),
    Param("joint_names", ["shoulder", "elbow", "wrist"], "Joints, in the order the policy observes and commands.",
          read_only=True),
    Param("n_task_features", 2, "Task features after [q, qd] in the observation (TASK_FEATURES length).",
          min=0, max=1024, read_only=True),
    Param("command_interface", "", "velocity or position: must equal the checkpoint's (and the controller's); "
          "'' = the checkpoint's.", choices=("", *COMMAND_INTERFACES), read_only=True),
    Param("device", "cpu", "torch device to sample on (cpu, cuda, cuda:1, ...).", read_only=True),
    Param("control_rate_hz", 1000.0, "The controller's control_rate_hz: the planner refuses to start with a checkpoint "
          "whose policy MLP would not fit its compute budget at that rate.", min=1.0, max=2000.0, read_only=True),
    Param("compute_budget", 0.1, "The controller's compute_budget (share of its control period per forward), "
          "checked on this host at start-up; 0 = no check.", min=0.0, max=1.0, read_only=True),
    Param("signing_key_file", "", "Sign every policy with the key in this file (hex, mode 0600; `warpd keygen`); "
          "'' = publish unsigned.", read_only=True),
]


class PlannerNode(Node):
    def __init__(self, node_name: str = NODE_NAME, **kwargs):
        super().__init__(node_name, **kwargs)
        self._task_names: list[str] | None = None  # known once the checkpoint is loaded
        values = declare_parameters(self, PARAMS, self._on_params, self._validate)
        self._joint_names = tuple(values["joint_names"])
        self._key = load_key(values["signing_key_file"]) if values["signing_key_file"] else None
        self._n_features = values["n_task_features"]
        path = resolve_package_file(values["checkpoint"])
        model = load_checkpoint(path, values["device"])  # WarpdError: missing, corrupt, not a checkpoint
        self._task_names = list(model.task_names)
        task = values["task"] or self._task_names[0]
        reason = self._validate("task", task)
        if reason:
            raise WarpdError(f"parameter task={task!r}: {reason}")
        self._contract = read_checkpoint_contract(path)
        self._contract.require(f"checkpoint {path}", "set joint_names, n_task_features and command_interface as the "
                               "checkpoint was trained (see its robot contract), or train one for this robot",
                               joint_names=self._joint_names, n_task_features=self._n_features,
                               command_interface=values["command_interface"] or None)
        self._check_compute(model, values["control_rate_hz"], values["compute_budget"])
        try:
            self.planner = Planner(model, task, steps=values["diffusion_steps"] or None,
                                   guidance_scale=values["guidance_scale"], sampler=values["sampler"] or None,
                                   valid_for_s=values["valid_for_s"], seed=values["seed"],
                                   planner_id=self.get_name(), device=values["device"])
        except RuntimeError as exc:  # torch: an unknown or unavailable device
            raise WarpdError(f"cannot sample on device {values['device']!r}: {exc}") from None
        # ids continue across restarts: controllers refuse a policy_id that is not newer than the last
        # one they accepted from this planner_id, so a restarted planner must not begin at 1 again.
        # Wall-clock milliseconds stay ahead of the previous run, since one plan takes well over 1 ms.
        self.planner.next_policy_id = time.time_ns() // 1_000_000

        self._index = JointIndex(self._joint_names)
        self._q = self._qd = None
        self._features = np.zeros(0) if self._n_features == 0 else None  # nothing to wait for
        self._state_time: float | None = None  # monotonic arrival time of the latest usable joint state
        self._arrivals = 0  # counts joint states and task features, in the order this node handled them
        self._recent_states: deque = deque(maxlen=RECENT_STATES)  # (header stamp ns, arrival number)
        self._features_arrival = 0
        self._reset: tuple[int, float] | None = None  # pending reset: (its stamp ns, monotonic arrival)
        self._reset_plans = 0
        self._bad_states = self._bad_features = self._failures = self._published = 0
        self._last_policy_id = 0
        self._latencies_ms: deque = deque(maxlen=LATENCY_WINDOW)

        self._policy_pub = self.create_publisher(PolicyWeights, topics.POLICY_WEIGHTS, policy_swap_qos())
        self._diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, STATUS_QOS)
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_state, SENSOR_QOS)
        self.create_subscription(Float64MultiArray, topics.TASK_FEATURES, self._on_features, TASK_FEATURES_QOS)
        if self._n_features:
            self.create_subscription(PoseStamped, topics.GOAL_POSE, self._on_goal, GOAL_QOS)
        self._plan_on_reset = values["plan_on_reset"]
        self.create_subscription(EpisodeEvent, topics.EPISODE_EVENTS, self._on_episode_event, EVENTS_QOS)
        self.create_service(Trigger, "~/replan", self._on_replan)
        self.create_service(SetTask, "~/set_task", self._on_set_task)
        self._period_s = values["replan_period_s"]
        self._timer = self.create_timer(self._period_s, self._on_timer)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        arch = model.architecture
        self.get_logger().info(
            f"loaded {path} (tasks: {', '.join(self._task_names)}; policy MLP {list(arch.layer_sizes)}); "
            f"planning for {task} every {self._period_s:g} s with {self.planner.sampling_steps} "
            f"{self.planner.sampling_method} steps, guidance {values['guidance_scale']:g}, on {values['device']}")

    # ---- parameters ---------------------------------------------------------------------------
    def _validate(self, name: str, value) -> str | None:
        if name == "task" and value and self._task_names is not None and value not in self._task_names:
            return f"the checkpoint does not know this task; it knows: {', '.join(self._task_names)}"
        if name == "joint_names" and (not value or len(set(value)) != len(value)):
            return "needs at least one joint and no duplicates"
        return None

    def _check_compute(self, model, control_rate_hz: float, fraction: float) -> None:
        """Refuse a checkpoint whose every policy the controller would refuse (over_compute_budget): timed on
        this host, so on a planner host faster than the controller's it is the first line, not the last."""
        arch = model.architecture
        budget = measure_budget(arch.obs_dim, arch.action_dim, 1.0 / control_rate_hz, fraction)
        why = budget.refusal(arch.layer_sizes)
        if why is not None:
            raise WarpdError(f"the checkpoint's policies would not fit the controller at {control_rate_hz:g} Hz: {why}",
                             "lower the controller's control_rate_hz (and this node's), or train smaller policies")

    def _on_params(self, changes: dict) -> None:
        p = self.planner
        if "plan_on_reset" in changes:
            self._plan_on_reset = changes["plan_on_reset"]
            self._reset = None
        if "task" in changes:
            p.task = changes["task"] or self._task_names[0]
            self.get_logger().info(f"planning for task {p.task} from the next plan on")
        if "diffusion_steps" in changes:
            p.steps = changes["diffusion_steps"] or None
        if "sampler" in changes:
            p.sampler = changes["sampler"] or None
        p.guidance_scale = changes.get("guidance_scale", p.guidance_scale)
        p.valid_for_s = changes.get("valid_for_s", p.valid_for_s)
        if "replan_period_s" in changes:
            self._period_s = changes["replan_period_s"]
            self.destroy_timer(self._timer)
            self._timer = self.create_timer(self._period_s, self._on_timer)

    # ---- inputs -------------------------------------------------------------------------------
    def _on_joint_state(self, msg: JointState) -> None:
        try:
            self._q, self._qd = self._index.read(msg)
        except JointStateError as exc:
            self._bad_states += 1
            self.get_logger().warning(f"ignoring joint state: {exc}", throttle_duration_sec=5.0)
            return
        self._state_time = time.monotonic()
        self._arrivals += 1
        self._recent_states.append((stamp_to_ns(msg.header.stamp), self._arrivals))
        self._plan_if_reset()

    def _on_goal(self, msg: PoseStamped) -> None:
        try:
            data = goal_pose_features(msg, self._contract.task_feature_names, self._contract.task_frame)
        except ValueError as exc:
            self._bad_features += 1
            self.get_logger().warning(f"ignoring goal on {topics.GOAL_POSE}: {exc}", throttle_duration_sec=5.0)
            return
        self._take_features(data)

    def _on_features(self, msg: Float64MultiArray) -> None:
        self._take_features(np.asarray(msg.data, dtype=np.float64))

    def _take_features(self, data: np.ndarray) -> None:
        if data.size != self._n_features or not np.isfinite(data).all():
            self._bad_features += 1
            self.get_logger().warning(f"ignoring task features: {data.size} values (expected {self._n_features})"
                                   if data.size != self._n_features else "ignoring task features: NaN or Inf",
                                   throttle_duration_sec=5.0)
            return
        self._features = data
        self._arrivals += 1
        self._features_arrival = self._arrivals
        self._plan_if_reset()

    def _on_episode_event(self, msg: EpisodeEvent) -> None:
        if msg.event == EpisodeEvent.RESET and self._plan_on_reset:
            self._reset = (stamp_to_ns(msg.header.stamp), time.monotonic())
            self._plan_if_reset()

    def _plan_if_reset(self) -> None:
        """Plan for a pending reset once a joint state stamped at or after it is here, and task features
        that arrived after the last pre-reset state (the sim sends them at every reset and none while
        paused; topics may arrive in either order), or RESET_FEATURES_WAIT_S has passed without. Timer
        plans wait meanwhile; a reset that gets no post-reset state within STATE_FRESH_S is dropped."""
        if self._reset is None or not self._recent_states:
            return
        reset_ns, reset_at = self._reset
        waited = time.monotonic() - reset_at
        if self._recent_states[-1][0] < reset_ns:  # no post-reset state yet
            if waited > STATE_FRESH_S:
                self._reset = None
                self.get_logger().warning(f"no joint state stamped after the episode reset within {STATE_FRESH_S} s; "
                                          "planning on the replan period again")
            return
        pre_reset = max((arrival for stamp, arrival in self._recent_states if stamp < reset_ns), default=0)
        if self._n_features and self._features_arrival <= pre_reset and waited < RESET_FEATURES_WAIT_S:
            return
        self._reset = None
        msg, _ = self._plan()
        if msg is not None:
            self._reset_plans += 1
            self._timer.reset()  # the next replan one full period after this first plan of the episode

    # ---- planning -----------------------------------------------------------------------------
    def _readiness(self) -> str | None:
        if self._state_time is None:
            return f"no joint state received yet on {topics.JOINT_STATES}"
        age = time.monotonic() - self._state_time
        if age > STATE_FRESH_S:
            return f"the latest joint state is {age:.1f} s old (> {STATE_FRESH_S} s)"
        if self._features is None:
            return f"no task features received yet on {topics.TASK_FEATURES} or a goal on {topics.GOAL_POSE}"
        return None

    def _on_timer(self) -> None:
        if self._reset is None:  # else the latest state is the previous episode's: wait for the new one
            self._plan()

    def _plan(self) -> tuple[PolicyWeights | None, str]:
        """Plan and publish one policy; (message, '') or (None, why not)."""
        why = self._readiness()
        if why:
            self.get_logger().warning(f"not planning: {why}", throttle_duration_sec=5.0)
            return None, why
        start = time.perf_counter()
        obs = np.concatenate([self._q, self._qd, self._features])
        try:
            policy = self.planner.generate(obs)
            policy.joint_names = self._joint_names
            policy.command_interface = self._contract.command_interface
            policy.stamp_ns = self.get_clock().now().nanoseconds
            if self._key is not None:
                sign_policy(policy, self._key)  # last: every field it covers is final now
            msg = policy_to_msg(policy)  # validates: nothing unrunnable leaves this node
        except (WarpdError, ValueError, RuntimeError) as exc:
            self._failures += 1
            self.get_logger().error(f"planning failed ({self._failures} so far): {exc}", throttle_duration_sec=5.0)
            return None, f"planning failed: {exc}"
        self._policy_pub.publish(msg)
        self._latencies_ms.append((time.perf_counter() - start) * 1e3)
        self._published += 1
        self._last_policy_id = msg.policy_id
        p50, p95 = self._latency_percentiles()
        self.get_logger().info(f"published {self._published} policies (latest {msg.policy_id}, task {msg.task}); "
                               f"planning latency p50 {p50:.1f} ms, p95 {p95:.1f} ms", throttle_duration_sec=10.0)
        return msg, ""

    def _latency_percentiles(self) -> tuple[float, float]:
        if not self._latencies_ms:
            return float("nan"), float("nan")
        p50, p95 = np.percentile(np.asarray(self._latencies_ms), [50, 95])
        return float(p50), float(p95)

    # ---- services -----------------------------------------------------------------------------
    def _on_replan(self, request, response):
        msg, why = self._plan()
        response.success = msg is not None
        response.message = f"published policy {msg.policy_id}" if msg is not None else why
        return response

    def _on_set_task(self, request, response):
        reason = self._validate("task", request.task) if request.task else "task must not be empty"
        if reason is None:
            result = self.set_parameters([Parameter("task", value=request.task)])[0]
            reason = None if result.successful else result.reason
        response.success = reason is None
        response.message = f"planning for {request.task}" if reason is None else f"refused {request.task!r}: {reason}"
        return response

    # ---- diagnostics --------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        p50, p95 = self._latency_percentiles()
        last = self._latencies_ms[-1] if self._latencies_ms else float("nan")
        not_ready = self._readiness()
        if not_ready:
            level, message = DiagnosticStatus.WARN, f"not planning: {not_ready}"
        elif self._failures and not self._published:
            level, message = DiagnosticStatus.ERROR, "every plan so far failed"
        elif not self._published:
            level, message = DiagnosticStatus.WARN, "ready, waiting for the first replan tick"
        else:
            level, message = DiagnosticStatus.OK, f"planning for {self.planner.task} every {self._period_s:g} s"
        values = {
            "planner_latency_ms": f"{p50:.3f}", "planner_latency_p95_ms": f"{p95:.3f}",
            "planner_latency_last_ms": f"{last:.3f}", "policies_published": str(self._published),
            "last_policy_id": str(self._last_policy_id), "plan_failures": str(self._failures),
            "task": self.planner.task, "replan_period_s": f"{self._period_s:g}",
            "signing": "on" if self._key is not None else "off",
            "diffusion_steps": str(self.planner.sampling_steps), "sampler": self.planner.sampling_method,
            "ignored_joint_states": str(self._bad_states), "ignored_task_features": str(self._bad_features),
            "reset_plans": str(self._reset_plans),
        }
        diag = DiagnosticArray(status=[DiagnosticStatus(
            level=level, name=self.get_name(), hardware_id=self.get_fully_qualified_name(), message=message,
            values=[KeyValue(key=k, value=v) for k, v in values.items()])])
        diag.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(diag)


def main(args=None) -> int:
    return run_node(PlannerNode, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
