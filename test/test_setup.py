"""scripts/setup.sh is idempotent: a second run reuses the venv and rebuilds nothing."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


def test_second_setup_run_reuses_everything():
    env = dict(os.environ, WARPD_VENV=sys.prefix,
               WARPD_ROS_DISTRO=(Path(sys.prefix) / ".warpd-distro").read_text().strip())
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    proc = subprocess.run(["bash", "scripts/setup.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"venv {sys.prefix} exists" in proc.stdout
    assert "dependencies up to date" in proc.stdout
    assert "warpd package installed (editable)" in proc.stdout
    distro = (Path(sys.prefix) / ".warpd-distro").read_text().strip()  # setup.sh records it in the venv
    build_log = (REPO / "build" / f"setup-logs-{distro}" / "cmake-build.log").read_text()
    assert "Building" not in build_log and "Linking" not in build_log, build_log
    # tf2_msgs, where setup.sh builds it (no wheel for the distro), is incremental too
    tf2_log = REPO / "build" / f"setup-logs-{distro}" / "tf2-build.log"
    if "interfaces/tf2_msgs" in proc.stdout:
        assert "Building" not in tf2_log.read_text() and "Linking" not in tf2_log.read_text()
    # the generated messages stay importable through the source package
    assert not (Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
                / "site-packages" / "warpd_ros" / "__init__.py").exists()
