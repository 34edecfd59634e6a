"""README "On a full ROS 2 install": the bash block a user follows there, run verbatim in CI.

The block under the marker comment `<!-- full-install steps: ... -->` in README.md runs as it is written, with
`bash -euo pipefail`, in a shell that a user on a machine with ROS 2 from apt would have. Only these things
differ from such a machine, and the test does them, not the block:

- HOME is a fresh temporary directory, so ~/warpd_venv, ~/warpd_ws, ~/.config/warpd and ~/.ros are the
  test's own.
- The repository is already at ~/warpd_ws/src/warpd_ros. The test copies this checkout's tracked and
  unignored files there, as the `git clone` the README names would (no .venv, no build/).
- `/opt/ros/` in the block reads `<tmp>/fs/opt/ros/`. That is a stand-in for the apt install, built from this
  venv by ros_tooling.build_ros_standin: the ROS wheels' files, the real ament `setup.bash`, and `ros2`
  as a `#!/usr/bin/python3`-style script. Beside it, `<tmp>/fs/usr/bin` plays /usr/bin and comes first on
  PATH. It holds `python3` (the interpreter this venv was made from, the "system" Python, without torch
  or mujoco) and colcon. `<tmp>/fs/usr/lib/python3/dist-packages` plays apt's python3-* packages and is
  on PYTHONPATH.
- ROS_DISTRO is set to the stand-in's distro in the starting shell, as the ros:<distro> images set it.
- PIP_CACHE_DIR points at this user's pip cache, so that repeated runs do not download again.

Nothing of this venv is in the starting shell: no VIRTUAL_ENV, no ROS variables, and no
`_ROS_WHEELS_BOOTSTRAP_COMPLETE`; PYTHONNOUSERSITE=1. DDS stays on loopback, in the private domain that
conftest set.
The block's own `timeout -s INT` bounds both launches.
"""
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from warpd_ros.doctor import ros_distro
from warpd_ros.testing.ros_tooling import build_ros_standin, launch_runs, read_launch_log, tooling_missing

MISSING = tooling_missing()
# Once per CI run is what it takes (~5 min): in the Jazzy pass, the LTS that a user with /opt/ros most likely
# has. WARPD_FULL_INSTALL_ANY_DISTRO=1 runs it in any venv.
ELSEWHERE = ros_distro() != "jazzy" and not os.environ.get("WARPD_FULL_INSTALL_ANY_DISTRO")
pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=MISSING or ""),
              pytest.mark.skipif(ELSEWHERE, reason="the full-install steps run once per CI run, in the Jazzy (LTS) "
                                                   "pass; set WARPD_FULL_INSTALL_ANY_DISTRO=1 to run them here")]

MARKER = "<!-- full-install steps: test/test_full_install.py runs this block -->"


def readme_block() -> str:
    """The fenced bash block right under MARKER in README.md."""
    text = (REPO / "README.md").read_text()
    assert MARKER in text, f"README.md lost the marker {MARKER!r}"
    match = re.match(r"\s*```bash\n(.*?)\n```", text.split(MARKER, 1)[1], re.S)
    assert match, "the marker in README.md must be followed by a ```bash block"
    return match.group(1) + "\n"


def place_checkout(target: Path) -> None:
    """What `git clone` of this repository would give: its tracked and unignored files."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.mark.timeout(1800)  # builds and installs the package from scratch: minutes, not seconds
def test_readme_full_install_steps_run_as_written(tmp_path):
    block = readme_block()
    distro = (Path(sys.prefix) / ".warpd-distro").read_text().strip() if (Path(sys.prefix) / ".warpd-distro").exists() \
        else "kilted"
    standin = build_ros_standin(tmp_path / "fs", distro)
    home = tmp_path / "home"
    home.mkdir()
    place_checkout(home / "warpd_ws" / "src" / "warpd_ros")
    env = standin.shell_env(home)
    env["ROS_DISTRO"] = distro
    env["PIP_CACHE_DIR"] = os.environ.get("PIP_CACHE_DIR") or str(Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache/pip")

    # The "system" Python, even with ROS sourced, has neither torch nor mujoco: nodes that plan and simulate
    # can only have run with the user's venv.
    probe = subprocess.run(["bash", "-c", f'source "{standin.prefix}/setup.bash" && python3 -c "import rclpy, '
                            'std_msgs.msg; import torch"'], env=env, capture_output=True, text=True, timeout=120)
    assert "No module named 'torch'" in probe.stderr, probe.stderr[-2000:]

    script = tmp_path / "full_install_steps.sh"
    script.write_text(block.replace("/opt/ros/", f"{standin.root}/opt/ros/"))
    log = tmp_path / "full_install.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(["bash", "-euo", "pipefail", str(script)], cwd=home, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=1800)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            rc = "timed out"
    text = log.read_text()
    tail = text[-6000:]
    assert rc == 0, f"the README block failed ({rc}):\n{tail}"

    # `warpd doctor` ran with the venv's python, and found torch, mujoco and the messages
    venv_python = home / "warpd_venv" / "bin" / "python3"
    assert re.search(rf"\[ok  \] python\s+\S+ at {re.escape(str(venv_python))}\n", text), tail
    for name in ("messages", "torch", "mujoco"):
        assert re.search(rf"\[ok  \] {name}\s", text), (name, tail)
    assert "[FAIL]" not in text, tail

    sim_run, hil_run = launch_runs(text)
    sim = read_launch_log(sim_run)
    assert {p.rsplit("-", 1)[0] for p in sim.started} == {"warpd_sim", "warpd_controller", "warpd_planner"}, sim
    assert sim.successes >= 1 and sim.clean, (sim, sim_run[-4000:])
    assert f"{home}/warpd_ws/install/warpd_ros/share/warpd_ros/checkpoints/" in sim_run, sim_run[-3000:]

    key = home / ".config" / "warpd" / "policy_signing.key"
    assert key.is_file() and stat.S_IMODE(key.stat().st_mode) == 0o600, tail
    hil = read_launch_log(hil_run)
    assert "does not exist" not in hil_run and hil.started and hil.clean, (hil, hil_run[-4000:])
    assert str(REPO) not in text, "something of the checkout or its venv leaked into the user's install"
