"""`warpd doctor` reports what it finds and exits non-zero, with a fix, when something is missing."""
import json
import os
import sys
from pathlib import Path

import pytest

from warpd_ros.doctor import RCLPY_PINS, ros_distro

from conftest import REPO

# The interpreter this venv was made from: real, but without the ROS wheels or the messages.
BASE_PYTHON = str(Path(sys.base_prefix) / "bin" / "python3")


def _doctor(run_warpd, *args, python=None, **env_changes):
    env = dict(os.environ)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    kwargs = {"python": python} if python else {}
    return run_warpd("doctor", *args, env=env, timeout=120, **kwargs)


def test_healthy_venv_passes_even_strict(run_warpd):
    proc = _doctor(run_warpd, "--json", "--strict", ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID="33")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    assert all(c["status"] == "ok" for c in checks.values()), checks
    distro = ros_distro()  # the venv's (scripts/setup.sh records it): kilted or jazzy
    assert f"ROS 2 {distro}, rclpy {RCLPY_PINS[distro]}" in checks["ros2"]["detail"]
    assert checks["torch"]["detail"].startswith("2.13.0")
    assert checks["dds domain"]["detail"] == "ROS_DOMAIN_ID=33"


@pytest.mark.once  # the doctor's reading of one environment variable: distro-independent
def test_unset_discovery_range_warns_and_fails_only_when_strict(run_warpd):
    lenient = _doctor(run_warpd, ROS_AUTOMATIC_DISCOVERY_RANGE=None)
    assert lenient.returncode == 0
    assert "[WARN] dds discovery" in lenient.stdout
    assert "export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST" in lenient.stdout
    strict = _doctor(run_warpd, "--strict", ROS_AUTOMATIC_DISCOVERY_RANGE=None)
    assert strict.returncode == 1


@pytest.mark.parametrize("domain", ["abc", "999", "-1"])
def test_invalid_domain_id_fails(run_warpd, domain):
    proc = _doctor(run_warpd, ROS_DOMAIN_ID=domain)
    assert proc.returncode == 1
    assert "[FAIL] dds domain" in proc.stdout


def test_python_without_the_venv_fails_with_setup_hint(run_warpd):
    """The system interpreter has no ROS wheels and no messages: doctor says so and how to fix it."""
    proc = _doctor(run_warpd, python=BASE_PYTHON, PYTHONPATH=str(REPO), _ROS_WHEELS_BOOTSTRAP_COMPLETE=None)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "[FAIL] ros2" in proc.stdout and "[FAIL] messages" in proc.stdout
    assert "run scripts/setup.sh" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_other_commands_outside_the_venv_fail_with_one_clear_message(run_warpd):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    proc = run_warpd("roundtrip", "--count", "1", env=env, python=BASE_PYTHON)
    assert proc.returncode == 2
    assert "cannot run in this Python" in proc.stderr or "cannot be imported" in proc.stderr
    assert "hint:" in proc.stderr and "run scripts/setup.sh" in proc.stderr
    assert "Traceback" not in proc.stderr
