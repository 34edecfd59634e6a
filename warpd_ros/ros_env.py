"""Finding ROS 2 from a pip venv, and keeping DDS traffic on this machine.

Every command and node that needs rclpy or the warpd_ros messages gets them through
``require_ros()``, so a missing venv or a broken library path is reported once, clearly, with
the fix, instead of as an ImportError deep in a traceback.
"""
from __future__ import annotations

import os
import sys

from warpd_core.errors import WarpdError

SETUP_HINT = "run scripts/setup.sh from the repository root, then use .venv/bin/warpd"
DOMAIN_ID_MAX = 232  # ROS 2 accepts 0..101 and 215..232 on Linux with default ports


def diagnose_import_error(exc: BaseException) -> str:
    text = str(exc)
    if sys.prefix == sys.base_prefix:
        return ("this Python is not a venv, and the ROS 2 wheels only work inside one; " + SETUP_HINT)
    if "cannot open shared object" in text and os.environ.get("_ROS_WHEELS_BOOTSTRAP_COMPLETE"):
        return ("the ROS library path of another venv was inherited: `unset _ROS_WHEELS_BOOTSTRAP_COMPLETE`"
                " and start this venv's python again")
    return SETUP_HINT


def require_ros():
    """Import rclpy and the warpd_ros messages, or raise WarpdError that says how to fix it."""
    try:
        import rclpy  # noqa: F401
    except ImportError as exc:
        raise WarpdError(f"ROS 2 (rclpy) cannot be imported: {exc}", diagnose_import_error(exc)) from None
    try:
        import warpd_ros.msg  # noqa: F401
    except ImportError as exc:
        raise WarpdError(f"the warpd_ros messages cannot be imported: {exc}",
                         "they are built by scripts/setup.sh (msg/ -> rosidl); " + SETUP_HINT) from None
    return rclpy


def parse_domain_id(value: str | int) -> int:
    try:
        domain = int(value)
    except (TypeError, ValueError):
        raise WarpdError(f"ROS_DOMAIN_ID must be an integer, got {value!r}") from None
    if not 0 <= domain <= DOMAIN_ID_MAX:
        raise WarpdError(f"ROS_DOMAIN_ID {domain} is outside 0..{DOMAIN_ID_MAX}")
    return domain


def loopback_environment(domain_id: int | None = None, base: dict | None = None) -> dict:
    """Environment for child processes whose DDS traffic must stay on loopback.

    Forces ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (no multicast leaves the machine) and sets
    ``ROS_DOMAIN_ID`` when one is given; the rest of ``base`` (default: os.environ) is kept.
    """
    env = dict(os.environ if base is None else base)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.pop("ROS_STATIC_PEERS", None)
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(parse_domain_id(domain_id))
    return env
