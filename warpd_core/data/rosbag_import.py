"""Turn a rosbag2 recording of a robot (joint states + commands, optionally goals, task features and
episode events) into dataset episodes that training can use as they are.

The pairing rule is what a controller saw online: each command message is one step, its action
is the command's data, and its observation is the latest JointState received at or before the
command (bag receive times, not header stamps, which may come from another clock); goal and task
features are likewise the latest at or before the step. Commands before the first joint state have
no observation and are skipped. With a control rate (`rate`), each episode is resampled instead:
steps at t0 + k / rate from the joint state the episode's first command answered (t0), joint states
interpolated linearly, and as action the command that answered the state: the first one after the
step's time (within 1/rate; else the latest before it). Pairing a step with the command in force at
its time instead would pair each state with the answer to the state before it: a one-step lag that
measurably hurts behaviour cloning (the expert's commands matched the previous state's observation
5-10x better than their own under that rule, in bench.from_bag's recordings).

Episodes come from episode events when given (warpd_ros/msg/EpisodeEvent: RESET .. SUCCESS /
TIMEOUT; or std_msgs/msg/Bool: True .. False); otherwise a silence of `split_gap` seconds on the
command topic, or `split_idle` seconds of zero velocity commands / unchanged position targets,
ends an episode, and `max_episode_seconds` cuts long stretches. Success comes from the events, else
from a forward-kinematics rule (link within a radius of the goal at the end), else from a labels
file; training uses only episodes known to be successful.

Reads with the pure-Python `rosbags` library (sqlite3 and mcap storage, no ROS install needed).
Bags that embed their message definitions (rosbag2 format 8+) are decoded with those; older ones
with the ROS 2 "kilted" definitions plus warpd_ros's EpisodeEvent.
"""
from __future__ import annotations

import csv
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from tqdm import tqdm

from warpd_core.data.schema import DatasetInfo, EpisodeRecord, made_by
from warpd_core.errors import WarpdError
from warpd_core.robot_contract import ACTION_SUFFIX, COMMAND_INTERFACES, DEFAULT_FRAME, VELOCITY, goal_features

JOINT_STATE_TYPES = ("sensor_msgs/msg/JointState",)
ARRAY_TYPES = ("std_msgs/msg/Float64MultiArray", "std_msgs/msg/Float32MultiArray")
TRAJECTORY_TYPE = "trajectory_msgs/msg/JointTrajectory"
COMMAND_TYPES = (*ARRAY_TYPES, TRAJECTORY_TYPE)
GOAL_TYPES = ("geometry_msgs/msg/PoseStamped", "geometry_msgs/msg/PointStamped")
EPISODE_EVENT_TYPE = "warpd_ros/msg/EpisodeEvent"
EVENT_TYPES = (EPISODE_EVENT_TYPE, "std_msgs/msg/Bool")
TF_STATIC_TOPIC, TF_TYPE = "/tf_static", "tf2_msgs/msg/TFMessage"
RESET, SUCCESS, TIMEOUT, PERTURBATION = 0, 1, 2, 3  # EpisodeEvent.event
IDLE_TOLERANCE = 1e-6  # |velocity command| or |target change| at or below this counts as idle
SMOOTHING = np.array([0.25, 0.5, 0.25])  # applied to derived velocities
GOAL_GRACE_NS = 500_000_000  # a goal received this soon after an episode's first step was set for the episode


@dataclass(frozen=True)
class ImportOptions:
    """Everything `warpd import-bag` can be told; the defaults reproduce the plain two-topic import."""

    joint_states_topic: str = "/joint_states"
    commands_topic: str = "/forward_velocity_controller/commands"
    joints: tuple[str, ...] | None = None  # observed and commanded joints, in the command's order
    command_interface: str = VELOCITY
    split_gap: float = 0.5
    max_episode_seconds: float | None = None
    split_idle: float | None = None
    rate: float | None = None  # resample to this control rate (Hz)
    goal_topic: str | None = None
    frame: str = DEFAULT_FRAME
    goal_transform: tuple[float, ...] | None = None  # x y z qx qy qz qw, goal frame -> `frame`
    goal_feature_names: tuple[str, ...] = ("goal_x", "goal_y", "goal_z")
    features_topic: str | None = None
    feature_names: tuple[str, ...] | None = None
    episode_events_topic: str | None = None
    hold_after_success: float = 0.0  # seconds of an episode kept after its SUCCESS event (staying at the goal)
    success_rule: tuple[str, float] | None = None  # (body or site, radius in m)
    robot_model: str | None = None  # MJCF/URDF path or task:<name>
    labels: str | None = None  # YAML or CSV: episode -> success[, mode]

    def check(self) -> None:
        """Combinations that cannot work fail before the bag is read."""
        if self.command_interface not in COMMAND_INTERFACES:
            raise WarpdError(f"command interface {self.command_interface!r} is not one of {COMMAND_INTERFACES}")
        if self.success_rule and not self.robot_model:
            raise WarpdError("--success-rule needs --robot-model (the model whose link is measured)",
                             "e.g. --robot-model task:reach_around or --robot-model path/to/robot.urdf")
        if self.success_rule and not self.goal_topic:
            raise WarpdError("--success-rule needs --goal (the position the link must reach)")
        if self.feature_names and not self.features_topic:
            raise WarpdError("--feature-names needs --features (the topic the features come from)")
        if self.goal_transform is not None and not self.goal_topic:
            raise WarpdError("--goal-transform needs --goal")
        if self.hold_after_success and not self.episode_events_topic:
            raise WarpdError("--hold-after-success needs --episode-events (the SUCCESS it counts from)")
        if self.goal_topic:
            goal_features(self.goal_feature_names, (0.0, 0.0, 0.0))  # only goal_x/y/z can come from a position


@dataclass(frozen=True)
class BagEpisode:
    observations: np.ndarray  # (T, 2 * joints + features): positions, velocities, goal and extra features
    actions: np.ndarray  # (T, joints), in `joints` order
    start_ns: int  # bag receive time of the first and last step
    end_ns: int
    success: bool | None = None
    mode: str | None = None
    seed: int | None = None
    metadata: dict = field(default_factory=dict)  # success_source, event fields, final_distance ...


@dataclass(frozen=True)
class BagImport:
    bag: Path
    topics: dict[str, str]  # "joint_states" / "commands" / ... -> topic name
    joints: tuple[str, ...]
    command_interface: str
    task_features: tuple[str, ...]  # observation entries after [q, qd]
    task_frame: str
    episodes: list[BagEpisode]
    skipped_commands: int  # received before the first joint state
    control_dt: float | None  # 1 / rate, or the command period measured within episodes (command_period), s
    notes: list[str] = field(default_factory=list)  # what the import did that the user should know

    def dataset_info(self, task_name: str) -> DatasetInfo:
        suffix = ACTION_SUFFIX[self.command_interface]
        observations = [f"q_{j}" for j in self.joints] + [f"qd_{j}" for j in self.joints] + list(self.task_features)
        return DatasetInfo((task_name,), tuple(observations), tuple(f"{j}{suffix}" for j in self.joints),
                           self.control_dt, made_by("warpd import-bag"), task_frame=self.task_frame)

    def record(self, episode: BagEpisode, episode_index: int, task_name: str) -> EpisodeRecord:
        metadata = {"bag": str(self.bag.resolve()), "start_ns": episode.start_ns, "end_ns": episode.end_ns,
                    **{f"{name}_topic": topic for name, topic in self.topics.items()}, **episode.metadata}
        return EpisodeRecord(episode_index, task_name, len(episode.actions), success=episode.success,
                             mode=episode.mode, seed=episode.seed, metadata=metadata)

    def outcome_counts(self) -> dict[str, int]:
        """{"successful", "failed", "unknown"}: episodes by what is known of their success."""
        known = [e.success for e in self.episodes]
        return {"successful": known.count(True), "failed": known.count(False), "unknown": known.count(None)}


def import_bag(path, options: ImportOptions | None = None, progress: bool = False) -> BagImport:
    """Read the bag at `path` as `options` say and cut it into episodes."""
    options = options or ImportOptions()
    options.check()
    path = Path(path)
    rule = None
    if options.success_rule:
        from warpd_core.kinematics import LinkKinematics

        rule = (LinkKinematics.load(options.robot_model, options.success_rule[0]), options.success_rule[1])
    labels = read_labels(options.labels) if options.labels else None
    topics = {"joint_states": options.joint_states_topic, "commands": options.commands_topic}
    with open_bag(path) as reader:
        start = reader.start_time
        streams = {options.joint_states_topic: _JointStates(options.joints, options.joint_states_topic, start),
                   options.commands_topic: _Commands(options.commands_topic, options.command_interface, start)}
        wanted = [(options.joint_states_topic, JOINT_STATE_TYPES, "--joint-states"),
                  (options.commands_topic, COMMAND_TYPES, "--commands")]
        if options.goal_topic:
            streams[options.goal_topic] = _Goals(options.goal_topic, start)
            wanted.append((options.goal_topic, GOAL_TYPES, "--goal"))
            topics["goal"] = options.goal_topic
            if options.goal_transform is None and TF_STATIC_TOPIC in reader.topics:
                streams[TF_STATIC_TOPIC] = _StaticTransforms()
                wanted.append((TF_STATIC_TOPIC, (TF_TYPE,), "/tf_static"))
        if options.features_topic:
            streams[options.features_topic] = _Features(options.features_topic, options.feature_names, start)
            wanted.append((options.features_topic, ARRAY_TYPES, "--features"))
            topics["features"] = options.features_topic
        if options.episode_events_topic:
            streams[options.episode_events_topic] = _Events()
            wanted.append((options.episode_events_topic, EVENT_TYPES, "--episode-events"))
            topics["episode_events"] = options.episode_events_topic
        if len(streams) < len(wanted):
            roles = ", ".join(f"{option} {topic}" for topic, _, option in wanted)
            raise WarpdError(f"one topic is given for two different roles: {roles}", "each of --joint-states, "
                             "--commands, --goal, --features, --episode-events needs its own topic")
        found = [c for topic, types, option in wanted for c in connections(reader, topic, types, option)]
        total = sum(reader.topics[t].msgcount for t in streams)
        for connection, t_ns, raw in tqdm(reader.messages(found), total=total, desc="read bag", unit="msg",
                                          disable=not progress):
            streams[connection.topic].add(t_ns, reader.deserialize(raw, connection.msgtype))
    return _build(path, options, streams, topics, rule, labels)


def _build(path, options, streams, topics, rule, labels) -> BagImport:
    states: _JointStates = streams[options.joint_states_topic]
    notes = states.finish()
    commands = streams[options.commands_topic]
    cmd_t, cmd_rows = commands.finish(states.joints)
    keep = cmd_t >= states.t[0]
    skipped = int(np.count_nonzero(~keep))
    if not keep.any():
        raise WarpdError(f"no command on {commands.topic} arrives after a JointState on {states.topic} "
                         f"({len(cmd_t)} commands, {len(states.times)} joint states)",
                         "record both topics at the same time")
    cmd_t, cmd_rows = cmd_t[keep], cmd_rows[keep]
    goals = streams[options.goal_topic].finish(options, streams.get(TF_STATIC_TOPIC)) if options.goal_topic else None
    features = streams[options.features_topic].finish() if options.features_topic else None
    if options.episode_events_topic:
        segments = streams[options.episode_events_topic].segments(cmd_t, options.hold_after_success)
        if not segments:
            raise WarpdError(f"no episode on {options.episode_events_topic} holds a command",
                             "episodes start at RESET (or Bool True) and end at SUCCESS/TIMEOUT (or False)")
    else:
        removed = _idle_rows(cmd_t, cmd_rows, options) if options.split_idle else np.zeros(len(cmd_t), bool)
        segments = [(rows, {}) for rows in _split(cmd_t, removed, options.split_gap, options.max_episode_seconds)]
    episodes, late = [], 0
    for rows, outcome in tqdm(segments, desc="episodes", unit="ep", disable=len(segments) < 50):
        step_t, actions = _steps(cmd_t[rows], cmd_rows[rows], options.rate, states.t)
        obs = states.at(step_t, interpolate=options.rate is not None)
        extra, goal_xyz, ok = [], None, np.ones(len(step_t), bool)
        if goals is not None:
            goal_xyz, have = _episode_goal(goals[0], goals[1], step_t)
            extra.append(np.array([goal_features(options.goal_feature_names, g) for g in goal_xyz]).reshape(
                len(step_t), len(options.goal_feature_names)))
            ok &= have
        if features is not None:
            values, have = _latest(features[0], features[1], step_t)
            extra.append(values)
            ok &= have
        late += int(np.count_nonzero(~ok))
        if not ok.any():
            continue
        obs = np.concatenate([obs, *extra], axis=1)[ok]
        episodes.append(_episode(obs, actions[ok], step_t[ok], outcome,
                                 None if goal_xyz is None else goal_xyz[ok][-1], states.joints, rule))
    if late:
        notes.append(f"dropped {late} steps before the first goal/feature message")
    if not episodes:
        raise WarpdError("no episode has a step with joint state, command and goal/features all known",
                         "record the goal and feature topics from the start")
    if labels is not None:
        episodes = _apply_labels(episodes, labels, options.labels)
    if options.rate:
        control_dt = 1.0 / options.rate
    else:
        control_dt = command_period([cmd_t[rows] for rows, _ in segments])
    task_features = (tuple(options.goal_feature_names) if goals is not None else ()) + (
        features[2] if features is not None else ())
    return BagImport(path, topics, states.joints, options.command_interface, task_features, options.frame,
                     episodes, skipped, control_dt, notes)


def command_period(times_ns: list[np.ndarray]) -> float | None:
    """The control period of commands received at `times_ns` (one array per episode, bag receive times).

    The median interval finds the period; the episodes' spans over how many such periods they hold then
    measure it, so receive jitter cancels (a median of single intervals gave 19.9 ms for a 50 Hz sender on
    a loaded machine), while a stray extra command or a dropped one does not count as a period or as
    none. Reported as 1 / a whole number of Hz when within 1% of one (controllers run at 50, 100, 500 Hz;
    a sim a little slower than real time is not 49.8 Hz)."""
    intervals = [np.diff(np.asarray(t, dtype=np.float64)) for t in times_ns if len(t) > 1]
    if not intervals:
        return None
    median = float(np.median(np.concatenate(intervals)))
    if median <= 0:
        return None
    periods = sum(float(np.rint(d / median).sum()) for d in intervals)
    rate = periods / (sum(float(d.sum()) for d in intervals) / 1e9)
    whole = round(rate)
    return 1.0 / whole if whole > 0 and abs(rate - whole) <= 0.01 * rate else round(1.0 / rate, 6)


def _episode(obs, actions, step_t, outcome, final_goal, joints, rule) -> BagEpisode:
    """One episode with its success from the events, else the kinematic rule (labels come later)."""
    metadata = {k: v for k, v in outcome.items() if k not in ("success", "mode", "seed")}
    success, source = outcome.get("success"), ("episode_events" if outcome.get("success") is not None else None)
    if rule is not None:
        link, radius = rule
        distance = float(np.linalg.norm(link.position(joints, obs[-1, :len(joints)]) - final_goal))
        metadata["final_distance"] = round(distance, 6)
        if success is None:
            success, source = distance <= radius, "success_rule"
    if source:
        metadata["success_source"] = source
    return BagEpisode(obs, actions, int(step_t[0]), int(step_t[-1]), success, outcome.get("mode"),
                      outcome.get("seed"), metadata)


def read_labels(path) -> dict[int, tuple[bool, str | None]]:
    """Episode index (0-based, in recording order) -> (success, mode or None) from a YAML mapping
    ({0: true, 1: {success: false, mode: left}}) or a CSV with columns episode,success[,mode]."""
    path = Path(path)
    if not path.is_file():
        raise WarpdError(f"labels file {path} does not exist", "a YAML or CSV file: episode -> success")
    text = path.read_text()
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if not rows or not {"episode", "success"} <= set(rows[0]):
            raise WarpdError(f"labels file {path} needs a header line with columns episode,success[,mode]")
        entries = [(r["episode"], {"success": r["success"], "mode": r.get("mode")}) for r in rows]
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise WarpdError(f"labels file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise WarpdError(f"labels file {path} must map episode indices to true/false",
                             "e.g. `0: true` or `1: {success: false, mode: left}` one per line")
        entries = [(k, v if isinstance(v, dict) else {"success": v}) for k, v in data.items()]
    labels = {}
    for key, value in entries:
        index, success = _label_int(key), _label_bool(value.get("success"))
        if index is None or success is None:
            raise WarpdError(f"labels file {path}: bad entry {key!r}: {value!r}",
                             "each entry is an episode index >= 0 and success true/false (mode optional)")
        labels[index] = (success, (str(value["mode"]) if value.get("mode") not in (None, "") else None))
    return labels


def _label_int(value) -> int | None:
    try:
        index = int(str(value).strip())
    except ValueError:
        return None
    return index if index >= 0 else None


def _label_bool(value) -> bool | None:
    if isinstance(value, bool):
        return value
    return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(
        str(value).strip().lower())


def _apply_labels(episodes, labels, source) -> list[BagEpisode]:
    if beyond := sorted(k for k in labels if k >= len(episodes)):
        raise WarpdError(f"labels file {source} labels episode(s) {beyond} but the bag has {len(episodes)} "
                         f"episodes (0..{len(episodes) - 1})", "index episodes from 0, in recording order")
    out = []
    for k, e in enumerate(episodes):
        if e.success is None and k in labels:
            success, mode = labels[k]
            e = BagEpisode(e.observations, e.actions, e.start_ns, e.end_ns, success, e.mode or mode, e.seed,
                           {**e.metadata, "success_source": "labels"})
        out.append(e)
    return out


# ---- reading -------------------------------------------------------------------------------------

def episode_event_typestore():
    """The kilted typestore plus warpd_ros/msg/EpisodeEvent, for bags that do not embed definitions."""
    typestore = get_typestore(Stores.ROS2_KILTED)
    msg = _episode_event_msg()
    if msg is not None:
        typestore.register(get_types_from_msg(msg.read_text(), EPISODE_EVENT_TYPE))
    return typestore


def _episode_event_msg() -> Path | None:
    here = Path(__file__).resolve().parents[2] / "msg" / "EpisodeEvent.msg"  # source tree
    candidates = [here] + [Path(p) / "share" / "warpd_ros" / "msg" / "EpisodeEvent.msg"
                           for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    return next((p for p in candidates if p.is_file()), None)


@contextmanager
def open_bag(path: Path):
    """An AnyReader on the bag at `path`, or a WarpdError that says what `path` is instead."""
    path = Path(path)
    if not path.exists():
        raise WarpdError(f"bag {path} does not exist", "pass the directory that `ros2 bag record` created")
    if not (path / "metadata.yaml").is_file():
        raise WarpdError(f"{path} is not a rosbag2 recording (no metadata.yaml in it)",
                         "pass the bag directory, which holds metadata.yaml and the .db3 or .mcap files")
    try:
        with AnyReader([path], default_typestore=episode_event_typestore()) as reader:
            yield reader
    except AnyReaderError as exc:
        raise WarpdError(f"cannot read bag {path}: {exc}", "check that the bag is complete (ros2 bag info)") from None


def connections(reader, topic: str, supported: tuple[str, ...], option: str) -> list:
    """The bag's connections of `topic`, refusing a topic that is absent or of another type."""
    topics = reader.topics
    if topic not in topics:
        there = ", ".join(f"{name} [{info.msgtype}]" for name, info in sorted(topics.items())) or "none"
        raise WarpdError(f"topic {topic} ({option}) is not in the bag", f"topics in the bag: {there}")
    if topics[topic].msgtype not in supported:
        raise WarpdError(f"topic {topic} ({option}) has type {topics[topic].msgtype}, which cannot be imported",
                         f"{option} needs a topic of type {' or '.join(supported)}")
    return list(topics[topic].connections)


class _JointStates:
    """Joint positions and velocities over time, rearranged into the chosen joint order."""

    def __init__(self, joints: tuple[str, ...] | None, topic: str, bag_start_ns: int):
        self.joints, self.topic, self.bag_start_ns = joints, topic, bag_start_ns
        self.times: list[int] = []
        self.stamps: list[int] = []
        self.rows: list[np.ndarray] = []
        self._order: dict[tuple[str, ...], np.ndarray] = {}  # names as sent -> indices of self.joints

    def add(self, t_ns: int, msg) -> None:
        names = tuple(msg.name)
        velocity = msg.velocity if len(msg.velocity) else np.full(len(names), np.nan)
        if not len(msg.position) == len(velocity) == len(names):
            raise WarpdError(f"JointState on {self.topic} at {_seconds(t_ns, self.bag_start_ns)} has {len(names)} "
                             f"names but {len(msg.position)} positions and {len(msg.velocity)} velocities",
                             "each joint needs a position (velocities may be left empty: they are then derived)")
        if self.joints is None:
            self.joints = names
        order = self._order.get(names)
        if order is None:
            order = self._order[names] = self._indices(names)
        position = np.asarray(msg.position, dtype=np.float64)[order]
        if not np.isfinite(position).all():
            bad = [j for j, p in zip(self.joints, position) if not np.isfinite(p)]
            raise WarpdError(f"JointState on {self.topic} at {_seconds(t_ns, self.bag_start_ns)} has no valid "
                             f"position for {', '.join(bad)} (NaN or infinite)",
                             "positions cannot be made up: leave those joints out with --joints, or cut the bag")
        self.times.append(t_ns)
        self.stamps.append(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)
        self.rows.append(np.concatenate([position, np.asarray(velocity, dtype=np.float64)[order]]))

    def _indices(self, names: tuple[str, ...]) -> np.ndarray:
        if missing := [j for j in self.joints if j not in names]:
            raise WarpdError(f"joint(s) {', '.join(missing)} not in the JointState messages on {self.topic}",
                             f"joints there: {', '.join(names)}; pick from these with --joints, or leave it out "
                             "to use the order of the first message")
        return np.array([names.index(j) for j in self.joints])

    def finish(self) -> list[str]:
        """Stack the rows; fill missing (empty or NaN) velocities from positions. Returns notes."""
        if not self.rows:
            raise WarpdError(f"no JointState message on {self.topic}", "record the joint states with the commands")
        self.table = np.stack(self.rows)
        received = np.array(self.times, dtype=np.int64)
        stamps = np.array(self.stamps, dtype=np.int64)
        notes = []
        if _on_the_bags_clock(stamps, received):
            # when each state was measured: a command is paired with the newest state measured before it arrived
            self.t = stamps
            lag = (received - stamps) / 1e6
            notes.append(f"joint states placed at their header stamps (they reached the recorder {np.median(lag):.1f} "
                         f"ms later, p99 {np.percentile(lag, 99):.1f} ms; by receive times a fast answer can come "
                         "first)")
        else:
            self.t = received
        n = len(self.joints)
        missing = np.isnan(self.table[:, n:])
        if not missing.any():
            return notes
        use_stamps = len(stamps) > 1 and stamps[0] > 0 and (np.diff(stamps) > 0).all()
        clock = stamps if use_stamps else self.t
        if len(clock) < 2 or not (np.diff(clock) > 0).all():
            raise WarpdError(f"JointState messages on {self.topic} lack velocities, and they cannot be derived "
                             "from positions: fewer than two messages, or repeated times",
                             "record joint states with velocities (joint_state_broadcaster publishes them)")
        derived = _smooth(np.gradient(self.table[:, :n], (clock - clock[0]) / 1e9, axis=0))
        self.table[:, n:][missing] = derived[missing]
        rows = int(np.count_nonzero(missing.any(axis=1)))
        return notes + [f"velocities missing in {rows} of {len(self.t)} joint states: derived from positions (central "
                f"differences over {'header stamps' if use_stamps else 'bag receive times'}, smoothed 1/4 1/2 1/4)"]

    def at(self, times: np.ndarray, interpolate: bool) -> np.ndarray:
        """Rows at `times` (all at or after the first state): latest at or before, or linearly interpolated."""
        k = np.searchsorted(self.t, times, side="right") - 1
        if not interpolate:
            return self.table[k]
        nxt = np.minimum(k + 1, len(self.t) - 1)
        span = (self.t[nxt] - self.t[k]).astype(np.float64)
        w = np.where(span > 0, (times - self.t[k]) / np.where(span > 0, span, 1.0), 0.0)[:, None]
        return (1.0 - w) * self.table[k] + w * self.table[nxt]


def _on_the_bags_clock(stamps: np.ndarray, received: np.ndarray) -> bool:
    """Header stamps usable as measurement times: set, in order, and on the recorder's clock (none more than
    5 ms after its own receipt, none more than 1 s before it): a driver on another clock, a replayed bag or
    sim time recorded on wall time fall back to receive times."""
    if len(stamps) < 2 or (stamps <= 0).any() or (np.diff(stamps) < 0).any():
        return False
    lag = received - stamps
    return bool(lag.min() >= -5_000_000 and lag.max() <= 1_000_000_000)


def _smooth(values: np.ndarray) -> np.ndarray:
    """A light [1/4, 1/2, 1/4] filter along time, edges repeated (a constant stays exact)."""
    if len(values) < 3:
        return values
    padded = np.concatenate([values[:1], values, values[-1:]])
    return SMOOTHING[0] * padded[:-2] + SMOOTHING[1] * padded[1:-1] + SMOOTHING[2] * padded[2:]


class _Commands:
    """Command messages: arrays in joint order, or JointTrajectory first points reordered by name."""

    def __init__(self, topic: str, interface: str, bag_start_ns: int):
        self.topic, self.interface, self.bag_start_ns = topic, interface, bag_start_ns
        self.times: list[int] = []
        self.rows: list[tuple[tuple[str, ...] | None, np.ndarray]] = []

    def add(self, t_ns: int, msg) -> None:
        where = f"{self.topic} at {_seconds(t_ns, self.bag_start_ns)}"
        if hasattr(msg, "points"):
            names, data = tuple(msg.joint_names), self._trajectory_values(msg, where)
        else:
            names, data = None, np.asarray(msg.data, dtype=np.float64)
            if self.rows and len(data) != len(self.rows[0][1]):
                raise WarpdError(f"command on {where} has {len(data)} values; the earlier ones had "
                                 f"{len(self.rows[0][1])}",
                                 "one dataset needs one command layout: cut the bag at the change (ros2 bag convert)")
        self.times.append(t_ns)
        self.rows.append((names, data))

    def _trajectory_values(self, msg, where: str) -> np.ndarray:
        field_name = "velocities" if self.interface == VELOCITY else "positions"
        if not msg.points:
            raise WarpdError(f"JointTrajectory on {where} has no points", "each command needs at least one point")
        values = np.asarray(getattr(msg.points[0], field_name), dtype=np.float64)
        if len(values) == 0:
            raise WarpdError(f"JointTrajectory on {where} has no {field_name} in its first point",
                             f"--command-interface {self.interface} reads the first point's {field_name}; "
                             f"choose the interface whose field the controller was sent")
        if len(values) != len(msg.joint_names):
            raise WarpdError(f"JointTrajectory on {where} has {len(msg.joint_names)} joint_names but "
                             f"{len(values)} {field_name}")
        return values

    def finish(self, joints: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(times, rows in `joints` order)."""
        if not self.rows:
            raise WarpdError(f"no command message on {self.topic}")
        order: dict[tuple[str, ...], list[int]] = {}
        rows = []
        for t, (names, data) in zip(self.times, self.rows):
            if names is None:
                if len(data) != len(joints):
                    raise WarpdError(f"commands on {self.topic} have {len(data)} values but {len(joints)} joints are "
                                     f"observed ({', '.join(joints)})",
                                     "pass --joints with the commanded joints, in the order the controller takes "
                                     "them (its `joints` parameter)")
                rows.append(data)
                continue
            if names not in order:
                if missing := [j for j in joints if j not in names]:
                    raise WarpdError(f"JointTrajectory on {self.topic} at {_seconds(t, self.bag_start_ns)} commands "
                                     f"no {', '.join(missing)}", f"its joint_names: {', '.join(names)}; choose "
                                     "--joints among these")
                order[names] = [names.index(j) for j in joints]
            rows.append(data[order[names]])
        return np.array(self.times, dtype=np.int64), np.stack(rows)


class _Goals:
    """Goal positions and their frames; put into the training frame once /tf_static is read."""

    def __init__(self, topic: str, bag_start_ns: int):
        self.topic, self.bag_start_ns = topic, bag_start_ns
        self.times, self.frames, self.points = [], [], []

    def add(self, t_ns: int, msg) -> None:
        p = msg.pose.position if hasattr(msg, "pose") else msg.point
        self.times.append(t_ns)
        self.frames.append(msg.header.frame_id.lstrip("/"))
        self.points.append((p.x, p.y, p.z))

    def finish(self, options: ImportOptions, tf_static) -> tuple[np.ndarray, np.ndarray]:
        if not self.times:
            raise WarpdError(f"no goal message on {self.topic}")
        target = options.frame.lstrip("/")
        fixed = None if options.goal_transform is None else _matrix(options.goal_transform)
        cache: dict[str, np.ndarray] = {}
        out = []
        for frame, point in zip(self.frames, self.points):
            if frame in ("", target):
                out.append(point)
                continue
            if frame not in cache:
                cache[frame] = fixed if fixed is not None else _lookup(tf_static, frame, target)
            m = cache[frame]
            out.append(m[:3, :3] @ np.asarray(point) + m[:3, 3])
        return np.array(self.times, dtype=np.int64), np.array(out, dtype=np.float64)


def _matrix(xyz_quat) -> np.ndarray:
    """4x4 transform from x y z qx qy qz qw (ROS order; transforms3d wants w first)."""
    from transforms3d.quaternions import quat2mat

    x, y, z, qx, qy, qz, qw = xyz_quat
    norm = np.linalg.norm([qw, qx, qy, qz])
    if not norm > 1e-9:
        raise WarpdError(f"transform {list(xyz_quat)} has a zero quaternion", "qx qy qz qw = 0 0 0 1 is no rotation")
    m = np.eye(4)
    m[:3, :3] = quat2mat(np.array([qw, qx, qy, qz]) / norm)
    m[:3, 3] = (x, y, z)
    return m


class _StaticTransforms:
    """/tf_static: child frame -> (parent frame, 4x4 pose of the child in the parent)."""

    def __init__(self):
        self.parent: dict[str, tuple[str, np.ndarray]] = {}

    def add(self, _t_ns: int, msg) -> None:
        for tr in msg.transforms:
            t, q = tr.transform.translation, tr.transform.rotation
            self.parent[tr.child_frame_id.lstrip("/")] = (tr.header.frame_id.lstrip("/"),
                                                          _matrix((t.x, t.y, t.z, q.x, q.y, q.z, q.w)))

    def to_root(self, frame: str) -> tuple[str, np.ndarray]:
        """(root frame, pose of `frame` in it) by chaining parents."""
        m, seen = np.eye(4), {frame}
        while frame in self.parent:
            frame, step = self.parent[frame]
            if frame in seen:
                raise WarpdError(f"/tf_static has a cycle through frame {frame!r}")
            seen.add(frame)
            m = step @ m
        return frame, m


def _lookup(tf_static: _StaticTransforms | None, source: str, target: str) -> np.ndarray:
    """The transform taking points in `source` to `target`, from /tf_static."""
    if tf_static is not None:
        root_s, m_s = tf_static.to_root(source)
        root_t, m_t = tf_static.to_root(target)
        if root_s == root_t:
            return np.linalg.inv(m_t) @ m_s
    edges = tf_static.parent.items() if tf_static else []
    known = sorted({f for child, (parent, _) in edges for f in (child, parent)})
    raise WarpdError(f"no transform from the goal's frame {source!r} to --frame {target!r}",
                     f"pass --goal-transform 'x y z qx qy qz qw' ({source} -> {target}), or record /tf_static; "
                     f"frames in /tf_static: {', '.join(known) or 'none (not in the bag)'}")


class _Features:
    def __init__(self, topic: str, names: tuple[str, ...] | None, bag_start_ns: int):
        self.topic, self.names, self.bag_start_ns = topic, names, bag_start_ns
        self.times, self.rows = [], []

    def add(self, t_ns: int, msg) -> None:
        data = np.asarray(msg.data, dtype=np.float64)
        size = len(self.names) if self.names else (len(self.rows[0]) if self.rows else len(data))
        if len(data) != size:
            raise WarpdError(f"features on {self.topic} at {_seconds(t_ns, self.bag_start_ns)} have {len(data)} "
                             f"values, expected {size}" + (f" ({', '.join(self.names)})" if self.names else ""),
                             "--feature-names names each value once; every message needs the same number")
        self.times.append(t_ns)
        self.rows.append(data)

    def finish(self) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        if not self.rows:
            raise WarpdError(f"no message on the features topic {self.topic}")
        names = self.names or tuple(f"feature_{i}" for i in range(len(self.rows[0])))
        return np.array(self.times, dtype=np.int64), np.stack(self.rows), names


class _Events:
    """Episode boundaries and outcomes from EpisodeEvent or Bool messages, in bag receive time."""

    def __init__(self):
        self.items: list[tuple[int, object]] = []

    def add(self, t_ns: int, msg) -> None:
        self.items.append((t_ns, msg))

    def segments(self, cmd_t: np.ndarray, hold_after_success: float = 0.0) -> list[tuple[np.ndarray, dict]]:
        """(command row indices, outcome) per episode that holds a command. An episode ended by SUCCESS keeps
        `hold_after_success` seconds after it (never past the next event): what the robot did at the goal,
        so the policies learn to stay there rather than only to arrive."""
        spans, current = [], None
        for t, msg in self.items:
            if hasattr(msg, "event"):
                if msg.event == RESET:
                    if current:
                        spans.append((current[0], t, {**current[1], "ended_by": "RESET"}))
                    current = (t, {"episode": int(msg.episode), "seed": int(msg.seed), "event_task": msg.task,
                                   "perturbations": 0})
                elif msg.event in (SUCCESS, TIMEOUT) and current:
                    success = msg.event == SUCCESS
                    spans.append((current[0], t, {**current[1], "success": success, "mode": msg.mode or None,
                                                  "ended_by": "SUCCESS" if success else "TIMEOUT",
                                                  "episode_time": float(msg.episode_time)}))
                    current = None
                elif msg.event == PERTURBATION and current:
                    current[1]["perturbations"] += 1
            elif msg.data and not current:
                current = (t, {})
            elif not msg.data and current:
                spans.append((current[0], t, {**current[1], "ended_by": "stop"}))
                current = None
        if current:
            spans.append((current[0], int(cmd_t[-1]), {**current[1], "ended_by": "end of bag"}))
        hold_ns = int(hold_after_success * 1e9)
        event_times = np.array(sorted(t for t, _ in self.items), dtype=np.int64)
        out = []
        for start, end, outcome in spans:
            if hold_ns and outcome.get("ended_by") == "SUCCESS":
                later = event_times[event_times > end]
                end = min(end + hold_ns, int(later[0]) - 1) if len(later) else end + hold_ns
            rows = np.flatnonzero((cmd_t >= start) & (cmd_t <= end))
            if len(rows):
                out.append((rows, outcome))
        return out


# ---- episodes and steps --------------------------------------------------------------------------

def _idle_rows(times: np.ndarray, rows: np.ndarray, options: ImportOptions) -> np.ndarray:
    """Commands inside an idle stretch of >= split_idle seconds (zero velocities / unchanged targets)."""
    if options.command_interface == VELOCITY:
        idle = (np.abs(rows) <= IDLE_TOLERANCE).all(axis=1)
    else:
        idle = np.concatenate([[False], (np.abs(np.diff(rows, axis=0)) <= IDLE_TOLERANCE).all(axis=1)])
    removed = np.zeros(len(times), bool)
    k = 0
    while k < len(times):
        if not idle[k]:
            k += 1
            continue
        end = k
        while end < len(times) and idle[end]:
            end += 1
        until = times[end] if end < len(times) else times[end - 1]  # idle until the next active command
        if until - times[k] >= options.split_idle * 1e9:
            removed[k:end] = True
        k = end
    return removed


def _split(times: np.ndarray, removed: np.ndarray, split_gap: float, max_seconds: float | None) -> list[np.ndarray]:
    """Row ranges: a new episode after a command silence >= split_gap, an idle stretch, or at max_seconds."""
    gap_ns, max_ns = split_gap * 1e9, (max_seconds * 1e9 if max_seconds else np.inf)
    bounds, start, prev = [], None, None
    for k in range(len(times)):
        if removed[k]:
            if start is not None:
                bounds.append((start, prev + 1))
            start = None
            continue
        if start is None:
            start = k
        elif times[k] - times[prev] >= gap_ns or times[k] - times[start] >= max_ns:
            bounds.append((start, prev + 1))
            start = k
        prev = k
    if start is not None:
        bounds.append((start, prev + 1))
    return [np.arange(a, b) for a, b in bounds]


def _steps(times: np.ndarray, actions: np.ndarray, rate: float | None,
           state_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step times and actions: one per command; or every 1/rate s from the joint state the first command
    answered, each step's action the command that answered it (see the module docstring)."""
    if not rate:
        return times, actions
    start = state_t[max(int(np.searchsorted(state_t, times[0], side="right")) - 1, 0)]
    count = int(np.floor((times[-1] - start) * rate / 1e9 + 1e-9)) + 1
    step_t = start + np.round(np.arange(count) * 1e9 / rate).astype(np.int64)
    after = np.minimum(np.searchsorted(times, step_t, side="right"), len(times) - 1)
    before = np.maximum(np.searchsorted(times, step_t, side="right") - 1, 0)
    answered = (times[after] > step_t) & (times[after] - step_t <= 1e9 / rate)
    return step_t, actions[np.where(answered, after, before)]


def _latest(times: np.ndarray, values: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(latest value at or before each of `at`, whether there was one); rows without one are zeros."""
    k = np.searchsorted(times, at, side="right") - 1
    return np.where((k >= 0)[:, None], values[np.maximum(k, 0)], 0.0), k >= 0


def _episode_goal(times: np.ndarray, values: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The latest goal at or before each step of one episode, except that steps before a goal received
    within GOAL_GRACE_NS of the episode's first step take that goal: set as the episode starts, it often
    arrives a few steps after the first joint states (in bench.from_bag's recordings, in 36% of episodes,
    up to 11 steps), and the previous episode's goal would label them."""
    value, have = _latest(times, values, at)
    early = np.flatnonzero((times >= at[0]) & (times <= at[0] + GOAL_GRACE_NS))
    if len(early):
        before = at < times[early[0]]
        value[before], have[before] = values[early[0]], True
    return value, have


def _seconds(t_ns: int, start_ns: int) -> str:
    return f"t={(t_ns - start_ns) / 1e9:.3f}s"
