"""What warpd_sim shows in RViz / Foxglove, as messages: /tf of the robot's links and the MarkerArray
of the scene (goal, obstacles), the executed path and the policy swap points.

The link poses and the URDF come from warpd_core.robot_description; this module only turns them,
and the task's SceneMarkers, into messages. Every MarkerArray is complete (it starts with DELETEALL
and then adds everything current), so a viewer that joins late, or misses one, loses nothing, and a
new episode's path and swaps replace the old ones without bookkeeping of ids.
"""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import Marker, MarkerArray

from warpd_core.robot_description import RobotDescription
from warpd_core.tasks.base import SceneMarker
from warpd_ros.conversions import ns_to_stamp, transform_stamped_msg

_SHAPES = {"sphere": Marker.SPHERE, "cylinder": Marker.CYLINDER, "box": Marker.CUBE}
PATH_RGBA = (0.1, 0.4, 0.9, 1.0)
SWAP_RGBA = (1.0, 0.65, 0.0, 1.0)
PATH_WIDTH = 0.006  # m, line width of the executed path
SWAP_DIAMETER = 0.025  # m


def tf_message(description: RobotDescription, data, stamp_ns: int, frame_prefix: str = "") -> TFMessage:
    """Every parent link -> child link transform of the robot for the state in `data` (robot_state_publisher's
    /tf, fixed joints included so one topic carries the whole tree)."""
    return TFMessage(transforms=[transform_stamped_msg(frame_prefix + parent, frame_prefix + child, t, stamp_ns)
                                 for parent, child, t in description.joint_transforms(data)])


def _color(rgba) -> ColorRGBA:
    r, g, b, a = (float(v) for v in rgba)
    return ColorRGBA(r=r, g=g, b=b, a=a)


def _point(xyz) -> Point:
    x, y, z = (float(v) for v in xyz)
    return Point(x=x, y=y, z=z)


class EpisodeMarkers:
    """The path the effector took this episode and where the controller swapped policies, as markers."""

    def __init__(self, frame: str = "world", max_path_points: int = 5000):
        self.frame = frame
        self.max_path_points = max_path_points
        self.path: list[np.ndarray] = []
        self.swaps: list[np.ndarray] = []

    def new_episode(self) -> None:
        self.path, self.swaps = [], []

    def add_path_point(self, xyz) -> None:
        if len(self.path) >= self.max_path_points:  # a very long episode: keep every other point
            self.path = self.path[::2]
        self.path.append(np.asarray(xyz, dtype=np.float64).copy())

    def add_swap(self, xyz) -> None:
        self.swaps.append(np.asarray(xyz, dtype=np.float64).copy())

    def _marker(self, ns: str, marker_id: int, kind: int, stamp_ns: int, rgba) -> Marker:
        m = Marker(ns=ns, id=marker_id, type=kind, action=Marker.ADD, color=_color(rgba))
        m.header.frame_id = self.frame
        m.header.stamp = ns_to_stamp(stamp_ns)
        m.pose.orientation.w = 1.0
        m.frame_locked = False
        return m

    def message(self, scene: list[SceneMarker], stamp_ns: int) -> MarkerArray:
        """DELETEALL, then the scene markers (ns "scene", named in .text), the path (ns "path", LINE_STRIP)
        and the swap points (ns "swaps", SPHERE_LIST)."""
        clear = Marker(action=Marker.DELETEALL)
        clear.header.frame_id = self.frame
        clear.header.stamp = ns_to_stamp(stamp_ns)
        markers = [clear]
        for k, item in enumerate(scene):
            m = self._marker("scene", k, _SHAPES.get(item.shape, Marker.SPHERE), stamp_ns, item.rgba)
            m.text = item.name
            m.pose.position = _point(item.position)
            m.scale.x, m.scale.y, m.scale.z = (float(v) for v in item.size)
            markers.append(m)
        if len(self.path) >= 2:
            m = self._marker("path", 0, Marker.LINE_STRIP, stamp_ns, PATH_RGBA)
            m.scale.x = PATH_WIDTH
            m.points = [_point(p) for p in self.path]
            markers.append(m)
        if self.swaps:
            m = self._marker("swaps", 0, Marker.SPHERE_LIST, stamp_ns, SWAP_RGBA)
            m.scale.x = m.scale.y = m.scale.z = SWAP_DIAMETER
            m.points = [_point(p) for p in self.swaps]
            markers.append(m)
        return MarkerArray(markers=markers)
