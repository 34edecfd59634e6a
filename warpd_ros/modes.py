"""The one mapping between the controller's :class:`Mode` and ``ControllerStatus.MODE_*`` on the wire.

Everything in Python speaks :class:`warpd_core.runtime.command_pipeline.Mode`; the uint8 codes exist
only in the message. Convert at the boundary, here, and nowhere else.
"""
from __future__ import annotations

from warpd_core.runtime.command_pipeline import Mode
from warpd_ros.ros_env import require_ros

require_ros()
from warpd_ros.msg import ControllerStatus  # noqa: E402  (after require_ros: a clear error if unbuilt)

_TO_STATUS = {Mode.HOLD: ControllerStatus.MODE_HOLD, Mode.RUN: ControllerStatus.MODE_RUN,
              Mode.SHADOW: ControllerStatus.MODE_SHADOW}
_FROM_STATUS = {code: mode for mode, code in _TO_STATUS.items()}


def status_code(mode: Mode) -> int:
    """The ControllerStatus.mode value for `mode`."""
    return _TO_STATUS[Mode(mode)]


def mode_from_status(code: int) -> Mode:
    """The Mode a ControllerStatus.mode value stands for; ValueError for a code no controller sends."""
    try:
        return _FROM_STATUS[int(code)]
    except KeyError:
        raise ValueError(f"unknown ControllerStatus mode code {code!r}") from None


def status_mode(status) -> Mode:
    """The Mode of a received ControllerStatus message."""
    return mode_from_status(status.mode)
