"""`warpd doctor`: is this machine ready to run warpd_ros, and if not, what is the fix?

Each check says ok, warn or fail with what it found and, when not ok, a hint. Failures (a piece
the project cannot run without) make the exit status 1; warnings (for example DDS discovery that
would leave the machine) do not, unless --strict.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass
from importlib import metadata

from warpd_core.errors import WarpdError
from warpd_ros.ros_env import SETUP_HINT, diagnose_import_error, parse_domain_id

HELP = "check ROS 2, the messages, the ML stack and the DDS settings; exit 1 with a fix hint if broken"

PINNED = {"torch": "2.13.0"}
RCLPY_PINS = {"kilted": "9.1.2", "jazzy": "7.1.6"}  # requirements/ros.txt, requirements/ros-jazzy.txt


def ros_distro() -> str:
    """The ROS 2 distro this Python runs: what scripts/setup.sh recorded in the venv, else ROS_DISTRO (set by
    a ROS install's setup.bash), else the ros-jazzy-* wheels' presence, else kilted."""
    marker = os.path.join(sys.prefix, ".warpd-distro")
    if os.path.isfile(marker):
        with open(marker) as f:
            return f.read().strip()
    if os.environ.get("ROS_DISTRO"):
        return os.environ["ROS_DISTRO"]
    return "jazzy" if _dist_version("ros-jazzy-rclpy") else "kilted"
DISCOVERY_RANGES = ("LOCALHOST", "SUBNET", "SYSTEM_DEFAULT", "OFF")


@dataclass
class Check:
    name: str
    status: str  # "ok" | "warn" | "fail"
    detail: str
    hint: str = ""


def _dist_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _pin_note(dist: str, found: str, want: str | None = None) -> tuple[str, str]:
    want = want or PINNED.get(dist)
    if want and not found.startswith(want):
        return "warn", f"pinned {want}; re-run scripts/setup.sh to restore the tested version"
    return "ok", ""


def check_python() -> Check:
    in_venv = sys.prefix != sys.base_prefix
    detail = f"{platform.python_version()} at {sys.executable}" + ("" if in_venv else " (not a venv)")
    if not in_venv:
        return Check("python", "warn", detail, "ROS 2 wheels only work inside a venv; " + SETUP_HINT)
    return Check("python", "ok", detail)


def check_ros() -> Check:
    try:
        import rclpy.utilities
    except ImportError as exc:
        return Check("ros2", "fail", f"rclpy cannot be imported: {exc}", diagnose_import_error(exc))
    distro = ros_distro()
    version = _dist_version("ros-rclpy")
    status, hint = _pin_note("ros-rclpy", version, RCLPY_PINS.get(distro)) if version else ("ok", "")
    rmw = rclpy.utilities.get_rmw_implementation_identifier()
    return Check("ros2", status, f"ROS 2 {distro}, rclpy {version or 'from a ROS install'}, RMW {rmw}", hint)


def check_messages() -> Check:
    try:
        from warpd_ros.msg import ControllerStatus, PolicyWeights  # noqa: F401
        for package in ("sensor_msgs", "diagnostic_msgs", "geometry_msgs", "visualization_msgs", "tf2_msgs"):
            importlib.import_module(f"{package}.msg")
    except ImportError as exc:
        return Check("messages", "fail", f"cannot import: {exc}",
                     "messages are built from msg/ (and tf2_msgs from interfaces/ where the distro has no wheel) "
                     "by scripts/setup.sh; " + SETUP_HINT)
    return Check("messages", "ok", "warpd_ros/msg/PolicyWeights, ControllerStatus; sensor_msgs, diagnostic_msgs, "
                 "geometry_msgs, visualization_msgs, tf2_msgs (for /tf and markers)")


def check_module(name: str, dist: str, purpose: str) -> Check:
    try:
        module = importlib.import_module(name)
    except Exception as exc:  # a broken install can raise anything at import
        return Check(name, "fail", f"cannot import ({purpose}): {exc}", SETUP_HINT)
    version = _dist_version(dist) or getattr(module, "__version__", "unknown")
    status, hint = _pin_note(dist, version)
    detail = f"{version}"
    if name == "torch":
        detail += ", CUDA available" if module.cuda.is_available() else ", CPU only"
    return Check(name, status, detail, hint)


def check_discovery_range() -> Check:
    value = os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "")
    hint = "export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST to keep DDS traffic on this machine"
    if value == "LOCALHOST":
        return Check("dds discovery", "ok", "ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (loopback only)")
    if not value:
        return Check("dds discovery", "warn",
                     "ROS_AUTOMATIC_DISCOVERY_RANGE unset: Fast DDS multicasts discovery on the network", hint)
    if value not in DISCOVERY_RANGES:
        return Check("dds discovery", "fail", f"ROS_AUTOMATIC_DISCOVERY_RANGE={value!r} is not one of "
                     + ", ".join(DISCOVERY_RANGES), hint)
    return Check("dds discovery", "warn", f"ROS_AUTOMATIC_DISCOVERY_RANGE={value}: traffic may leave this machine",
                 hint)


def check_domain_id() -> Check:
    value = os.environ.get("ROS_DOMAIN_ID", "")
    if not value:
        return Check("dds domain", "warn", "ROS_DOMAIN_ID unset (domain 0, shared with any ROS 2 system in range)",
                     "export a private ROS_DOMAIN_ID, e.g. ROS_DOMAIN_ID=42")
    try:
        domain = parse_domain_id(value)
    except WarpdError as exc:
        return Check("dds domain", "fail", str(exc), "use an integer in 0..101 (or 215..232)")
    return Check("dds domain", "ok", f"ROS_DOMAIN_ID={domain}")


def run_checks() -> list[Check]:
    checks = [check_python(), check_ros(), check_messages()]
    for name, dist, purpose in (("numpy", "numpy", "arrays"),
                                ("torch", "torch", "models and training"),
                                ("diffusers", "diffusers", "latent diffusion schedulers"),
                                ("mujoco", "mujoco", "simulation"),
                                ("metaworld", "metaworld", "Metaworld MT10 tasks")):
        checks.append(check_module(name, dist, purpose))
    checks += [check_discovery_range(), check_domain_id()]
    return checks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the checks as JSON (for scripts)")
    parser.add_argument("--strict", action="store_true", help="exit 1 on warnings too (e.g. in CI)")
    parser.add_argument("--quiet", action="store_true", help="print only checks that are not ok")


def run(args: argparse.Namespace) -> int:
    checks = run_checks()
    failed = [c for c in checks if c.status == "fail"]
    warned = [c for c in checks if c.status == "warn"]
    if args.json:
        print(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
        for c in checks:
            if args.quiet and c.status == "ok":
                continue
            print(f"[{marks[c.status]}] {c.name:<14} {c.detail}")
            if c.hint:
                print(f"       {'':<14} fix: {c.hint}")
        if not args.quiet or failed:
            print(f"doctor: {len(checks) - len(failed) - len(warned)} ok, {len(warned)} warnings, {len(failed)} failed")
    if failed or (args.strict and warned):
        return 1
    return 0
