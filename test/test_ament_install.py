"""The ament_cmake route a colcon build takes on a full ROS 2 install, exercised with the venv's
pieces: messages, both Python packages, launch/ and config/ end up in the usual ROS places, and the
hand-written warpd_ros modules and the generated warpd_ros.msg form one importable package."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

SOURCES = ("CMakeLists.txt", "cmake", "package.xml", "msg", "srv", "launch", "config", "warpd_ros", "warpd_core",
           "scripts")


@pytest.fixture(scope="module")
def install_prefix(tmp_path_factory):
    # Build from a copy: the venv lives inside the repository, and CMake refuses to export
    # include paths from the source tree (numpy's, here) into an install prefix outside it.
    root = tmp_path_factory.mktemp("ament")
    src, build, prefix = root / "src", root / "build", root / "install"
    for item in SOURCES:
        target = src / item
        target.parent.mkdir(parents=True, exist_ok=True)
        copy = shutil.copytree if (REPO / item).is_dir() else shutil.copy2
        copy(REPO / item, target, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}))
    venv = sys.prefix
    env = dict(os.environ, CMAKE_PREFIX_PATH=venv, AMENT_PREFIX_PATH=venv)
    for cmd in (["cmake", "-S", src, "-B", build, f"-DCMAKE_INSTALL_PREFIX={prefix}",
                 f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF"],
                ["cmake", "--build", build, "-j2"],
                ["cmake", "--install", build]):
        proc = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return prefix


def test_ros_layout(install_prefix):
    share = install_prefix / "share" / "warpd_ros"
    assert (share / "package.xml").exists()
    assert (share / "launch" / "README.md").exists() and (share / "config" / "README.md").exists()
    assert (share / "msg" / "PolicyWeights.msg").exists()
    assert os.access(install_prefix / "lib" / "warpd_ros" / "warpd", os.X_OK)


def test_one_warpd_ros_package_with_messages_and_modules(install_prefix):
    site = next(install_prefix.glob("lib/python3*/site-packages"))
    script = ("import warpd_ros, warpd_ros.cli, warpd_ros.msg, warpd_core; "
              "print(warpd_ros.cli.__file__); print(warpd_ros.msg.__file__); print(warpd_core.__file__); "
              "from warpd_ros.msg import PolicyWeights; print(PolicyWeights().layer_sizes.typecode)")
    env = dict(os.environ, PYTHONPATH=str(site))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
                          cwd=install_prefix)  # not the repo: "" on sys.path would find its warpd_ros
    assert proc.returncode == 0, proc.stderr
    cli_file, msg_file, core_file, typecode = proc.stdout.split()
    for path in (cli_file, msg_file, core_file):
        assert Path(path).is_relative_to(site), path
    assert typecode == "I"
    run = subprocess.run([sys.executable, str(install_prefix / "lib" / "warpd_ros" / "warpd"), "--help"],
                         env=env, capture_output=True, text=True, timeout=60, cwd=install_prefix)
    assert run.returncode == 0 and "warpd doctor" in run.stdout
