"""Turn a rosbag2 recording of a robot (joint states + velocity commands) into dataset episodes.

The pairing rule is what a controller saw online: each command message is one step, its action
is the command's data, and its observation is the latest JointState received at or before the
command (bag receive times, not header stamps, which may come from another clock). Commands
before the first joint state have no observation and are skipped. A silence of `split_gap`
seconds on the command topic ends an episode (the operator stopped), and `max_episode_seconds`
optionally cuts long stretches.

Reads with the pure-Python `rosbags` library (sqlite3 and mcap storage, no ROS install needed).
Bags that embed their message definitions (rosbag2 format 8+) are decoded with those; older ones
with the ROS 2 "kilted" definitions, which are the same for these message types.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.typesys import Stores, get_typestore
from tqdm import tqdm

from warpd_core.data.schema import DatasetInfo, EpisodeRecord, made_by
from warpd_core.errors import WarpdError

JOINT_STATE_TYPES = ("sensor_msgs/msg/JointState",)
COMMAND_TYPES = ("std_msgs/msg/Float64MultiArray", "std_msgs/msg/Float32MultiArray")


@dataclass(frozen=True)
class BagEpisode:
    observations: np.ndarray  # (T, 2 * joints): positions then velocities, in `joints` order
    actions: np.ndarray  # (T, command size)
    start_ns: int  # bag receive time of the first and last command
    end_ns: int


@dataclass(frozen=True)
class BagImport:
    bag: Path
    topics: dict[str, str]  # "joint_states" / "commands" -> topic name
    joints: tuple[str, ...]
    episodes: list[BagEpisode]
    skipped_commands: int  # received before the first joint state
    control_dt: float | None  # median command period within episodes, seconds

    def dataset_info(self, task_name: str) -> DatasetInfo:
        size = self.episodes[0].actions.shape[1]
        actions = [f"cmd_{j}" for j in self.joints] if size == len(self.joints) else [f"cmd_{i}" for i in range(size)]
        observations = [f"q_{j}" for j in self.joints] + [f"qd_{j}" for j in self.joints]
        return DatasetInfo((task_name,), tuple(observations), tuple(actions), self.control_dt,
                           made_by("warpd import-bag"))

    def record(self, episode: BagEpisode, episode_index: int, task_name: str) -> EpisodeRecord:
        metadata = {"bag": str(self.bag.resolve()), "start_ns": episode.start_ns, "end_ns": episode.end_ns,
                    **{f"{name}_topic": topic for name, topic in self.topics.items()}}
        return EpisodeRecord(episode_index, task_name, len(episode.actions), metadata=metadata)


def import_bag(path, joint_states_topic: str, commands_topic: str, joints: tuple[str, ...] | None = None,
               split_gap: float = 0.5, max_episode_seconds: float | None = None,
               progress: bool = False) -> BagImport:
    """Read the two topics from the bag at `path` and cut the paired steps into episodes."""
    path = Path(path)
    with _open_bag(path) as reader:
        states = _JointStates(joints, joint_states_topic, reader.start_time)
        commands = _Commands(commands_topic, reader.start_time)
        connections = (_connections(reader, joint_states_topic, JOINT_STATE_TYPES, "--joint-states")
                       + _connections(reader, commands_topic, COMMAND_TYPES, "--commands"))
        total = sum(reader.topics[t].msgcount for t in {joint_states_topic, commands_topic})
        for connection, t_ns, raw in tqdm(reader.messages(connections), total=total, desc="read bag", unit="msg",
                                          disable=not progress):
            stream = states if connection.topic == joint_states_topic else commands
            stream.add(t_ns, reader.deserialize(raw, connection.msgtype))
    obs, actions, times, skipped = _pair(states, commands)
    bounds = _episode_bounds(times, split_gap, max_episode_seconds)
    episodes = [BagEpisode(obs[a:b], actions[a:b], int(times[a]), int(times[b - 1])) for a, b in bounds]
    topics = {"joint_states": joint_states_topic, "commands": commands_topic}
    return BagImport(path, topics, states.joints, episodes, skipped, _control_dt(times, bounds))


@contextmanager
def _open_bag(path: Path):
    if not path.exists():
        raise WarpdError(f"bag {path} does not exist", "pass the directory that `ros2 bag record` created")
    if not (path / "metadata.yaml").is_file():
        raise WarpdError(f"{path} is not a rosbag2 recording (no metadata.yaml in it)",
                         "pass the bag directory, which holds metadata.yaml and the .db3 or .mcap files")
    try:
        with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
            yield reader
    except AnyReaderError as exc:
        raise WarpdError(f"cannot read bag {path}: {exc}", "check that the bag is complete (ros2 bag info)") from None


def _connections(reader, topic: str, supported: tuple[str, ...], option: str) -> list:
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
        self.rows: list[np.ndarray] = []
        self._order: dict[tuple[str, ...], np.ndarray] = {}  # names as sent -> indices of self.joints

    def add(self, t_ns: int, msg) -> None:
        names = tuple(msg.name)
        if not len(msg.position) == len(msg.velocity) == len(names):
            raise WarpdError(f"JointState on {self.topic} at {_seconds(t_ns, self.bag_start_ns)} has {len(names)} "
                             f"names but {len(msg.position)} positions and {len(msg.velocity)} velocities",
                             "each joint needs a position and a velocity (joint_state_broadcaster publishes both)")
        if self.joints is None:
            self.joints = names
        order = self._order.get(names)
        if order is None:
            order = self._order[names] = self._indices(names)
        self.times.append(t_ns)
        self.rows.append(np.concatenate([msg.position[order], msg.velocity[order]]))

    def _indices(self, names: tuple[str, ...]) -> np.ndarray:
        if missing := [j for j in self.joints if j not in names]:
            raise WarpdError(f"joint(s) {', '.join(missing)} not in the JointState messages on {self.topic}",
                             f"joints there: {', '.join(names)}; pick from these with --joints, or leave it out "
                             "to use the order of the first message")
        return np.array([names.index(j) for j in self.joints])


class _Commands:
    def __init__(self, topic: str, bag_start_ns: int):
        self.topic, self.bag_start_ns = topic, bag_start_ns
        self.times: list[int] = []
        self.rows: list[np.ndarray] = []

    def add(self, t_ns: int, msg) -> None:
        data = np.asarray(msg.data, dtype=np.float64)
        if self.rows and len(data) != len(self.rows[0]):
            raise WarpdError(f"command on {self.topic} at {_seconds(t_ns, self.bag_start_ns)} has {len(data)} values;"
                             f" the earlier ones had {len(self.rows[0])}",
                             "one dataset needs one command layout: cut the bag at the change (ros2 bag convert)")
        self.times.append(t_ns)
        self.rows.append(data)


def _pair(states: _JointStates, commands: _Commands):
    """(observations, actions, command times, skipped count): each command with the latest state at or before it."""
    cmd_t = np.array(commands.times, dtype=np.int64)
    latest = np.searchsorted(np.array(states.times, dtype=np.int64), cmd_t, side="right") - 1
    keep = latest >= 0
    if not keep.any():
        raise WarpdError(f"no command on {commands.topic} arrives after a JointState on {states.topic} "
                         f"({len(commands.times)} commands, {len(states.times)} joint states)",
                         "record both topics at the same time")
    obs = np.stack(states.rows)[latest[keep]]
    return obs, np.stack(commands.rows)[keep], cmd_t[keep], int(np.count_nonzero(~keep))


def _episode_bounds(times: np.ndarray, split_gap: float, max_seconds: float | None) -> list[tuple[int, int]]:
    """[start, stop) row ranges: a new episode after a command silence >= split_gap or at max_seconds."""
    gap_ns, max_ns = split_gap * 1e9, (max_seconds * 1e9 if max_seconds else np.inf)
    bounds, start = [], 0
    for k in range(1, len(times)):
        if times[k] - times[k - 1] >= gap_ns or times[k] - times[start] >= max_ns:
            bounds.append((start, k))
            start = k
    return bounds + [(start, len(times))]


def _control_dt(times: np.ndarray, bounds: list[tuple[int, int]]) -> float | None:
    periods = np.concatenate([np.diff(times[a:b]) for a, b in bounds]) / 1e9
    return round(float(np.median(periods)), 4) if len(periods) else None


def _seconds(t_ns: int, start_ns: int) -> str:
    return f"t={(t_ns - start_ns) / 1e9:.3f}s"
