"""Record -> import -> train -> deploy, the "your own robot" path of the README, run as a user would run it:
every step is the `warpd` command line (bringup, record-bag, import-bag, train, bringup hil) in its own
process, over loopback DDS. The end-to-end test runs it CI-sized; bench/from_bag.py at full size.

The robot is warpd_sim driven by the task's scripted expert (as an operator's program would drive a real
arm); the deployment target is warpd_driver_emulator, as `warpd bringup hil` starts it by default.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from warpd_ros.limit_params import LIMIT_NAMES
from warpd_ros.testing.processes import REPO, start_node, stop_process

RECORDED_TOPICS = ("/joint_states", "/forward_velocity_controller/commands", "/warpd/goal_pose",
                   "/warpd/episode_events")
# A training run of seconds, for CI: the pipeline is what is tested, not the policy's skill.
TINY_TRAINING = {"data.horizon": 4, "encoder.latent_dim": 6, "encoder.hidden": "[32]", "policy.hidden": "[16, 16]",
                 "hypernet.chunk_size": 64, "hypernet.chunk_embedding_dim": 8, "hypernet.hidden": "[32]",
                 "world_model.hidden": "[32]", "stage1.steps": 30, "stage1.batch_size": 32, "stage1.log_every": 10,
                 "stage1.checkpoint_every": 30, "diffusion.hidden": 32, "diffusion.layers": 1,
                 "diffusion.train_timesteps": 20, "diffusion.sample_steps": 4, "stage2.steps": 30,
                 "stage2.batch_size": 64, "stage2.log_every": 10, "stage2.checkpoint_every": 30}


PANDA_LIMIT_KEYS = ("action_limit", "position_lower", "position_upper", "velocity_limit", "acceleration_limit",
                    "effort_limit")


@dataclass(frozen=True)
class Robot:
    """What the user's robot is, as the pipeline's commands need it."""

    task: str  # the sim task standing in for the robot (and its expert for the operator)
    interface: str  # velocity | position
    joints: tuple[str, ...]
    start: tuple[float, ...]  # the emulator's initial joint positions at deployment
    goal: tuple[float, ...]  # goal x, y[, z]: task features at deployment
    limits: dict = field(default_factory=dict)  # warpd_controller limit parameters for this robot

    @property
    def goal_features(self) -> str:
        return ",".join(("goal_x", "goal_y", "goal_z")[:len(self.goal)])

    def execution(self, dt: float):
        """The deployed controller's limits as a robot executing commands every `dt` (in-process evaluation
        beside the deployment); None for a robot without limits here."""
        from warpd_core.runtime.command_limits import JointLimits
        from warpd_core.runtime.command_pipeline import CommandPipeline, LimitedExecution

        if not self.limits:
            return None
        limits = JointLimits.create(self.joints, **{k: v for k, v in self.limits.items() if k in LIMIT_NAMES})
        return LimitedExecution(CommandPipeline(limits, float(self.limits.get("action_limit", 1e300)), dt,
                                                command_interface=self.interface))


def robot_for(task: str, goal: bool = True) -> Robot:
    """reach_around (velocity) or the Panda's velocity/position tasks, with their start posture and goal;
    `goal` False: a robot recorded without a goal topic (no task features: n_task_features 0)."""
    from warpd_core.robot_contract import interface_of_actions
    from warpd_core.tasks import make_task

    env = make_task(task)
    obs = env.reset(0)
    n = len(env.spec.joint_names)
    goal = tuple(float(v) for v in obs[2 * n:]) if goal else ()
    interface = interface_of_actions(env.spec.joint_names, env.spec.action_names)
    limits = {}
    if task.startswith("panda"):  # the Panda's controller limits, from its sim config (one home for them)
        import yaml

        controller = yaml.safe_load((REPO / "config" / "sim_panda.yaml").read_text())["warpd_controller"]
        limits = {k: v for k, v in controller["ros__parameters"].items() if k in PANDA_LIMIT_KEYS}
    return Robot(task, interface, tuple(env.spec.joint_names), tuple(float(v) for v in obs[:n]), goal, limits)


def warpd(*args, timeout: float = 600, env=None) -> subprocess.CompletedProcess:
    """`warpd ARGS` in its own process; CompletedProcess with text output."""
    from warpd_ros.ros_env import loopback_environment

    return subprocess.run([sys.executable, "-m", "warpd_ros.cli", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=loopback_environment(base=env))


def _started(args, log: Path) -> subprocess.Popen:
    return start_node([sys.executable, "-m", "warpd_ros.cli", *map(str, args)], log, unbuffered=True)


def record(robot: Robot, bag: Path, episodes: int, seed: int = 0, timeout: float = 300.0) -> dict:
    """The expert drives the sim through ROS for `episodes` finished episodes while `warpd record-bag`
    records the four topics into an MCAP bag at `bag`; the recorder's per-topic counts."""
    from warpd_ros.testing.standin import running

    logs = bag.parent
    # the sim executes the expert's commands within the deployed controller's limits (as the robot would)
    sim_limits = [a for k, v in robot.limits.items() if k in LIMIT_NAMES
                  for a in ("--set", f"warpd_sim.{k}={json.dumps(v)}")]
    recorder = _started(["record-bag", "--out", bag, "--wait", "60", *RECORDED_TOPICS], logs / "record-bag.log")
    graph = _started(["bringup", "sim", "--config", REPO / "config" / "record_sim.yaml",
                      "--set", f"warpd_sim.task={robot.task}", "--set", f"warpd_expert.task={robot.task}",
                      "--set", f"warpd_sim.seed={seed}", "--set", f"warpd_expert.seed={seed}", *sim_limits],
                     logs / "record-graph.log")
    try:
        with running(_EventCounter) as counter:
            log = logs / "record-bag.log"

            def recording_all() -> bool:  # the recorder subscribed to every topic (each appears once published)
                text = log.read_text() if log.exists() else ""
                return all(f"recording {topic} " in text for topic in RECORDED_TOPICS) or recorder.poll() is not None
            if not counter.spin_until(recording_all, 90) or recorder.poll() is not None:
                raise AssertionError("warpd record-bag did not start recording:\n" + log.read_text()[-3000:])
            start = counter.finished
            # episodes that end after the recorder is in: the first of them may have begun before it
            done = counter.spin_until(lambda: counter.finished - start > episodes, timeout)
        if not done:
            raise AssertionError(f"{counter.finished} episodes finished in {timeout:g} s:\n"
                                 + (logs / "record-graph.log").read_text()[-3000:])
    finally:
        code = stop_process(recorder, signal.SIGINT, timeout=30)
        stop_process(graph, signal.SIGINT, timeout=30, group=True)
    text = (logs / "record-bag.log").read_text()
    if code != 0:
        raise AssertionError(f"warpd record-bag exited {code}:\n{text[-3000:]}")
    return _recorded_counts(bag)


def _recorded_counts(bag: Path) -> dict:
    import yaml

    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    return {t["topic_metadata"]["name"]: t["message_count"] for t in info["topics_with_message_count"]}


class _EventCounter:
    """Counts SUCCESS/TIMEOUT EpisodeEvents (a TestNode built lazily, so this module imports without ROS)."""

    def __new__(cls, context):
        from warpd_ros import topics
        from warpd_ros.msg import EpisodeEvent
        from warpd_ros.qos import EVENTS_QOS
        from warpd_ros.testing.standin import TestNode

        node = TestNode(context, "from_bag_event_counter")
        node.finished = 0

        def on_event(msg):
            if msg.event in (EpisodeEvent.SUCCESS, EpisodeEvent.TIMEOUT):
                node.finished += 1
        node.node.create_subscription(EpisodeEvent, topics.EPISODE_EVENTS, on_event, EVENTS_QOS)
        return node


def recorded_hold_s() -> float:
    """How long the recording graph keeps the arm at the goal after a SUCCESS: config/record_sim.yaml's
    warpd_sim hold_after_success_s, its one home; the import keeps that time."""
    import yaml

    config = yaml.safe_load((REPO / "config" / "record_sim.yaml").read_text())
    return float(config["warpd_sim"]["ros__parameters"]["hold_after_success_s"])


def import_recording(robot: Robot, bag: Path, dataset: Path, rate_hz: float | None = None) -> str:
    """`warpd import-bag` with the goal, episode events and interface of the recording, and the time the
    expert held the goal after each SUCCESS; its output. No resampling unless `rate_hz` is given: the expert
    commands at the control rate, and one step per command pairs it with exactly the state it answered
    (resampling to 50 Hz interpolated states and mismatched 1 step in 100 by > 5% of the action scale)."""
    goal = ["--goal", "/warpd/goal_pose", "--goal-features", robot.goal_features] if robot.goal else []
    proc = warpd("import-bag", bag, "--out", dataset, "--command-interface", robot.interface,
                 "--joints", ",".join(robot.joints), *goal, "--episode-events", "/warpd/episode_events",
                 "--hold-after-success", recorded_hold_s(), *(["--rate", rate_hz] if rate_hz else []))
    if proc.returncode != 0:
        raise AssertionError(f"import-bag failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def train(dataset: Path, run: Path, overrides: dict | None = None, timeout: float = 7200) -> Path:
    """`warpd train --config config/train_from_bag.yaml` on `dataset`; the checkpoint path."""
    sets = {"data.path": dataset, "output": run, **(overrides or {})}
    proc = warpd("train", "--config", REPO / "config" / "train_from_bag.yaml", "--quiet",
                 *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")], timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"train failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return Path(proc.stdout.split("checkpoint: ")[1].split("\n")[0])


FIRST_ORDER, ROBOT_MODEL = "first_order", "robot_model"  # the emulator's joint models (warpd_core/joint_models.py)


def hil_overrides(robot: Robot, checkpoint: Path, joint_model: str = FIRST_ORDER) -> list[str]:
    """`--set` arguments that point `warpd bringup hil` (config/hil.yaml) at this robot and checkpoint; the
    emulator's joint model is the generic first-order one, or (`ROBOT_MODEL`) the robot's own MuJoCo model."""
    joints = "[" + ", ".join(robot.joints) + "]"
    sets = {
        "warpd_driver_emulator.joint_names": joints, "warpd_controller.joint_names": joints,
        "warpd_planner.joint_names": joints,
        "warpd_driver_emulator.initial_positions": json.dumps(list(robot.start)),
        **({"warpd_driver_emulator.task_features": json.dumps(list(robot.goal))} if robot.goal else {}),
        "warpd_driver_emulator.command_interface": robot.interface,
        "warpd_driver_emulator.joint_model": f"task:{robot.task}" if joint_model == ROBOT_MODEL else joint_model,
        "warpd_driver_emulator.velocity_limit": max(robot.limits.get("velocity_limit", [1.5])),
        "warpd_controller.command_interface": robot.interface, "warpd_planner.command_interface": robot.interface,
        "warpd_controller.n_task_features": len(robot.goal), "warpd_planner.n_task_features": len(robot.goal),
        "warpd_controller.checkpoint": checkpoint, "warpd_planner.checkpoint": checkpoint,
        **{f"warpd_controller.{k}": json.dumps(v) for k, v in robot.limits.items()},
    }
    return [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]


START_S = 60.0  # how long a graph may take to run its first policy (a loaded 2-core host: 20 s seen)


@dataclass
class Deployment:
    statuses: list  # ControllerStatus messages
    commands: np.ndarray  # (n, joints) every command received
    joint_states: np.ndarray  # (n, joints) positions the emulator published
    log: str


def deploy(robot: Robot, checkpoint: Path, workdir: Path, seconds: float = 12.0, extra: list | None = None) -> Deployment:
    """`warpd bringup hil` (driver emulator + controller + planner) with this robot's overrides, watched
    for `seconds` from a node of this process."""
    from warpd_ros.testing.standin import running

    log = workdir / f"hil-{robot.interface}.log"
    # --duration only as a backstop (the graph is stopped below): past the wait for RUN and the watch
    graph = _started(["bringup", "hil", "--duration", seconds + START_S + 30, *hil_overrides(robot, checkpoint),
                      *(extra or [])], log)
    try:
        with running(_Watcher, robot.joints) as watcher:
            watcher.spin_until(lambda: graph.poll() is not None or any(s.mode == 1 for s in watcher.statuses), START_S)
            watcher.spin_for(seconds)
            out = Deployment(list(watcher.statuses), np.array(watcher.commands), np.array(watcher.positions), "")
    finally:
        stop_process(graph, signal.SIGINT, timeout=30, group=True)
    out.log = log.read_text()
    return out


class _Watcher:
    """ControllerStatus, commands and joint positions of a running graph (a TestNode built lazily)."""

    def __new__(cls, context, joints):
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray

        from warpd_ros import topics
        from warpd_ros.msg import ControllerStatus
        from warpd_ros.qos import COMMAND_QOS, SENSOR_QOS, STATUS_QOS
        from warpd_ros.testing.standin import TestNode

        node = TestNode(context, "from_bag_watcher", events_executor=True)
        node.statuses, node.commands, node.positions = [], [], []
        index = {}

        def on_state(msg):
            if not index:
                index.update({j: list(msg.name).index(j) for j in joints})
            node.positions.append([msg.position[index[j]] for j in joints])
        node.node.create_subscription(ControllerStatus, topics.CONTROLLER_STATUS, node.statuses.append, STATUS_QOS)
        node.node.create_subscription(Float64MultiArray, topics.JOINT_COMMANDS,
                                      lambda m: node.commands.append(list(m.data)), COMMAND_QOS)
        node.node.create_subscription(JointState, topics.JOINT_STATES, on_state, SENSOR_QOS)
        return node


def run_pipeline(robot: Robot, workdir: Path, episodes: int, training: dict | None, deploy_s: float,
                 seed: int = 0, bag: Path | None = None) -> dict:
    """The whole path, one robot: what each step produced, for the test's and the benchmark's checks.
    `bag`: a recording of this robot made earlier (by :func:`record`), instead of recording one."""
    workdir.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    if bag is None:
        bag = workdir / "bag"
        record(robot, bag, episodes, seed)
    counts = _recorded_counts(bag)
    imported = import_recording(robot, bag, workdir / "dataset")
    trained_at = time.monotonic()
    checkpoint = train(workdir / "dataset", workdir / "run", training)
    train_s = time.monotonic() - trained_at
    deployment = deploy(robot, checkpoint, workdir, deploy_s)
    return {"counts": counts, "import": imported, "checkpoint": checkpoint, "train_s": train_s,
            "deployment": deployment, "total_s": time.monotonic() - began}


# ------------------------------------------------------------------ deployment episodes on the emulator
EFFECTOR_LINK = {"reach_around": "fingertip"}  # the point whose distance to the goal is success
PANDA_LINK = "end_effector"


@dataclass(frozen=True)
class EpisodeResult:
    seed: int
    success: bool
    mode: str
    seconds: float
    distance: float


def episode_config(robot: Robot, workdir: Path, max_episode_s: float) -> Path:
    """config/hil.yaml with warpd_episodes added: success by forward kinematics of the task's model, as on a
    robot (the emulator has no simulator to say so), with the task's own radius and time limit."""
    import yaml

    from warpd_core.tasks import make_task

    config = yaml.safe_load((REPO / "config" / "hil.yaml").read_text())
    config["warpd_graph"]["ros__parameters"]["nodes"] = [
        "warpd_driver_emulator", "warpd_controller", "warpd_planner", "warpd_episodes"]
    env = make_task(robot.task)
    config["warpd_episodes"] = {"ros__parameters": {
        "task": robot.task, "robot_model": f"task:{robot.task}",
        "link": EFFECTOR_LINK.get(robot.task, PANDA_LINK), "joint_names": list(robot.joints),
        "success_radius": 0.03, "success_hold_s": 0.0, "max_episode_s": max_episode_s or
        env.spec.max_steps * env.spec.control_dt, "planar": len(robot.goal) == 2, "goal_features": len(robot.goal)}}
    path = workdir / f"hil-episodes-{robot.interface}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def evaluate_on_emulator(robot: Robot, checkpoint: Path, workdir: Path, seeds, max_episode_s: float = 0.0,
                         progress=None, joint_model: str = FIRST_ORDER) -> list[EpisodeResult]:
    """Deploy with `warpd bringup hil` (emulator + controller + planner + warpd_episodes) and run one episode
    per seed: the emulator is put at the task's start posture for that seed with its goal as task features
    (~/reset, as an operator would), warpd_episodes' ~/reset starts the episode (the planner plans on its
    RESET), and its SUCCESS/TIMEOUT ends it."""
    from warpd_core.tasks import make_task
    from warpd_ros.testing.standin import running

    workdir.mkdir(parents=True, exist_ok=True)
    config = episode_config(robot, workdir, max_episode_s)
    log = workdir / f"hil-episodes-{robot.interface}-{joint_model}.log"
    graph = _started(["bringup", "hil", "--config", config, *hil_overrides(robot, checkpoint, joint_model)], log)
    env = make_task(robot.task)
    n = len(robot.joints)
    results = []
    try:
        with running(_Operator) as op:
            if not op.spin_until(lambda: graph.poll() is not None or (op.emulator_reset.service_is_ready()
                                                                      and op.episodes_reset.service_is_ready()), 90):
                raise AssertionError("the HIL graph did not come up:\n" + log.read_text()[-3000:])
            # the controller active and running a first plan: the planner has loaded and warmed up
            if not op.spin_until(lambda: graph.poll() is not None or any(s.mode == 1 for s in op.statuses), 90):
                raise AssertionError("the controller never ran a policy:\n" + log.read_text()[-3000:])
            if graph.poll() is not None:
                raise AssertionError("the HIL graph stopped:\n" + log.read_text()[-3000:])
            for seed in seeds:
                obs = env.reset(seed)
                op.set_parameter("warpd_driver_emulator", "initial_positions", [float(v) for v in obs[:n]])
                op.set_parameter("warpd_driver_emulator", "task_features", [float(v) for v in obs[2 * n:]])
                op.call(op.emulator_reset, _trigger())
                op.spin_for(0.1)  # the reset posture and features reach controller and planner
                before = len(op.ended)
                op.call(op.episodes_reset, _trigger())
                limit = float(max_episode_s or env.spec.max_steps * env.spec.control_dt) + 10.0
                if not op.spin_until(lambda: len(op.ended) > before, limit):
                    raise AssertionError(f"seed {seed}: no end of episode within {limit:g} s:\n"
                                         + log.read_text()[-3000:])
                event = op.ended[-1]
                results.append(EpisodeResult(seed, event.event == 1, event.mode, event.episode_time, event.distance))
                if progress is not None:
                    progress(results[-1])
    finally:
        stop_process(graph, signal.SIGINT, timeout=30, group=True)
    return results


def _trigger():
    from std_srvs.srv import Trigger

    return Trigger.Request()


class _Operator:
    """Resets the emulator and starts episodes through their services; collects episode ends."""

    def __new__(cls, context):
        from std_srvs.srv import Trigger

        from warpd_ros import topics
        from warpd_ros.msg import ControllerStatus, EpisodeEvent
        from warpd_ros.qos import EVENTS_QOS, STATUS_QOS
        from warpd_ros.testing.standin import TestNode

        node = TestNode(context, "from_bag_operator")
        node.ended, node.statuses = [], []
        node.node.create_subscription(ControllerStatus, topics.CONTROLLER_STATUS, node.statuses.append, STATUS_QOS)
        node.emulator_reset = node.node.create_client(Trigger, "/warpd_driver_emulator/reset")
        node.episodes_reset = node.node.create_client(Trigger, "/warpd_episodes/reset")

        def on_event(msg):
            if msg.event in (EpisodeEvent.SUCCESS, EpisodeEvent.TIMEOUT):
                node.ended.append(msg)
        node.node.create_subscription(EpisodeEvent, topics.EPISODE_EVENTS, on_event, EVENTS_QOS)
        return node
