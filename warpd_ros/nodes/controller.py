"""warpd_controller: runs the active generated policy in closed loop and swaps in new ones atomically.

    python -m warpd_ros.nodes.controller --ros-args --params-file config/sim.yaml

Observation = [q, qd (in `joint_names` order), task features]; the action is one command per joint,
published on JOINT_COMMANDS at `control_rate_hz`. `command_interface` says what it means, as the
robot's ros2_control forward command controller does: `velocity` (clipped to ±action_limit, then
the command limits) or `position` (targets inside the position limits that move no faster than the
velocity limit; HOLD holds the position measured when the HOLD began, never zeros). With
`checkpoint` set, configure refuses unless the checkpoint's robot contract (joint names in order,
command interface, task features) matches this configuration; every policy carries its interface
and joint names and is refused when they differ. Limits may also come from a URDF
(`robot_description`: the XML, or a file path), per joint the tighter of it and the limit parameters.
Subscribes JOINT_STATES, TASK_FEATURES and POLICY_WEIGHTS; publishes ControllerStatus and a
DiagnosticArray at `status_rate_hz`; service `~/promote_shadow` (std_srvs/Trigger).

A managed (lifecycle) node, as ros2_control users expect; transitions through the standard
lifecycle services (`ros2 lifecycle set /warpd_controller configure`, ...):
- unconfigured: parameters declared (rqt shows them), status says why nothing is commanded.
- configure: parameters, limits, signing key, policy contract, the compute budget (this host's MLP
  speed measured once, warpd_core/runtime/compute_budget.py); subscriptions. Nothing is commanded.
- activate: refused (FAILURE, the reason in the log and in ControllerStatus.mode_reason) unless a
  valid joint state newer than stale_timeout_s is at hand; then the control loop starts.
- deactivate: one hold command, then no more commands; policies are dropped.
- cleanup: back to unconfigured. shutdown (from any state): hold first if active.
`autostart` (default true; bringup and the launch files) configures at start and activates as soon
as joint states are fresh, so the sim demo runs as it always did; with autostart false a HIL user
keeps the controller unconfigured until they drive the transitions.

Modes and swaps are decided in warpd_core/runtime/swap.py, and each tick's command (clip -> limits
-> finite -> hold) in warpd_core/runtime/command_pipeline.py (no ROS there); this node is the glue:
- A policy whose forward pass would not fit `compute_budget` of the control period on this host is
  refused (over_compute_budget), so an oversized one never runs; a message too large for any policy
  within the budget is refused by its length, undecoded. Receiving such messages still costs the
  loop, so a flood of them (3 within 1 s) makes the controller stop listening to the policy topic for
  `oversize_pause_s` (doubling while the flood goes on; warpd_core/runtime/oversize_guard.py); the
  running policy keeps running meanwhile, and expires into HOLD as usual.
- Every PolicyWeights is converted and validated in its own callback, never inside the control
  timer's, and installed with one reference assignment (PolicySlot), so a tick runs
  either the old policy or the new one. A bad policy is counted with its reason and the active
  one keeps running; nothing raised there can escape the callback.
- HOLD (no policy, policy expired, joint states stale or invalid) publishes the hold command:
  zeros for hold_mode=zero_velocity; for hold_mode=last_command the last policy command, but only
  while the inputs are good (the HOLD is about the policy) and for at most stale_timeout_s after
  it was computed, then zeros. A velocity is motion, not a hold: stale or invalid joint states
  give zeros at once, so the robot never moves blind longer than the controller trusts its inputs.
- Episodes (hold_between_episodes, on in config/hil.yaml): HOLD from an EpisodeEvent SUCCESS or
  TIMEOUT until a policy stamped at or after the next RESET is active (warpd_core EpisodeGate). The
  position HOLD target is latched at the episode's end and latched again at the RESET, or when the
  robot is found more than hold_relatch_rad from it (a reset moved it): a robot put back at a start
  posture stays there instead of being driven back to where the episode ended, and a target never
  follows the measured position tick by tick (on an arm that sags under its own weight that walks
  the target down and the arm with it).
- The policy is evaluated at the rate it was trained at (policy_rate_hz; 0 = the checkpoint's), on the
  newest joint state, and its action held between evaluations, as the demonstrations held each command;
  the loop still ticks at control_rate_hz for limits, staleness and HOLD (warpd_core/runtime/policy_rate.py:
  a 50 Hz policy fed 500 Hz states stalled in 9 of 30 episodes).
- A non-finite action is never published: that tick publishes the hold command and is counted.
- Command limits (warpd_core/runtime/command_limits.py) come after the policy and the action_limit
  clip: velocity, position (stop at the limit, brake in time) and rate (acceleration) limits per
  joint, from the limit parameters. A HOLD is not rate-limited: zero velocity is published at once
  (stopping is never delayed); a held last_command still passes the position/velocity envelope.
- Signatures (warpd_core/runtime/signing.py): with signing_key_file set, a signed policy must verify;
  with require_signature, unsigned ones are refused too. Refusals are counted like any other
  ("unsigned", "bad_signature"), as are replays ("replayed": policy_id not newer than the last one
  from that planner; "stale_stamp": older than max_policy_age_s).
- Clocks: the control and status timers run on the steady clock (a sim /clock must not pace a
  1 kHz loop); policy stamps, expiry and joint-state freshness use the node's ROS clock (sim time
  under use_sim_time), the clock planners stamp policies with.
- One thread: the EventsExecutor (warpd_ros.ros_env.run_node) runs timers, subscriptions and
  services one at a time, so the slot's writers are serialised and each MLPPolicy is only ever
  used by one thread. A PolicyWeights is handled where it cannot delay a tick: at once if the next
  tick is far enough away, else in a one-shot timer right after that tick (see `_on_policy`).
- BLAS runs on one thread (run_node's limit_math_threads): at these sizes that is faster and
  predictable on a busy machine.
"""
import dataclasses
import gc
import sys
import time
from collections import deque

import numpy as np

from warpd_core.errors import PolicyValidationError, WarpdError
from warpd_core.robot_contract import DEFAULT_FRAME, read_checkpoint_contract
from warpd_core.runtime.command_limits import limits_from_urdf, tightest
from warpd_core.runtime.command_pipeline import POSITION, VELOCITY
from warpd_core.runtime.command_pipeline import REASON_NO_POLICY, CommandPipeline, Mode, inputs_ok
from warpd_core.runtime.compute_budget import REASON_COMPUTE, ComputeBudget, measure_budget
from warpd_core.runtime.oversize_guard import OversizeGuard
from warpd_core.runtime.policy_rate import PolicySchedule
from warpd_core.runtime.signing import PolicyVerifier, load_key
from warpd_core.runtime.swap import (ActivePolicy, ControllerSpec, EpisodeGate, LoopTimer, PolicySlot, decide_mode,
                                    state_time_ns)
from warpd_ros.limit_params import LIMIT_NAMES, LIMIT_PARAMS, limits_from_params, validate_limit
from warpd_ros.params import Param, declare_parameters
from warpd_ros.realtime import apply_realtime
from warpd_ros.ros_env import require_ros, resolve_package_file, run_node

rclpy = require_ros()

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402
from rclpy.clock import Clock, ClockType  # noqa: E402
from rclpy.duration import Duration  # noqa: E402
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn  # noqa: E402
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy  # noqa: E402
from rclpy.serialization import deserialize_message  # noqa: E402

RCLError = _rclpy.RCLError
from geometry_msgs.msg import PoseStamped  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from warpd_ros import topics  # noqa: E402
from warpd_ros.admission import admit_policy  # noqa: E402
from warpd_ros.conversions import (JointIndex, JointStateError, default_goal_features, float64_array_msg,  # noqa: E402
                                   goal_pose_features, ns_to_stamp, stamp_to_ns)
from warpd_ros.modes import mode_from_status, status_code  # noqa: E402
from warpd_ros.msg import ControllerStatus, EpisodeEvent, PolicyWeights  # noqa: E402
from warpd_ros.qos import (COMMAND_QOS, EVENTS_QOS, GOAL_QOS, SENSOR_QOS, STATUS_QOS, TASK_FEATURES_QOS,  # noqa: E402
                           policy_swap_qos)

NODE_NAME = "warpd_controller"
SWAP_SLACK_NS = 500_000  # handle a PolicyWeights at once only if the next tick is further away than this
OVERSIZE_MIN_BYTES = 1_000_000  # a refused policy this large counts towards the flood pause (oversize_pause_s)
HOLD_ACK_TIMEOUT_S = 0.5  # the last (hold) command waits this long at most for every subscriber's acknowledgement
SWAP_RUN, SWAP_SHADOW = "run", "shadow"
REASON_SHUTDOWN = "controller shutting down"
REASON_UNCONFIGURED = "unconfigured (lifecycle)"
REASON_INACTIVE = "inactive (lifecycle)"
REASON_FINALIZED = "finalized (lifecycle)"
AUTOSTART_RETRY_S = 0.05  # autostart: how often activation looks for fresh joint states
PARAMS = [
    Param("joint_names", ["shoulder", "elbow", "wrist"],
          "Joints the policy observes and commands, in observation/command order.", read_only=True),
    Param("n_task_features", 2, "Observation entries after [q, qd] (from the task features topic).",
          min=0, max=1024, read_only=True),
    Param("command_interface", VELOCITY, "What the commands mean to the robot's forward command controller: "
          "velocity (rad/s) or position (rad targets; HOLD holds the measured position). Must match the "
          "checkpoint's and every policy's.", choices=(VELOCITY, POSITION), read_only=True),
    Param("checkpoint", "", "The planner's checkpoint: configure refuses unless its robot contract (joint names "
          "in order, command interface, task features) matches this node's. '' = check each policy only.",
          read_only=True),
    Param("robot_description", "", "URDF (the XML, or a file path) whose joint limits also apply, per joint the "
          "tighter of it and the limit parameters. '' = the limit parameters only.", read_only=True),
    Param("autostart", True, "Configure at start and activate once joint states are fresh (what bringup and the "
          "launch files do). false: stay unconfigured until a lifecycle transition (ros2 lifecycle set ...).",
          read_only=True),
    Param("control_rate_hz", 1000.0, "Control loop rate (Hz); a change re-creates the timer. Refused while the "
          "active policy would not fit the new period (compute_budget).", min=1.0, max=2000.0),
    Param("policy_rate_hz", 0.0, "How often the policy is evaluated on the newest joint state (Hz); the loop holds "
          "its action in between, as the demonstrations held each command. 0 = the rate the checkpoint was "
          "trained at (its robot contract), or every tick where that is unknown. >= control_rate_hz: every tick "
          "(a policy fed faster states than it was trained on can stall; warpd_core/runtime/policy_rate.py).",
          min=0.0, max=10000.0),
    Param("compute_budget", 0.1, "Share of the control period one policy forward may take, as predicted from "
          "this host's measured MLP speed; a policy over it is refused (over_compute_budget). The rest of the "
          "period goes to the tick itself, joint states, swaps and status. 0 = no budget (a host you have "
          "verified yourself).", min=0.0, max=1.0),
    Param("oversize_pause_s", 2.0, "After 3 PolicyWeights of 1 MB or more within 1 s refused as too large for the "
          "compute budget, stop listening to the policy topic for this long (s): receiving such a message costs the "
          "loop even when it is refused undecoded. Doubles while the flood goes on (up to 60 s); the running policy "
          "keeps running meanwhile. 0 = always listen.", min=0.0, max=60.0),
    Param("stale_timeout_s", 0.1, "HOLD when the newest joint state is older than this (s): by its header stamp "
          "(see check_state_stamps) or, if later, by when it arrived.", min=0.001, max=5.0),
    Param("check_state_stamps", True,
          "Judge joint-state age by header.stamp too, so late-delivered or replayed states HOLD. Needs the "
          "driver's clock synchronised with this node's (the same /clock under use_sim_time); false: arrival only."),
    Param("hold_between_episodes", False, "HOLD from an episode's end (EpisodeEvent SUCCESS/TIMEOUT) until a policy "
          "stamped at or after the next RESET is active: the robot never runs the last episode's policy while it is "
          "put back at a start posture, nor before the planner has planned for the new episode "
          "(config/hil.yaml: true).", read_only=True),
    Param("hold_relatch_rad", 0.05, "Position interface, between episodes: when a joint is found further than this "
          "(rad) from the HOLD target, the robot was moved by a reset and the target is latched again where it now "
          "is. Above the arm's sag under gravity, so the target never creeps.", min=0.001, max=1.0),
    Param("hold_mode", "zero_velocity",
          "Command published in HOLD: zeros; or the last policy command for at most stale_timeout_s when the "
          "HOLD is about the policy (none/expired), zeros when joint states are stale or invalid. Velocity "
          "interface only: a position interface always holds the position measured when the HOLD began.",
          choices=("zero_velocity", "last_command")),
    Param("action_limit", 1.5, "Every velocity command is clipped to ±action_limit (joint velocity units; the "
          "velocity interface only).", min=0.0, max=10.0),
    Param("swap_mode", SWAP_RUN,
          "run: a newly accepted policy becomes active at once. shadow: it runs beside the active one, "
          "unactuated, until ~/promote_shadow.", choices=(SWAP_RUN, SWAP_SHADOW)),
    Param("max_clock_skew_s", 0.5, "Reject policies stamped further than this in the future (s).", min=0.0, max=10.0),
    Param("max_policy_age_s", 0.0, "Reject policies stamped longer ago than this (s): the replay window that "
          "still holds after a controller restart. 0 = any age.", min=0.0, max=3600.0),
    Param("require_signature", False, "Run only policies whose auth_tag verifies with signing_key_file.",
          read_only=True),
    Param("signing_key_file", "", "File with the shared policy signing key (hex, mode 0600; `warpd keygen`). "
          "'' = none: auth tags are ignored. When set, a tag that is present must verify.", read_only=True),
    *LIMIT_PARAMS,
    Param("status_rate_hz", 10.0, "Rate of ControllerStatus and diagnostics (Hz).", min=1.0, max=100.0),
    Param("realtime_priority", 0,
          "0: normal scheduling. 1..98: run every thread of this process SCHED_FIFO at this priority, so the "
          "control loop preempts the planner, the sim and everything else (needs CAP_SYS_NICE).",
          min=0, max=98, read_only=True),
    Param("cpu", -1, "-1: any CPU. N: pin this process to CPU N (keep the planner off it).",
          min=-1, max=1023, read_only=True),
    Param("lock_memory", False, "mlockall the process so page faults never stall a tick (needs RLIMIT_MEMLOCK).",
          read_only=True),
]


def _validate(name: str, value) -> str | None:
    reason = validate_limit(name, value)
    if reason:
        return reason
    if name == "joint_names":
        if not value or any(not n for n in value):
            return "needs at least one non-empty joint name"
        if len(set(value)) != len(value):
            return "joint names must be unique"
    return None


class ControllerNode(LifecycleNode):
    """A managed node, as ros2_control users expect (the lifecycle is in the module docstring)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs):
        super().__init__(node_name, **kwargs)
        self._guard_change_state()
        p = declare_parameters(self, PARAMS, self._on_params, self._check_change)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._ros_clock = self.get_clock()
        self._cmd_msg = Float64MultiArray()  # reused every tick: its data is replaced, never appended to
        self._control_rate_hz = float(p["control_rate_hz"])
        self._status_rate_hz = float(p["status_rate_hz"])
        self._pipeline: CommandPipeline | None = None  # set while configured: the mark of "configured"
        self._cmd_pub = self._control_timer = self._swap_timer = self._autostart_timer = None
        self._inputs: list = []  # the subscriptions, created on configure
        self._policy_sub = None  # the policy topic's, also created on configure; dropped while a flood is paused
        self._policy_input_timers: list = []  # one-shots that pause and resume it, destroyed from outside their own
        self._policy_input_paused = ""  # why the policy topic is not listened to now
        self._lifecycle_reason = REASON_UNCONFIGURED
        self._configure_error: Exception | None = None
        self._reset_bookkeeping()

        # Status and diagnostics in every state: they say why nothing is commanded.
        self._status_pub = self.create_publisher(ControllerStatus, topics.CONTROLLER_STATUS, STATUS_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, STATUS_QOS)
        self.create_service(Trigger, "~/promote_shadow", self._on_promote)
        self._status_timer = self.create_timer(1.0 / self._status_rate_hz, self._on_status, clock=self._steady)
        self._realtime_request = (int(p["realtime_priority"]), int(p["cpu"]), bool(p["lock_memory"]))
        self._realtime = "off"
        if self._realtime_request != (0, -1, False):
            # Once the executor and its threads exist (they are created after this constructor).
            self._realtime_timer = self.create_timer(0.05, self._apply_realtime, clock=self._steady)
        if p["autostart"]:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise self._configure_error  # the process ends with its message and hint
            # activate as soon as joint states are fresh (activation refuses stale ones)
            self._autostart_timer = self.create_timer(AUTOSTART_RETRY_S, self._autostart_activate, clock=self._steady)
        else:
            self.get_logger().info("autostart is off: unconfigured until a lifecycle transition "
                                   f"(ros2 lifecycle set {self.get_fully_qualified_name()} configure, then activate)")

    def _guard_change_state(self) -> None:
        """rclpy 7 (Jazzy) raises RCLError out of the change_state service for a transition that is not
        valid from the current state (activate while unconfigured), which would end this process: any
        node on the graph could stop the controller that way. Answer such a request with success=false,
        as Kilted's rclpy does."""
        service = getattr(self, "_service_change_state", None)
        if service is None:
            return
        original = service.callback

        def guarded(request, response):
            try:
                return original(request, response)
            except RCLError as exc:
                self.get_logger().warning(f"refused lifecycle transition {request.transition.id}"
                                          f"{' (' + request.transition.label + ')' if request.transition.label else ''}"
                                          f": {exc}")
                response.success = False
                return response
        service.callback = guarded

    def _reset_bookkeeping(self) -> None:
        """Policies, inputs and counters as at start: after construction and after cleanup."""
        self._q = self._qd = None
        self._task = None
        self._obs: np.ndarray | None = None
        self._last_state_ns: int | None = None
        self._joint_error: str | None = None
        self._task_error: str | None = None
        self._input_error: str | None = None
        self._slot = PolicySlot()
        self._last_accepted: dict[str, int] = {}
        self._accepted = self._rejected = 0
        self._last_rejection = ""
        self._rejections_by_reason: dict[str, int] = {}
        self._rejections_reported = 0
        self._nonfinite_actions = self._nonfinite_reported = 0
        self._missed_reported = 0
        self._shadow_diff_max = 0.0
        self._shadow_nonfinite = 0
        self._swap_work_max_us = self._swap_delay_max_ms = 0.0
        self._last_warning: dict[str, float] = {}
        self._pending_policies: deque[PolicyWeights] = deque()
        self._mode, self._mode_reason = Mode.HOLD, self._lifecycle_reason
        self._last_command: np.ndarray | None = None
        self._published = None  # the last command sent (a HOLD sends zeros first)
        self._last_command_ns: int | None = None
        self._hold_position: np.ndarray | None = None  # position interface: latched when a HOLD begins
        self._held_action: np.ndarray | None = None  # the policy's action since its last evaluation
        self._episode_gate: EpisodeGate | None = None  # with hold_between_episodes (configure)
        self._loop = LoopTimer(self._control_rate_hz)

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Read the parameters, build limits, key, pipeline and compute budget; subscribe. Nothing is commanded."""
        p = {param.name: self.get_parameter(param.name).value for param in PARAMS}
        try:
            spec = ControllerSpec(tuple(p["joint_names"]), int(p["n_task_features"]), float(p["max_clock_skew_s"]),
                                  float(p["max_policy_age_s"]), p["command_interface"])
            goal = (default_goal_features(spec.n_task_features), DEFAULT_FRAME)
            trained_rate_hz = None
            if p["checkpoint"]:
                contract = read_checkpoint_contract(resolve_package_file(p["checkpoint"]))
                goal = (contract.task_feature_names, contract.task_frame)
                trained_rate_hz = contract.control_rate_hz
                contract.require(
                    f"checkpoint {p['checkpoint']}", "configure joint_names, command_interface and n_task_features "
                    "as the checkpoint was trained, or deploy a checkpoint trained for this robot",
                    joint_names=spec.joint_names, command_interface=spec.command_interface,
                    n_task_features=spec.n_task_features)
            limits = limits_from_params(spec.joint_names, p)
            if p["robot_description"]:
                limits = tightest(limits, limits_from_urdf(p["robot_description"], spec.joint_names))
            key = load_key(p["signing_key_file"]) if p["signing_key_file"] else None
            verifier = PolicyVerifier(key, bool(p["require_signature"]))
        except (WarpdError, ValueError) as exc:
            self._configure_error = exc
            self._lifecycle_reason = f"cannot configure: {exc}"
            self.get_logger().error(self._lifecycle_reason)
            return TransitionCallbackReturn.FAILURE
        self._spec, self._limits = spec, limits
        self._goal_names, self._goal_frame = goal  # how a goal PoseStamped becomes task features
        self._verifier = verifier
        self._joints = JointIndex(spec.joint_names)
        self._n = len(spec.joint_names)
        self._stale_timeout_s = float(p["stale_timeout_s"])
        self._check_state_stamps = bool(p["check_state_stamps"])
        self._hold_relatch_rad = float(p["hold_relatch_rad"])
        self._swap_mode = p["swap_mode"]
        self._control_rate_hz = float(p["control_rate_hz"])
        self._trained_rate_hz = trained_rate_hz
        self._schedule = self._policy_schedule(float(p["policy_rate_hz"]))
        self._budget = measure_budget(spec.obs_dim, spec.action_dim, 1.0 / self._control_rate_hz,
                                      float(p["compute_budget"]))
        self._reset_bookkeeping()
        self._task = np.zeros(0) if spec.n_task_features == 0 else None
        self._task_error = self._input_error = "task_features_missing" if self._task is None else None
        self._position = spec.command_interface == POSITION
        self._published = None if self._position else np.zeros(self._n)
        # clip -> limits -> finite -> hold, one immutable object replaced on a parameter change
        self._pipeline = CommandPipeline(limits, float(p["action_limit"]), 1.0 / self._control_rate_hz,
                                         p["hold_mode"], self._stale_timeout_s, spec.command_interface)
        self._cmd_pub = self.create_publisher(Float64MultiArray, topics.JOINT_COMMANDS, COMMAND_QOS)
        self._inputs = [self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_state, SENSOR_QOS)]
        self._oversize = OversizeGuard(float(p["oversize_pause_s"]))
        self._policy_sub = self._subscribe_policies()
        if p["hold_between_episodes"]:
            self._episode_gate = EpisodeGate()
            self._inputs.append(self.create_subscription(EpisodeEvent, topics.EPISODE_EVENTS, self._on_episode_event,
                                                         EVENTS_QOS))
        if spec.n_task_features:  # a policy without task features needs none (and a stray goal must not HOLD it)
            self._inputs += [
                self.create_subscription(Float64MultiArray, topics.TASK_FEATURES, self._on_task_features,
                                         TASK_FEATURES_QOS),
                self.create_subscription(PoseStamped, topics.GOAL_POSE, self._on_goal, GOAL_QOS),
            ]
        self._set_lifecycle_reason(REASON_INACTIVE)
        self.get_logger().info(
            f"configured: {list(spec.joint_names)} + {spec.n_task_features} task features, {spec.command_interface} "
            f"interface, at "
            f"{self._control_rate_hz:g} Hz (obs {spec.obs_dim}, action {spec.action_dim}), {self._policy_rate_text()}; "
            f"compute budget "
            f"{self._budget.summary()}; commands on {self.resolve_topic_name(topics.JOINT_COMMANDS)} once active")
        return TransitionCallbackReturn.SUCCESS

    def _policy_schedule(self, policy_rate_hz: float) -> PolicySchedule:
        """policy_rate_hz as configured (0: the trained rate where known); every tick at or above the loop rate."""
        rate = policy_rate_hz or self._trained_rate_hz or 0.0
        return PolicySchedule(0.0 if rate >= self._control_rate_hz else rate)

    def _policy_rate_text(self) -> str:
        rate = self._schedule.rate_hz
        if not rate:
            return "the policy evaluated every tick"
        trained = " (the checkpoint's trained rate)" if rate == self._trained_rate_hz else ""
        return f"the policy evaluated at {rate:g} Hz{trained}, its action held in between"

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start the control loop, but only on fresh, valid joint states: a loop started blind would
        HOLD at once anyway, and an operator who activates a controller expects it to be able to act."""
        why = self._activation_refusal()
        if why is not None:
            self._set_lifecycle_reason(f"activation refused: {why}")
            self.get_logger().warning(self._lifecycle_reason)
            return TransitionCallbackReturn.FAILURE
        self._loop = LoopTimer(self._control_rate_hz)
        self._mode, self._mode_reason = Mode.HOLD, REASON_NO_POLICY
        self._hold_position = None  # latched again by the first HOLD tick, from the fresh joint state
        self._published = None if self._position else np.zeros(self._n)
        self._schedule.forget()
        # A one-shot (reset by a tick, cancelled when it fires) that handles a queued policy right after
        # that tick. (The EventsExecutor does not support guard conditions.)
        self._swap_timer = self.create_timer(20e-6, self._on_swap_timer, clock=self._steady, autostart=False)
        self._control_timer = self.create_timer(1.0 / self._control_rate_hz, self._on_tick, clock=self._steady)
        self.get_logger().info(f"active: commanding at {self._control_rate_hz:g} Hz; HOLD until a valid policy "
                               f"arrives on {self.resolve_topic_name(topics.POLICY_WEIGHTS)}")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Send the hold command, then stop publishing. The policies are dropped: one planned before the
        pause must not resume after it, however long the pause was."""
        hold, acked = self._hold_last()
        self._slot = PolicySlot()
        self._pending_policies.clear()
        self._set_lifecycle_reason(REASON_INACTIVE)
        self.get_logger().info(f"inactive: sent the hold command {_listed(hold)}{_unacked(acked)}, publishing no "
                               "more commands")
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._set_lifecycle_reason(REASON_UNCONFIGURED)
        self._reset_bookkeeping()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._control_timer is not None:  # from active: hold before going
            hold, acked = self._hold_last()
            self.get_logger().info(f"shutting down: sent the hold command {_listed(hold)}{_unacked(acked)}")
        self._release()
        self._set_lifecycle_reason(REASON_FINALIZED)
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """A transition raised: hold if we were commanding, release everything, back to unconfigured."""
        self.get_logger().error(f"error in lifecycle state {state.label}: holding and cleaning up")
        return self.on_shutdown(state)

    def _autostart_activate(self) -> None:
        if self._pipeline is None or self._control_timer is not None:  # cleaned up or activated meanwhile
            self._autostart_timer.cancel()
            return
        why = self._activation_refusal()
        if why is None:
            self._autostart_timer.cancel()
            self.trigger_activate()
        else:  # the status says what activation waits for (a HIL check or an operator reads it there)
            self._set_lifecycle_reason(f"autostart waits to activate: {why}")
            self._warn_throttled("autostart", f"not activating yet: {why}", period_s=5.0)

    def _activation_refusal(self) -> str | None:
        if self._last_state_ns is None:
            return f"no joint state received on {self.resolve_topic_name(topics.JOINT_STATES)}"
        if self._joint_error is not None:
            return f"the newest joint state is unusable ({self._joint_error})"
        age = (self._now_ns() - self._last_state_ns) * 1e-9
        if age > self._stale_timeout_s:
            return f"joint states are stale: the newest is {age:.2f} s old (stale_timeout_s {self._stale_timeout_s:g})"
        return None

    def _set_lifecycle_reason(self, reason: str) -> None:
        self._lifecycle_reason = reason
        self._mode, self._mode_reason = Mode.HOLD, reason

    def _stop_loop(self) -> None:
        for timer in (self._control_timer, self._swap_timer):
            if timer is not None:
                timer.cancel()
                self.destroy_timer(timer)
        self._control_timer = self._swap_timer = None

    def _hold_last(self) -> tuple[np.ndarray | None, bool]:
        """Stop the loop and send the hold command as the last one; wait (at most HOLD_ACK_TIMEOUT_S) until every
        subscriber has acknowledged it. Why wait: a publisher destroyed right after publishing can drop its last
        message (seen on Jazzy: a shutdown through the lifecycle service left the driver with the policy's last
        velocity). -> (the hold sent or None, whether it was acknowledged)."""
        self._stop_loop()
        hold = self._send_hold()
        if hold is None or not self.context.ok():
            return hold, hold is None
        return hold, self._cmd_pub.wait_for_all_acked(Duration(seconds=HOLD_ACK_TIMEOUT_S))

    def _send_hold(self) -> np.ndarray | None:
        """The hold command, published once (position: where the joints are; nothing when that is unknown)."""
        hold_position = self._hold_position if self._hold_position is not None else self._q
        if self._position and hold_position is None:
            return None
        hold = self._pipeline.hold(self._q, None, None, self._now_ns(), False, hold_position)
        if self.context.ok():
            self._cmd_pub.publish(float64_array_msg(hold))
        return hold

    def _release(self) -> None:
        """Drop what configure created (subscriptions, the command publisher)."""
        self._stop_loop()
        for sub in self._inputs + ([self._policy_sub] if self._policy_sub is not None else []):
            self.destroy_subscription(sub)
        self._inputs, self._policy_sub = [], None
        for timer in self._policy_input_timers:
            self.destroy_timer(timer)
        self._policy_input_timers, self._policy_input_paused = [], ""
        if self._cmd_pub is not None:
            self.destroy_publisher(self._cmd_pub)
        self._cmd_pub, self._pipeline = None, None

    # ------------------------------------------------------------------ parameters
    def _check_change(self, name: str, value) -> str | None:
        """Refuse a change before it applies: bad values, and a control rate the active policy would not fit."""
        reason = _validate(name, value)
        if reason is None and name == "control_rate_hz" and getattr(self, "_pipeline", None) is not None:
            active = self._slot.active
            if active is not None:
                reason = self._budget.with_period(1.0 / float(value)).refusal(active.executor.architecture.layer_sizes)
                reason = f"the active policy would not fit: {reason}" if reason else None
        return reason

    def _on_params(self, changes: dict) -> None:
        """Live changes while configured; otherwise configure reads them (and the read-only ones)."""
        if "status_rate_hz" in changes and float(changes["status_rate_hz"]) != self._status_rate_hz:
            self._status_rate_hz = float(changes["status_rate_hz"])
            self.destroy_timer(self._status_timer)
            self._status_timer = self.create_timer(1.0 / self._status_rate_hz, self._on_status, clock=self._steady)
        if self._pipeline is None:
            if "control_rate_hz" in changes:
                self._control_rate_hz = float(changes["control_rate_hz"])
            return
        if "stale_timeout_s" in changes:
            self._stale_timeout_s = float(changes["stale_timeout_s"])
            self._pipeline = self._pipeline.with_changes(stale_timeout_s=self._stale_timeout_s)
        if "check_state_stamps" in changes:
            self._check_state_stamps = bool(changes["check_state_stamps"])
        if "hold_relatch_rad" in changes:
            self._hold_relatch_rad = float(changes["hold_relatch_rad"])
        if "hold_mode" in changes:
            self._pipeline = self._pipeline.with_changes(hold_mode=changes["hold_mode"])
        if "action_limit" in changes:
            self._pipeline = self._pipeline.with_changes(action_limit=float(changes["action_limit"]))
        if "oversize_pause_s" in changes:
            self._oversize = OversizeGuard(float(changes["oversize_pause_s"]))
            if self._policy_input_paused:  # a new setting ends the pause: listen again now, with it
                for timer in self._policy_input_timers:
                    timer.cancel()
                self._drop_fired_timers()
                self._one_shot(1e-4, self._resume_policy_input)
        if "compute_budget" in changes:
            self._budget = ComputeBudget(self._budget.overhead_s, self._budget.flops_per_s, self._budget.period_s,
                                         float(changes["compute_budget"]))
        if "max_clock_skew_s" in changes or "max_policy_age_s" in changes:
            spec = self._spec
            self._spec = dataclasses.replace(spec, max_clock_skew_s=float(changes.get("max_clock_skew_s",
                                                                                        spec.max_clock_skew_s)),
                                             max_policy_age_s=float(changes.get("max_policy_age_s",
                                                                                spec.max_policy_age_s)))
        if "swap_mode" in changes and changes["swap_mode"] != self._swap_mode:
            self._swap_mode = changes["swap_mode"]
            if self._swap_mode == SWAP_RUN and self._slot.shadow is not None:
                self.get_logger().info(f"swap_mode run: dropping unpromoted shadow candidate "
                                       f"{self._slot.shadow.policy_id}")
                self._slot.set_shadow(None)
        if "control_rate_hz" in changes and float(changes["control_rate_hz"]) != self._control_rate_hz:
            self._control_rate_hz = float(changes["control_rate_hz"])
            self._loop.set_rate(self._control_rate_hz)
            self._pipeline = self._pipeline.with_changes(dt=1.0 / self._control_rate_hz)
            self._budget = self._budget.with_period(1.0 / self._control_rate_hz)
            if self._control_timer is not None:
                self.destroy_timer(self._control_timer)
                self._control_timer = self.create_timer(1.0 / self._control_rate_hz, self._on_tick,
                                                        clock=self._steady)
        if "policy_rate_hz" in changes or "control_rate_hz" in changes:
            rate = changes.get("policy_rate_hz", self.get_parameter("policy_rate_hz").value)
            self._schedule = self._policy_schedule(float(rate))
            self.get_logger().info(self._policy_rate_text())

    def _apply_realtime(self) -> None:
        self._realtime_timer.cancel()
        priority, cpu, lock = self._realtime_request
        try:
            report = apply_realtime(priority, [cpu] if cpu >= 0 else [], lock)
        except ValueError as exc:
            self._realtime = f"FAILED {exc}"
            self.get_logger().error(f"real-time settings refused: {exc}")
            return
        self._realtime = report.summary()
        log = self.get_logger().warning if report.failed else self.get_logger().info
        log(f"real-time: {self._realtime}")

    def _warn_throttled(self, key: str, text: str, period_s: float = 1.0) -> None:
        """At most one warning per `key` and period. Not rclpy's throttle_duration_sec: that inspects the
        caller's frame on every call, ~170 µs even when it prints nothing, on the executor thread."""
        now = time.monotonic()
        if now - self._last_warning.get(key, -1e9) >= period_s:
            self._last_warning[key] = now
            self.get_logger().warning(text)

    def _now_ns(self) -> int:
        """The node clock in ns. Without sim time the ROS clock is the system clock: read it directly
        (rclpy's Time objects cost several µs per tick)."""
        clock = self._ros_clock
        return clock.now().nanoseconds if clock.ros_time_is_active else time.time_ns()

    def on_stop(self) -> None:
        """While active, the last command before the process ends is the hold command (run_node calls this on
        SIGINT/SIGTERM while the context is still up), so no driver keeps executing a policy's last
        velocity; waits briefly until subscribers have acknowledged it. Inactive, nothing is sent: this
        controller is not commanding the robot then, and must not start to on its way out."""
        if self._autostart_timer is not None:
            self._autostart_timer.cancel()
        if self._control_timer is None:
            return
        hold, acked = self._hold_last()
        self._mode, self._mode_reason = Mode.HOLD, REASON_SHUTDOWN
        self._on_status()
        self.get_logger().info(f"stopping: sent the hold command {_listed(hold)}{_unacked(acked)}")

    # ------------------------------------------------------------------ inputs
    def _on_joint_state(self, msg: JointState) -> None:
        stamp = msg.header.stamp
        self._last_state_ns = state_time_ns(self._now_ns(), stamp.sec * 1_000_000_000 + stamp.nanosec,
                                            self._check_state_stamps)
        try:
            self._q, self._qd = self._joints.read(msg)
        except JointStateError as exc:
            self._joint_error = exc.reason
            self._warn_throttled("joint_state", f"ignoring joint state: {exc}")
        else:
            self._joint_error = None
        self._update_obs()

    def _on_episode_event(self, msg: EpisodeEvent) -> None:
        if msg.event == EpisodeEvent.RESET:
            self._episode_gate.reset(stamp_to_ns(msg.header.stamp))
            self._hold_position = None  # latched again by the next HOLD tick: the episode's start posture
        elif msg.event in (EpisodeEvent.SUCCESS, EpisodeEvent.TIMEOUT):
            self._episode_gate.end()

    def _on_goal(self, msg: PoseStamped) -> None:
        """A goal pose, as task features (goal_x, goal_y[, goal_z] in the trained frame); a goal that cannot be
        used is warned about and leaves the current features as they are."""
        try:
            values = goal_pose_features(msg, self._goal_names, self._goal_frame)
        except ValueError as exc:
            self._warn_throttled("goal", f"ignoring goal on {topics.GOAL_POSE}: {exc}")
            return
        self._take_task_features(values)

    def _on_task_features(self, msg: Float64MultiArray) -> None:
        self._take_task_features(np.asarray(msg.data, dtype=np.float64))

    def _take_task_features(self, values: np.ndarray) -> None:
        if values.size != self._spec.n_task_features:
            self._task_error = "task_features_size"
            self._warn_throttled("task_features", f"ignoring task features: {values.size} values, expected "
                                                  f"{self._spec.n_task_features}")
        elif not np.isfinite(values).all():
            self._task_error = "task_features_nonfinite"
            self._warn_throttled("task_features", "ignoring task features: NaN or Inf")
        else:
            self._task, self._task_error = values, None
        self._update_obs()

    def _update_obs(self) -> None:
        if self._q is not None and self._task is not None:
            self._obs = np.concatenate((self._q, self._qd, self._task))
        self._input_error = self._joint_error or self._task_error

    # ------------------------------------------------------------------ policies
    def _subscribe_policies(self):
        # raw: an oversized message is refused by its length, before deserializing it costs the loop
        return self.create_subscription(PolicyWeights, topics.POLICY_WEIGHTS, self._on_policy_bytes, policy_swap_qos(),
                                        raw=True)

    def _one_shot(self, delay_s: float, callback) -> None:
        """Run `callback` once after `delay_s` on the steady clock (once even if the timer was due again before it
        was cancelled). The timer is destroyed later by _drop_fired_timers, never inside its own callback."""
        timer, fired = None, []

        def fire():
            timer.cancel()
            if not fired:
                fired.append(True)
                callback()

        timer = self.create_timer(delay_s, fire, clock=self._steady)
        self._policy_input_timers.append(timer)

    def _drop_fired_timers(self) -> None:
        """Called from outside those timers' callbacks."""
        fired = [t for t in self._policy_input_timers if t.is_canceled()]
        self._policy_input_timers = [t for t in self._policy_input_timers if t not in fired]
        for timer in fired:
            self.destroy_timer(timer)

    def _oversized_flood(self) -> None:
        """A policy too large for the compute budget was refused: with the third within a second, stop listening
        for a while (from a timer: a subscription is not destroyed inside its own callback)."""
        if self._policy_sub is None or self._policy_input_paused:
            return
        pause = self._oversize.oversized(time.monotonic())
        if pause is None:
            return
        self._drop_fired_timers()
        self._policy_input_paused = (f"not listening to {self.resolve_topic_name(topics.POLICY_WEIGHTS)} for "
                                     f"{pause:g} s: PolicyWeights too large for the compute budget keep arriving "
                                     "(receiving them costs the loop even refused)")
        self.get_logger().warning(f"{self._policy_input_paused}; the running policy keeps running")
        self._one_shot(1e-4, lambda: self._pause_policy_input(pause))

    def _pause_policy_input(self, pause_s: float) -> None:
        if self._policy_sub is not None:
            self.destroy_subscription(self._policy_sub)
            self._policy_sub = None
        self._one_shot(pause_s, self._resume_policy_input)

    def _resume_policy_input(self) -> None:
        if self._pipeline is None:  # cleaned up meanwhile: configure subscribes afresh
            return
        if self._policy_sub is None:  # (a parameter change can end a pause before it began)
            self._policy_sub = self._subscribe_policies()
            self.get_logger().info(f"listening to {self.resolve_topic_name(topics.POLICY_WEIGHTS)} again")
        self._oversize.listening_again(time.monotonic())
        self._policy_input_paused = ""

    def _on_policy_bytes(self, data: bytes) -> None:
        """A serialized PolicyWeights: refused by its size when no policy within the compute budget can be that
        large (deserializing 8 MB takes ~12 ms on the executor thread: a dozen missed ticks), else decoded."""
        limit = self._budget.max_message_bytes
        if len(data) > limit:
            self._reject(REASON_COMPUTE, f"a {len(data) / 1e6:.1f} MB PolicyWeights message: a policy within the compute "
                                         f"budget ({self._budget.max_flops:,} FLOPs per step) is at most "
                                         f"{limit / 1e6:.1f} MB", None)
            return
        try:
            msg = deserialize_message(data, PolicyWeights)
        except Exception as exc:  # not a PolicyWeights after all: counted, never a crash
            self._reject("malformed", f"cannot deserialize: {type(exc).__name__}: {exc}", None)
            return
        self._on_policy(msg)

    def _on_policy(self, msg: PolicyWeights) -> None:
        """Queue the message; convert, check and install it where it cannot delay a tick.

        That work costs ~70 µs with warm caches but ~250 µs for a policy arriving every 100 ms (cold
        caches), all on the executor thread. Run at a random moment it would delay the next tick by
        that much; so it runs now only if the next tick is more than SWAP_SLACK_NS away, otherwise
        right after the next tick (the tick starts a one-shot timer), in the idle part of the period.
        """
        self._pending_policies.append(msg)
        last = self._loop.last_tick_ns
        if last is None or time.monotonic_ns() - last < self._loop.nominal_ns - SWAP_SLACK_NS:
            self._process_pending_policy()

    def _on_swap_timer(self) -> None:
        self._swap_timer.cancel()
        self._process_pending_policy()

    def _process_pending_policy(self) -> None:
        """Handle one queued PolicyWeights (the next tick triggers this again while more are queued)."""
        if not self._pending_policies:
            return
        msg = self._pending_policies.popleft()
        start = time.perf_counter_ns()
        now = self._now_ns()
        try:
            candidate = admit_policy(msg, self._spec, now, self._last_accepted, self._verifier, self._budget)
        except PolicyValidationError as exc:
            self._reject(exc.reason, str(exc), msg)
            return
        except Exception as exc:  # a bug or a message nobody foresaw: still a counted rejection, never a crash
            self._reject("internal_error", f"{type(exc).__name__}: {exc}", msg)
            return
        self._last_accepted[candidate.planner_id] = candidate.policy_id
        self._accepted += 1
        if self._swap_mode == SWAP_SHADOW:
            self._slot.set_shadow(candidate)
            what = "shadow candidate"
        else:
            self._slot.install(candidate)
            what = "active"
        # for diagnostics: time spent here (off the control path but on its thread), and stamp -> here
        self._swap_work_max_us = max(self._swap_work_max_us, (time.perf_counter_ns() - start) / 1e3)
        self._swap_delay_max_ms = max(self._swap_delay_max_ms, (now - candidate.stamp_ns) / 1e6)
        log = self.get_logger().info if self._accepted == 1 else self.get_logger().debug
        log(f"policy {candidate.policy_id} from {candidate.planner_id!r} ({candidate.task}) is now {what}")

    def _reject(self, reason: str, message: str, msg: PolicyWeights) -> None:
        # over the budget by its length (msg None), or by its layer sizes with weights to match: a large message,
        # which cost the loop to receive (small malformed messages claiming huge layers cost nothing: not counted)
        if reason == REASON_COMPUTE and (msg is None or 4 * len(msg.weights) >= OVERSIZE_MIN_BYTES):
            self._oversized_flood()
        self._rejected += 1
        self._rejections_by_reason[reason] = self._rejections_by_reason.get(reason, 0) + 1
        self._last_rejection = f"{reason}: {message}"
        self._warn_throttled("policy", f"rejected policy {getattr(msg, 'policy_id', '?')} from "
                                       f"{getattr(msg, 'planner_id', '?')!r}: {reason}: {message}")

    def _on_promote(self, request, response):
        shadow = self._slot.shadow
        if shadow is None:
            response.success, response.message = False, "no shadow candidate to promote"
        elif shadow.expired(self._now_ns()):
            self._slot.set_shadow(None)
            response.success, response.message = False, f"shadow candidate {shadow.policy_id} has expired; dropped"
        else:
            self._slot.promote()
            response.success, response.message = True, f"policy {shadow.policy_id} is now active"
            self.get_logger().info(response.message)
        return response

    # ------------------------------------------------------------------ control loop
    def _on_tick(self) -> None:
        self._loop.tick(time.monotonic_ns())
        now = self._now_ns()
        state = self._slot.state  # one read: a consistent (active, shadow) pair for this tick
        mode, reason = decide_mode(now, state.active, self._last_state_ns, self._input_error,
                                   self._stale_timeout_s, state.shadow)
        if mode != Mode.HOLD and self._episode_gate is not None:
            between = self._episode_gate.hold_reason(state.active)
            if between:
                mode, reason = Mode.HOLD, between
                held, q = self._hold_position, self._q
                if held is not None and q is not None and np.max(np.abs(q - held)) > self._hold_relatch_rad:
                    self._hold_position = None  # a reset moved the robot: hold it there, not where the episode ended
        if mode == Mode.HOLD:
            action = None
            self._schedule.forget()  # the first action after a HOLD is evaluated at once
            if self._hold_position is None and self._q is not None:
                self._hold_position = self._q.copy()  # position interface: where the joints are as the HOLD begins
        else:  # between evaluations at policy_rate_hz, the action held since the last one
            due = self._schedule.due(self._last_state_ns, state)
            action = self._evaluate(state, mode) if due else self._held_action
            self._hold_position = None
        if self._position and self._q is None:  # cannot happen once active (activation needs a joint state)
            return
        result = self._pipeline.tick(mode, reason, action, self._q, self._published, self._last_command,
                                     self._last_command_ns, now, self._hold_position)
        if result.policy_command is not None:
            self._last_command, self._last_command_ns = result.policy_command, now
        elif mode != Mode.HOLD:  # the pipeline found the action non-finite (or it could not be computed)
            self._nonfinite_actions += 1
        out = self._cmd_msg
        out.data = result.command.tolist()  # finite by construction: the pipeline's last step checks
        self._published = result.command  # what the rate limit of the next tick starts from
        if self.context.ok():  # SIGINT/SIGTERM may have shut the context down since this tick began
            self._cmd_pub.publish(out)
        self._mode, self._mode_reason = mode, reason
        if self._pending_policies:  # a swap waits for the slack after a tick: that is now
            self._swap_timer.reset()

    def _evaluate(self, state, mode: Mode) -> np.ndarray | None:
        """Run the active policy (and in SHADOW the candidate, for the comparison) on the newest observation;
        the active one's action is held until the schedule says evaluate again."""
        obs = self._obs
        self._held_action = action = self._run(state.active, obs)
        self._schedule.taken(self._last_state_ns, state)
        if mode == Mode.SHADOW:
            shadow_action = self._run(state.shadow, obs, shadow=True)
            if action is not None and shadow_action is not None:
                diff = float(np.max(np.abs(shadow_action - action)))
                if diff > self._shadow_diff_max:
                    self._shadow_diff_max = diff
        return action

    def _run(self, policy: ActivePolicy, obs, shadow: bool = False) -> np.ndarray | None:
        """The policy's raw action, or None when it cannot be computed. The active policy's action is
        checked for finiteness once, by the pipeline (which counts through _on_tick); the shadow's here."""
        try:
            action = policy.executor.select_action(obs)
        except ValueError:
            action = None
        if shadow and (action is None or not np.isfinite(action).all()):
            self._shadow_nonfinite += 1
            return None
        return action

    # ------------------------------------------------------------------ status
    def _on_status(self) -> None:
        now = self._now_ns()
        timing = self._loop.window_stats()
        state = self._slot.state
        active, shadow = state.active, state.shadow
        msg = ControllerStatus()
        msg.header.stamp = ns_to_stamp(now)
        msg.mode = status_code(self._mode)
        msg.mode_reason = self._mode_reason
        msg.has_active_policy = active is not None
        if active is not None:
            msg.active_policy_id = active.policy_id
            msg.active_task = active.task
            msg.active_policy_age = (now - active.stamp_ns) * 1e-9
        msg.swaps_accepted = self._accepted
        msg.swaps_rejected = self._rejected
        msg.last_rejection_reason = self._last_rejection
        msg.target_rate_hz = self._control_rate_hz
        msg.loop_rate_hz = timing["loop_rate_hz"]
        msg.period_error_p50 = timing["period_error_p50"]
        msg.period_error_p99 = timing["period_error_p99"]
        msg.period_error_max = timing["period_error_max"]
        msg.missed_ticks = self._loop.missed_ticks
        if shadow is not None:
            msg.shadow_policy_id = shadow.policy_id
            msg.shadow_action_diff_max = self._shadow_diff_max
        self._shadow_diff_max = 0.0
        if not self.context.ok():
            return
        self._status_pub.publish(msg)
        self._diag_pub.publish(self._diagnostics(msg, timing))

    def _configured_values(self) -> dict:
        return {
            "command_interface": self._spec.command_interface,
            "swap_mode": self._swap_mode, "hold_mode": self._pipeline.hold_mode,
            "action_limit": f"{self._pipeline.action_limit:g}",
            "require_signature": str(self._verifier.required).lower(),
            "signing_key": "configured" if self._verifier.key is not None else "none",
            **{k: " ".join(f"{v:g}" for v in getattr(self._limits, k)) for k in LIMIT_NAMES},
            "compute_budget": self._budget.summary(),
        }

    def _diagnostics(self, status: ControllerStatus, timing: dict) -> DiagnosticArray:
        """OK while driving with a good loop; WARN in HOLD without a (valid) policy, on rejections or
        missed ticks in the window; ERROR in HOLD on bad or stale inputs, or non-finite actions."""
        level, problems = DiagnosticStatus.OK, []
        new_rejections = self._rejected - self._rejections_reported
        new_nonfinite = self._nonfinite_actions - self._nonfinite_reported
        new_missed = status.missed_ticks - self._missed_reported
        self._rejections_reported, self._nonfinite_reported = self._rejected, self._nonfinite_actions
        self._missed_reported = status.missed_ticks
        if self._control_timer is None:  # not active: not commanding, by choice unless activation was refused
            if self._mode_reason not in (REASON_UNCONFIGURED, REASON_INACTIVE, REASON_FINALIZED):
                level = max(level, DiagnosticStatus.WARN)
                problems.append(self._mode_reason)
        elif self._mode == Mode.HOLD:
            bad_input = not inputs_ok(self._mode, self._mode_reason)
            level = max(level, DiagnosticStatus.ERROR if bad_input else DiagnosticStatus.WARN)
            problems.append(f"HOLD: {self._mode_reason}")
        if new_nonfinite:
            level = DiagnosticStatus.ERROR
            problems.append(f"{new_nonfinite} non-finite actions")
        if new_rejections:
            level = max(level, DiagnosticStatus.WARN)
            problems.append(f"{new_rejections} policies rejected ({self._last_rejection.split(':')[0]})")
        if new_missed:
            level = max(level, DiagnosticStatus.WARN)
            problems.append(f"{new_missed} missed ticks")
        if self._policy_input_paused:
            level = max(level, DiagnosticStatus.WARN)
            problems.append(self._policy_input_paused)
        mode_name = str(mode_from_status(status.mode))
        values = {
            "mode": mode_name, "mode_reason": status.mode_reason,
            "active_policy_id": str(status.active_policy_id) if status.has_active_policy else "",
            "active_task": status.active_task, "active_policy_age_s": f"{status.active_policy_age:.3f}",
            "swaps_accepted": str(status.swaps_accepted), "swaps_rejected": str(status.swaps_rejected),
            "last_rejection_reason": status.last_rejection_reason,
            "rejections_by_reason": " ".join(f"{k}={v}" for k, v in sorted(self._rejections_by_reason.items())),
            "target_rate_hz": f"{status.target_rate_hz:g}", "loop_rate_hz": f"{status.loop_rate_hz:.1f}",
            "period_error_p50_us": f"{status.period_error_p50 * 1e6:.1f}",
            "period_error_p99_us": f"{status.period_error_p99 * 1e6:.1f}",
            "period_error_max_us": f"{status.period_error_max * 1e6:.1f}",
            "missed_ticks": str(status.missed_ticks), "nonfinite_actions": str(self._nonfinite_actions),
            "lifecycle_state": self._state_machine.current_state[1], "realtime": self._realtime,
            **(self._configured_values() if self._pipeline is not None else {}),
            "shadow_policy_id": str(status.shadow_policy_id) if self._slot.shadow is not None else "",
            "shadow_action_diff_max": f"{status.shadow_action_diff_max:.6g}",
            "shadow_nonfinite_actions": str(self._shadow_nonfinite),
            "swap_processing_max_us": f"{self._swap_work_max_us:.1f}",
            "swap_receive_delay_max_ms": f"{self._swap_delay_max_ms:.3f}",
            "policy_input": self._policy_input_paused or ("listening" if self._policy_sub is not None else "none"),
        }
        self._swap_work_max_us = self._swap_delay_max_ms = 0.0
        diag = DiagnosticStatus(level=level, name=NODE_NAME, hardware_id=self.get_fully_qualified_name(),
                                message="; ".join(problems) if problems else f"{mode_name}: {status.mode_reason}",
                                values=[KeyValue(key=k, value=v) for k, v in values.items()])
        return DiagnosticArray(header=status.header, status=[diag])


def _unacked(acked: bool) -> str:
    return "" if acked else f" (not acknowledged by every subscriber within {HOLD_ACK_TIMEOUT_S:g} s)"


def _listed(command: np.ndarray | None) -> str:
    return "none (no joint position known)" if command is None else str(command.tolist())


def _make_node() -> ControllerNode:
    node = ControllerNode()
    # Everything allocated so far (modules, message types, the node) lives for the whole run: move it
    # out of the cyclic garbage collector's sight. A full collection over those ~30k objects takes
    # ~8 ms, i.e. eight missed 1 kHz ticks; after freeze() collections only scan what the loop allocates.
    gc.collect()
    gc.freeze()
    return node


def main(args=None) -> int:
    """Run the node until SIGINT/SIGTERM (the shared run_node: a spin_once loop on the EventsExecutor)."""
    return run_node(_make_node, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
