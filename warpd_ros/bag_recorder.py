"""Record ROS 2 topics into a rosbag2 (MCAP storage) from a pip install: `warpd record-bag`.

The ROS wheels on PyPI carry no rosbag2, so this records the way `ros2 bag record` does, with rclpy and the
pure-Python `rosbags` library (the same one `warpd import-bag` reads with):

- each topic is subscribed *raw* (rclpy hands over the serialized CDR bytes, which go into the bag
  unchanged: no decode/encode, any message type);
- its type comes from the graph (get_topic_names_and_types); a topic that is not there yet is looked for
  again every `discovery_period_s` for as long as the recording runs;
- the subscription's QoS follows the publishers' (get_publishers_info_by_topic), as rosbag2's adaptive QoS
  does: reliable only if every publisher is reliable, transient-local only if every publisher is, so a
  latched topic (task features, robot_description) delivers its last message to the bag too. The
  publishers' offered QoS is stored with the connection (metadata.yaml), for playback;
- every message is logged at its receive time: when the middleware received it (rmw's
  received_timestamp), not when this Python process got round to it. An executor that was busy takes
  ready messages topic by topic, so processing times put a command after the joint state it caused
  whenever both waited (13% of the states of a recording on a loaded 2-core machine looked unanswered),
  and an importer pairs by these times. Under use_sim_time, the node's clock (sim time) when it is handled;
- message definitions are embedded in the MCAP file, so a reader needs no ROS install and no type
  registration to decode them: standard types from rosbags' Kilted store, warpd_ros/msg/* from this
  package's msg/*.msg files, and others from `<share>/<pkg>/msg/<Type>.msg` under AMENT_PREFIX_PATH or this
  venv where such a file is installed (a topic whose definition is found nowhere is not recorded, with a
  warning).

`BagRecorder(node, out_dir, topics)` is the API (tests use it in-process); `start()` opens the bag and
begins looking for the topics, `close()` closes it complete (metadata.yaml, the MCAP summary) and returns
the message count per topic. Callbacks and close() must not run at the same time: close after the
executor stopped spinning the node (the recorder also takes a lock, so a late callback is dropped, never
half written).
"""
from __future__ import annotations

import importlib
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "warpd_ros"
KEEP_LAST_DEPTH = 100  # subscription depth: room for a burst, and for what latched publishers keep


@dataclass
class RecordedTopic:
    name: str  # fully qualified topic name
    msgtype: str  # e.g. sensor_msgs/msg/JointState
    connection: object  # rosbags Connection
    subscription: object
    reliable: bool
    transient_local: bool
    count: int = 0


def _msg_dirs() -> list[Path]:
    """Where this package's .msg files are: the source checkout, then the installed share directory."""
    dirs = [Path(__file__).resolve().parents[1] / "msg"]
    dirs += [Path(prefix) / "share" / PACKAGE / "msg" for prefix in _share_prefixes()]
    return [d for d in dirs if d.is_dir()]


def _share_prefixes() -> list[str]:
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    return prefixes + [sys.prefix]


def _find_msg_file(msgtype: str) -> Path | None:
    package, _, name = msgtype.split("/")
    for prefix in _share_prefixes():
        path = Path(prefix) / "share" / package / "msg" / f"{name}.msg"
        if path.is_file():
            return path
    return None


def build_typestore():
    """rosbags' Kilted typestore plus this package's message types (warpd_ros/msg/*)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    for directory in _msg_dirs()[:1]:  # one copy of the definitions: the first found
        types = {}
        for path in sorted(directory.glob("*.msg")):
            types.update(get_types_from_msg(path.read_text(), f"{PACKAGE}/msg/{path.stem}"))
        store.register(types)
    return store


def _ensure_type(store, msgtype: str, seen: set | None = None) -> bool:
    """Make `msgtype` known to `store`, from an installed .msg file (and those of the types it refers to);
    False if a definition cannot be found."""
    from rosbags.typesys import get_types_from_msg

    if msgtype in store.types:
        return True
    seen = set() if seen is None else seen
    if msgtype in seen:
        return False
    seen.add(msgtype)
    path = _find_msg_file(msgtype)
    if path is None:
        return False
    types = get_types_from_msg(path.read_text(), msgtype)
    refs = {r for _, fields in types.values() for _, field in fields for r in _referenced_types(field)}
    if not all(_ensure_type(store, ref, seen) for ref in refs):
        return False
    store.register(types)
    return msgtype in store.types


def _referenced_types(field) -> list[str]:
    """Message type names a rosbags field description refers to (nested messages, arrays of them)."""
    from rosbags.typesys.base import Nodetype

    kind, detail = field
    if kind == Nodetype.NAME:
        return [detail]
    if kind in (Nodetype.ARRAY, Nodetype.SEQUENCE):
        return _referenced_types(detail[0])
    return []


def _message_class(msgtype: str):
    package, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def _rosbags_qos(profile):
    """An rclpy QoSProfile as rosbags' Qos (the enums share rmw's values)."""
    from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime)

    def duration(d):
        sec, nsec = divmod(int(d.nanoseconds), 10**9)
        return QosTime(sec=sec, nsec=nsec)

    return Qos(history=QosHistory(int(profile.history)), depth=int(profile.depth),
               reliability=QosReliability(int(profile.reliability)),
               durability=QosDurability(int(profile.durability)),
               deadline=duration(profile.deadline), lifespan=duration(profile.lifespan),
               liveliness=QosLiveliness(int(profile.liveliness)),
               liveliness_lease_duration=duration(profile.liveliness_lease_duration),
               avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions))


class BagRecorder:
    """Records `topics` (names as given on the command line; relative ones resolve in the node's namespace)
    from `node` into a new rosbag2 directory `out_dir` in MCAP storage."""

    def __init__(self, node, out_dir, topics, discovery_period_s: float = 0.2, log=None):
        if not topics:
            raise ValueError("no topics to record")
        self.node = node
        self.out_dir = Path(out_dir)
        self.wanted = list(dict.fromkeys(node.resolve_topic_name(t) for t in topics))
        self.discovery_period_s = discovery_period_s
        self.log = log or (lambda text: node.get_logger().info(text))
        self.topics: dict[str, RecordedTopic] = {}
        self.skipped: dict[str, str] = {}  # topic -> why it is not recorded
        self._writer = None
        self._timer = None
        self._lock = threading.Lock()
        self._store = None

    # ---- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        from warpd_core.errors import WarpdError

        try:
            from rosbags.rosbag2 import StoragePlugin, Writer
        except ImportError as exc:
            raise WarpdError(f"the rosbags library is missing ({exc})", "pip install rosbags==0.11.9 "
                             "(requirements/ml.txt has it)") from None
        if self.out_dir.exists():
            raise WarpdError(f"{self.out_dir} exists already", "a bag is written into a new directory: choose "
                                                               "another --out or remove it")
        self._store = build_typestore()
        self._writer = Writer(self.out_dir, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self.discover()
        self._timer = self.node.create_timer(self.discovery_period_s, self.discover)

    @property
    def missing(self) -> list[str]:
        """Topics not recorded (yet): not in the graph, or skipped."""
        return [t for t in self.wanted if t not in self.topics]

    def discover(self) -> list[str]:
        """Subscribe the wanted topics that have appeared in the graph since the last look; their names."""
        if self._writer is None:
            return []
        waiting = [t for t in self.wanted if t not in self.topics and t not in self.skipped]
        if not waiting:
            return []
        types = dict(self.node.get_topic_names_and_types())
        added = []
        for topic in waiting:
            if topic not in types:
                continue
            publishers = self.node.get_publishers_info_by_topic(topic)
            if not publishers:  # only subscribers so far: the QoS to match is not known yet
                continue
            msgtypes = types[topic]
            if len(msgtypes) != 1:
                self._skip(topic, f"it has several types {msgtypes}")
                continue
            if self._subscribe(topic, msgtypes[0], publishers):
                added.append(topic)
        return added

    def give_up(self, why: str) -> list[str]:
        """Stop looking for the topics that have not appeared; their names (each is reported with `why`)."""
        gone = [t for t in self.wanted if t not in self.topics and t not in self.skipped]
        for topic in gone:
            self.skipped[topic] = why
        return gone

    def _skip(self, topic: str, why: str) -> None:
        self.skipped[topic] = why
        self.node.get_logger().warning(f"not recording {topic}: {why}")

    def _subscribe(self, topic: str, msgtype: str, publishers) -> bool:
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        try:
            msg_class = _message_class(msgtype)
        except (ImportError, AttributeError, ValueError) as exc:
            self._skip(topic, f"its type {msgtype} cannot be imported here ({exc})")
            return False
        if not _ensure_type(self._store, msgtype):
            self._skip(topic, f"no message definition of {msgtype} found to embed in the bag")
            return False
        offered = [p.qos_profile for p in publishers]
        reliable = all(q.reliability == ReliabilityPolicy.RELIABLE for q in offered)
        transient_local = all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=KEEP_LAST_DEPTH,
                         reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL if transient_local else DurabilityPolicy.VOLATILE)
        with self._lock:
            connection = self._writer.add_connection(topic, msgtype, typestore=self._store,
                                                     offered_qos_profiles=[_rosbags_qos(q) for q in offered])
        entry = RecordedTopic(topic, msgtype, connection, None, reliable, transient_local)
        entry.subscription = self.node.create_subscription(
            msg_class, topic, lambda data, info: self._on_message(entry, data, info), qos, raw=True)
        self.topics[topic] = entry
        self.log(f"recording {topic} ({msgtype}, {'reliable' if reliable else 'best effort'}, "
                 f"{'transient local' if transient_local else 'volatile'})")
        return True

    def _on_message(self, entry: RecordedTopic, data: bytes, info) -> None:
        clock = self.node.get_clock()
        received = info.get("received_timestamp", 0) if isinstance(info, dict) else 0
        stamp = received if received > 0 and not clock.ros_time_is_active else clock.now().nanoseconds
        with self._lock:
            if self._writer is None:
                return
            self._writer.write(entry.connection, stamp, data)
            entry.count += 1

    def counts(self) -> dict[str, int]:
        return {t: self.topics[t].count if t in self.topics else 0 for t in self.wanted}

    def close(self) -> dict[str, int]:
        """Stop recording and close the bag (complete: metadata.yaml and the MCAP summary); counts per topic."""
        if self._timer is not None:
            self.node.destroy_timer(self._timer)
            self._timer = None
        for entry in self.topics.values():
            if entry.subscription is not None:
                self.node.destroy_subscription(entry.subscription)
                entry.subscription = None
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        return self.counts()

    def summary(self) -> str:
        lines = [f"bag {self.out_dir} (rosbag2, mcap): {sum(self.counts().values())} messages"]
        width = max(len(t) for t in self.wanted)
        for topic in self.wanted:
            if topic in self.topics:
                entry = self.topics[topic]
                lines.append(f"  {topic:<{width}}  {entry.count:>7}  {entry.msgtype}")
            else:
                lines.append(f"  {topic:<{width}}  {'-':>7}  not recorded: {self.skipped.get(topic, 'never published')}")
        return "\n".join(lines)
