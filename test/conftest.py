"""Shared test set-up: DDS stays on loopback in a private domain, and helpers to run `warpd`.

The environment is fixed here, at import, before any test can start rclpy or a ROS process, so
running pytest directly (not through scripts/test.sh) is just as safe.
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_STATIC_PEERS", None)
if os.environ.get("ROS_DOMAIN_ID", "") in ("", "0"):
    os.environ["ROS_DOMAIN_ID"] = str(10 + os.getpid() % 90)

REPO = Path(__file__).resolve().parents[1]

# Words that tie a test file to the ROS distro: rclpy, the messages, the ROS glue, the ROS tooling.
_ROS_WORDS = ("rclpy", "warpd_ros", "ros2", "mark.ros", "scripts/")


def _ros_free(path: Path, _cache: dict = {}) -> bool:  # noqa: B006 (a per-session cache)
    if path not in _cache:
        text = path.read_text()
        _cache[path] = not any(word in text for word in _ROS_WORDS)
    return _cache[path]


def pytest_collection_modifyitems(config, items):
    """Mark `core` the tests of files that touch no ROS (warpd_core alone): they cannot depend on the
    distro, so scripts/test.sh runs them in the first distro's pass only."""
    for item in items:
        if _ros_free(Path(item.fspath)):
            item.add_marker(pytest.mark.core)

# Tests never write into the user's home: `warpd bringup hil` creates the signing key
# ~/.config/warpd/policy_signing.key when it is missing, and ROS logs go to ~/.ros. A
# HOME of their own (kept between runs for matplotlib's font cache) takes both.
_TEST_HOME = Path(tempfile.gettempdir()) / f"warpd-test-home-{os.getuid()}"
_TEST_HOME.mkdir(mode=0o700, exist_ok=True)
os.environ["HOME"] = str(_TEST_HOME)


def run_module(module: str, *args: str, env: dict | None = None, timeout: float = 60,
               python: str = sys.executable) -> subprocess.CompletedProcess:
    """Run `python -m module args...` and capture its output as text."""
    return subprocess.run([python, "-m", module, *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)


def tiny_warpd_config(data: dict, stage1: dict, stage2: dict, sample_steps: int, **top) -> dict:
    """A WARPD training config (as YAML would give it) small enough to train in seconds."""
    return {"seed": 0, **top, "data": data,
            "encoder": {"latent_dim": 6, "hidden": [32]},
            "policy": {"hidden": [16, 16]},
            "hypernet": {"chunk_size": 64, "chunk_embedding_dim": 8, "hidden": [32]},
            "world_model": {"hidden": [32]},
            "stage1": stage1,
            "diffusion": {"hidden": 32, "layers": 1, "train_timesteps": 20, "sample_steps": sample_steps},
            "stage2": stage2}


@pytest.fixture
def yaml_file(tmp_path):
    """yaml_file(text) -> the path of a fresh file holding `text` (configs and specs under test)."""
    def write(text: str, name: str = "test.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


@pytest.fixture
def run_warpd():
    """Run the `warpd` CLI in a fresh process: run_warpd("doctor", "--json", env=...)."""
    def _run(*args: str, env: dict | None = None, timeout: float = 60, python: str = sys.executable):
        return run_module("warpd_ros.cli", *args, env=env, timeout=timeout, python=python)
    return _run


@pytest.fixture
def rclpy_context():
    """A fresh rclpy context for one test, shut down afterwards."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    yield context
    context.try_shutdown()
