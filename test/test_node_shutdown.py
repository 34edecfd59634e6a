"""A node process stops cleanly on SIGINT or SIGTERM, once or repeated, at any moment: while the
interpreter itself starts, while torch/rclpy import, while the node is built, and while it runs.

The node is started as bringup starts it (`python -m warpd_ros.nodes NODE`, stop signals blocked until
the node records them; the installed executables do the same with `env --block-signal`), and the
signal goes to that process alone. Exit 0 and no KeyboardInterrupt/abort is the contract
(warpd_ros/node_process.py says why); `ros2 launch` stops are in test/test_ros_tooling.py.
"""
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO
from warpd_ros.node_process import block_stop_signals
from warpd_ros.ros_env import loopback_environment
from warpd_ros.testing.standin import NOMINAL, RobotStandIn, running

pytestmark = pytest.mark.ros


def stop_after(node: str, delay_s: float, signals, gap_s: float = 0.05, timeout_s: float = 30.0):
    proc = subprocess.Popen([sys.executable, "-m", "warpd_ros.nodes", node, "--ros-args", "--params-file",
                             str(REPO / "config" / "sim.yaml")], cwd=REPO, env=loopback_environment(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=block_stop_signals)
    time.sleep(delay_s)
    for sig in signals:
        proc.send_signal(sig)
        time.sleep(gap_s)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"{node} still running {timeout_s} s after {signals}:\n{out[-3000:]}")
    return proc.returncode, out


@pytest.mark.parametrize("delay_s", [0.0, 0.05, 0.4, 1.5])
@pytest.mark.parametrize("signals", [(signal.SIGINT,), (signal.SIGTERM,), (signal.SIGINT, signal.SIGINT, signal.SIGTERM)],
                         ids=["INT", "TERM", "INT-INT-TERM"])
def test_the_controller_exits_0_however_early_it_is_stopped(delay_s, signals):
    code, out = stop_after("warpd_controller", delay_s, signals)
    assert code == 0, out[-3000:]
    assert "KeyboardInterrupt" not in out and "Traceback" not in out and "terminate called" not in out, out[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("delay_s", [0.3, 2.0, 6.0])
def test_the_planner_exits_0_while_importing_torch_loading_or_planning(delay_s):
    code, out = stop_after("warpd_planner", delay_s, (signal.SIGINT, signal.SIGTERM))
    assert code == 0, out[-3000:]
    assert "KeyboardInterrupt" not in out and "Traceback" not in out, out[-3000:]


def test_a_running_controller_sends_the_hold_command_as_it_stops():
    """Active (joint states flow, so autostart has activated it): the hold command is its last word."""
    with running(RobotStandIn, NOMINAL, name="shutdown_driver") as robot:
        code, out = stop_after("warpd_controller", 4.0, (signal.SIGTERM,))
        time.sleep(0.3)
        commands = robot.commands_since(0)
    assert code == 0 and "stopping: sent the hold command [0.0, 0.0, 0.0]" in out, out[-3000:]
    assert commands and list(commands[-1].data) == [0.0, 0.0, 0.0]


def test_an_inactive_controller_sends_nothing_as_it_stops():
    """Without joint states it never activated: it was not commanding, and does not start to on its way out."""
    with running(RobotStandIn, None, name="shutdown_listener") as robot:
        code, out = stop_after("warpd_controller", 3.0, (signal.SIGTERM,))
        time.sleep(0.3)
        commands = robot.commands_since(0)
    assert code == 0 and "stopping" not in out and "Traceback" not in out, out[-3000:]
    assert commands == []
