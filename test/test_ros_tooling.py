"""The package under the real ROS 2 tooling, as a user on a ROS install meets it: `colcon build`,
`source install/setup.bash`, `ros2 launch` from an unrelated directory, `launch_test`, `ros2 param`, and
stops by a signal to the launch process alone (as `timeout`, systemd or a harness sends it).

Needs launch, launch_ros, launch_testing, ros2cli and colcon in this Python: scripts/setup.sh installs them
from ../shared/ros-launch-wheels when that folder exists (they have no PyPI wheels); elsewhere these tests
skip and say so. The colcon workspace is built once per module.
"""
import re
import signal
import subprocess
import time

import pytest

from conftest import REPO
from warpd_ros.testing.ros_tooling import (
    CommandTap,
    build_workspace,
    read_launch_log,
    sourced_env,
    become_subreaper,
    start_launch,
    stop_and_read,
    stop_launch,
    tooling_missing,
)
from warpd_ros.testing.standin import ros_context

MISSING = tooling_missing()
pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]


@pytest.fixture(scope="module")
def shell(tmp_path_factory):
    """The environment of a shell that sourced a fresh colcon install of warpd_ros."""
    install = build_workspace(tmp_path_factory.mktemp("colcon_ws"))
    return sourced_env(install)


def wait_for(predicate, timeout: float, poll: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return predicate()


def launch_and_stop(shell, tmp_path, sig, *, after_successes: int = 0, after_s: float = 0.0, name="launch"):
    """Start the sim graph with `ros2 launch` in a directory unrelated to the package, wait for `after_successes`
    successful episodes (or `after_s` seconds after launch started the nodes), signal the launch process alone;
    (outcome, tap, log). Nodes that launch leaves behind (SIGTERM) are adopted and their exit codes counted."""
    log = tmp_path / f"{name}.log"
    assert become_subreaper()
    with ros_context() as context:
        tap = CommandTap(context)
        try:
            launch = start_launch(shell, log_path=log, cwd=tmp_path)
            try:
                # `after_s` counts from the moment launch has started every node (the nodes' own start-up:
                # imports, checkpoint loading); the ros2 CLI's own first second is launch's business
                assert wait_for(lambda: len(read_launch_log(log.read_text()).started) == 3, 60), log.read_text()
                if after_successes:
                    assert wait_for(lambda: read_launch_log(log.read_text()).successes >= after_successes, 120), \
                        log.read_text()[-3000:]
                time.sleep(after_s)
            finally:
                outcome = stop_and_read(launch, sig, log)
            time.sleep(0.3)
        finally:
            tap.close()
    return outcome, tap, log.read_text()


def test_ros2_launch_runs_successful_episodes_and_stops_cleanly(shell, tmp_path):
    outcome, tap, text = launch_and_stop(shell, tmp_path, signal.SIGINT, after_successes=3)
    # the shipped checkpoint and perturbation spec resolved from share/warpd_ros, not from the checkout
    assert "/share/warpd_ros/checkpoints/reach_around/" in text and str(REPO) + "/checkpoints" not in text
    assert outcome.successes >= 3 and outcome.timeouts == 0, text[-3000:]  # no start-up TIMEOUT either
    assert outcome.clean, (outcome, text[-3000:])
    assert outcome.hold_sent and tap.last_command == (0.0, 0.0, 0.0), (tap.last_command, text[-2000:])


# the running-graph moments (6-7 s) in the first pass only: the start-up ones exercise the same launch code
@pytest.mark.parametrize("sig,after_s", [(signal.SIGINT, 0.0),
                                         pytest.param(signal.SIGINT, 6.0, marks=pytest.mark.once),
                                         (signal.SIGTERM, 1.5),
                                         pytest.param(signal.SIGTERM, 7.0, marks=pytest.mark.once)])
def test_a_signal_to_launch_alone_never_aborts_a_node(shell, tmp_path, sig, after_s):
    """From the nodes' start-up (still importing torch, loading the checkpoint) to a busy graph;
    bench/shutdown_soak.py does 20 + 20 of these at random moments. SIGINT: launch forwards it; SIGTERM:
    upstream launch exits without signalling its nodes, which notice and stop the same clean way.
    (On a loaded machine a node in a long C call may take longer than launch's 5 s before SIGTERM; that
    escalation is allowed, an abort or a kill is not.)"""
    outcome, tap, text = launch_and_stop(shell, tmp_path, sig, after_s=after_s)
    assert outcome.aborts == 0 and not outcome.died, (outcome, text[-3000:])
    assert outcome.clean, (outcome, text[-3000:])
    assert tap.last_command in (None, (0.0, 0.0, 0.0)), tap.last_command  # nothing sent, or the hold last


def test_ros2_param_describes_sets_and_refuses_like_rqt(shell, tmp_path):
    """In namespace r1 (`namespace:=r1`), so this also shows the launched nodes get their parameters
    from the namespaced config there."""
    log = tmp_path / "launch.log"
    launch = start_launch(shell, "sim.launch.py", "namespace:=r1", log_path=log, cwd=tmp_path)

    def ros2(*args):
        """`ros2 param ...` as a user types it; without the daemon, the CLI's own node may not have
        discovered the controller yet ("Node not found"), so that one answer is retried, as a user would."""
        for _ in range(10):
            proc = subprocess.run(["ros2", "param", *args], env=shell, capture_output=True, text=True, timeout=60,
                                  cwd=tmp_path)
            if "Node not found" not in proc.stdout + proc.stderr:
                return proc
            time.sleep(1.0)
        return proc

    try:
        assert wait_for(lambda: "HOLD until a valid policy" in log.read_text(), 60), log.read_text()[-2000:]
        described = ros2("describe", "/r1/warpd_controller", "action_limit", "--no-daemon")
        assert described.returncode == 0, described.stderr
        assert "clipped to" in described.stdout and re.search(r"Min value:\s+0\.0", described.stdout), described.stdout
        assert re.search(r"Max value:\s+10\.0", described.stdout), described.stdout
        ok = ros2("set", "/r1/warpd_controller", "action_limit", "1.0", "--no-daemon")
        assert ok.returncode == 0 and "Set parameter successful" in ok.stdout, ok.stdout + ok.stderr
        got = ros2("get", "/r1/warpd_controller", "action_limit", "--no-daemon")
        assert "1.0" in got.stdout, got.stdout + got.stderr
        refused = ros2("set", "/r1/warpd_controller", "action_limit", "1000000.0", "--no-daemon")
        said = refused.stdout + refused.stderr
        assert "parameter failed" in said and "out of range" in said and "Max: 10.0" in said, said  # says the range
        assert "1.0" in ros2("get", "/r1/warpd_controller", "action_limit", "--no-daemon").stdout  # unchanged
        # sim.yaml's value, not the node's default ("immediately"): the config reached the namespaced node
        assert "controller_runs" in ros2("get", "/r1/warpd_sim", "episode_start", "--no-daemon").stdout
    finally:
        stop_launch(launch, signal.SIGINT)
    assert read_launch_log(log.read_text()).clean, log.read_text()[-3000:]


@pytest.mark.parametrize("launch_test", ["sim_launch_test.py", "hil_launch_test.py"])
def test_launch_testing(shell, tmp_path, launch_test):
    """The launch files under launch_testing, the ROS-standard launch test (active tests while the graph
    runs, post-shutdown tests on exit codes and output)."""
    env = dict(shell, HOME=str(tmp_path))  # hil.yaml's signing key lives under ~/.config/warpd
    if launch_test.startswith("hil"):
        keygen = subprocess.run(["ros2", "run", "warpd_ros", "warpd", "keygen"], env=env, capture_output=True,
                                text=True, timeout=120, cwd=tmp_path)
        assert keygen.returncode == 0, keygen.stdout + keygen.stderr
    proc = subprocess.run(["launch_test", str(REPO / "test" / "launch" / launch_test)], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert re.search(r"Ran \d+ tests?", proc.stdout + proc.stderr)
