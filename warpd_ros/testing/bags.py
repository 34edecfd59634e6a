"""rosbag2 files written with `rosbags` (no ROS install), the way `ros2 bag record` writes them: the one
writer the import-bag, eval-bag and bag-recorder tests build their recordings with."""
from __future__ import annotations

from pathlib import Path


def write_bag(path: Path, messages, typestore, storage=None) -> Path:
    """A rosbag2 (format 9) at `path` holding `messages`, (bag time ns, topic, message) in any order, each topic
    one connection of its message's type from `typestore`; sqlite3 storage unless `storage` says otherwise."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    with Writer(path, version=9, storage_plugin=storage or StoragePlugin.SQLITE3) as writer:
        connections = {}
        for t, topic, msg in sorted(messages, key=lambda m: m[0]):
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msg.__msgtype__, typestore=typestore)
            writer.write(connections[topic], t, typestore.serialize_cdr(msg, msg.__msgtype__))
    return path
