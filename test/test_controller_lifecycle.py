"""The controller as a managed node, driven from this process through the standard lifecycle services
(what `ros2 lifecycle set` calls), and its compute budget: a policy too big for the control period is
refused with its own reason while the loop keeps its rate. Real processes over loopback, no mocks."""
import time

import numpy as np
import pytest

from warpd_core.runtime.command_pipeline import Mode
from warpd_ros.modes import status_mode
from warpd_ros.testing.policies import clipping_policy
from warpd_ros.testing.processes import start_module, stop_process
from warpd_ros.testing.standin import JOINTS, NOMINAL, RobotStandIn, diagnostic_values, feed, running

pytestmark = pytest.mark.ros

CONTROL_RATE_HZ = 250.0
STALE_TIMEOUT_S = 0.2


def _policy(policy_id, layers=(8, 16, 16, 3)):
    return clipping_policy(JOINTS if layers[0] == 8 else (), policy_id, layers=layers, planner="lifecycle_test",
                           valid_for_s=30.0)


def _eventually(attempt, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not attempt():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _quiet(h, seconds=0.5) -> list:
    """The commands received during the next `seconds`."""
    t0 = time.monotonic()
    time.sleep(seconds)
    return h.commands_since(t0)


@pytest.fixture
def managed(tmp_path):
    """A controller started with autostart false, and a stand-in that publishes no joint states yet."""
    log_path = tmp_path / "controller.log"
    proc = start_module("warpd_ros.nodes.controller", {"autostart": False, "control_rate_hz": CONTROL_RATE_HZ,
                                                       "stale_timeout_s": STALE_TIMEOUT_S}, log_path=log_path)
    try:
        with running(RobotStandIn, None, name="lifecycle_driver") as h:
            assert h.wait_for_controller(proc, 20) is not None, log_path.read_text()
            h.log_path = log_path
            yield h
    finally:
        stop_process(proc)


def test_transitions_from_another_process_including_refusals(managed):
    h = managed
    assert h.lifecycle_state() == "unconfigured"
    assert not _quiet(h), "an unconfigured controller must not command anything"
    assert not h.lifecycle("activate"), "activate is not a transition out of unconfigured"

    assert h.lifecycle("configure") and h.lifecycle_state() == "inactive"
    assert not _quiet(h), "configured but inactive: still no commands"
    # no joint states at all: refused, with the reason in the status
    assert not h.lifecycle("activate") and h.lifecycle_state() == "inactive"
    status = h.fresh_status(lambda s: "activation refused" in s.mode_reason)
    assert "no joint state" in status.mode_reason and status_mode(status) == Mode.HOLD
    # stale joint states (stamped a second ago): refused
    h.feed = feed(stamp_lag_s=1.0)
    time.sleep(0.3)
    assert not h.lifecycle("activate") and h.lifecycle_state() == "inactive"
    assert "stale" in h.fresh_status(lambda s: "activation refused" in s.mode_reason).mode_reason
    assert not _quiet(h, 0.3)

    # fresh joint states: active, HOLD until a policy, then the policy's commands
    h.feed = NOMINAL
    time.sleep(0.3)
    assert h.lifecycle("activate") and h.lifecycle_state() == "active"
    assert h.wait_command(lambda c: np.all(c.data == 0.0), time.monotonic() - 1, 3), "active: the hold command"
    h.send_policy(_policy(1))
    running_status = h.fresh_status(lambda s: status_mode(s) == Mode.RUN, 5, "the policy to run")
    assert running_status.active_policy_id == 1
    assert h.wait_command(lambda c: np.any(c.data != 0.0), time.monotonic(), 3), "the policy's commands"

    # deactivate: one hold command last, then silence; the policy is dropped
    assert h.lifecycle("deactivate") and h.lifecycle_state() == "inactive"
    time.sleep(0.2)
    last = h.commands_since(0)[-1]
    assert np.all(last.data == 0.0), f"the last command before inactive must be the hold, got {last.data}"
    assert not _quiet(h), "inactive: no more commands"
    inactive = h.fresh_status()
    assert not inactive.has_active_policy and "inactive" in inactive.mode_reason
    diag = h.fresh_diagnostic()
    assert diag.level == diag.OK and diagnostic_values(diag)["lifecycle_state"] == "inactive"

    # reactivated, it holds until a new policy comes: the old one does not resume
    assert h.lifecycle("activate")
    assert status_mode(h.fresh_status(lambda s: True)) == Mode.HOLD
    h.lifecycle("deactivate")

    # cleanup, configure again, and shut down from active: hold first
    assert h.lifecycle("cleanup") and h.lifecycle_state() == "unconfigured"
    assert h.lifecycle("configure")
    # configure subscribes afresh: activation is refused until its first joint state has arrived
    assert _eventually(lambda: h.lifecycle("activate"), 10), "activate after a new configure"
    h.send_policy(_policy(2))
    h.fresh_status(lambda s: status_mode(s) == Mode.RUN, 5, "policy 2 to run")
    assert h.lifecycle("shutdown") and h.lifecycle_state() == "finalized"
    time.sleep(0.2)
    assert np.all(h.commands_since(0)[-1].data == 0.0), "shutdown from active sends the hold command last"
    assert not _quiet(h)


def test_a_policy_over_the_compute_budget_is_refused_with_its_reason(tmp_path):
    """Hidden layers 1,400 wide (~2 M weights: inside the validator's size bound) cannot run at 1 kHz on
    one core; refused as over_compute_budget, while the small active policy keeps running. (What it does
    to the loop rate, refused and accepted, is measured by bench/compute_budget.py.)"""
    log_path = tmp_path / "controller.log"
    proc = start_module("warpd_ros.nodes.controller", {"control_rate_hz": 1000.0}, log_path=log_path)
    try:
        with running(RobotStandIn, NOMINAL, name="budget_driver") as h:
            assert h.wait_for_controller(proc, 20) is not None, log_path.read_text()
            h.send_policy(_policy(1))
            h.fresh_status(lambda s: status_mode(s) == Mode.RUN, 10, "the small policy to run")
            budget = diagnostic_values(h.fresh_diagnostic())["compute_budget"]
            for k in range(3):  # 8 MB each
                h.send_policy(_policy(10 + k, layers=(8, 1400, 1400, 3)))
                time.sleep(0.2)
            status = h.fresh_status(lambda s: s.swaps_rejected >= 3, 30, "the big policies to be refused")
            assert status.active_policy_id == 1 and status.swaps_accepted == 1
            assert status.last_rejection_reason.startswith("over_compute_budget"), status.last_rejection_reason
            assert "FLOPs per step" in status.last_rejection_reason and "µs" in budget
    finally:
        stop_process(proc)


def test_a_flood_of_policies_over_the_budget_pauses_the_policy_topic_then_it_listens_again(tmp_path):
    """Receiving an 8 MB policy costs the loop even when it is refused undecoded, so three within a second make
    the controller stop listening for oversize_pause_s (diagnostics say so, WARN); what is sent meanwhile never
    reaches it, the running policy keeps running; then it listens again and takes the topic's latched policy."""
    from diagnostic_msgs.msg import DiagnosticStatus

    log_path = tmp_path / "controller.log"
    proc = start_module("warpd_ros.nodes.controller", {"control_rate_hz": 1000.0, "oversize_pause_s": 3.0},
                        log_path=log_path)
    try:
        with running(RobotStandIn, NOMINAL, name="flood_driver", record_policies=False) as h:
            assert h.wait_for_controller(proc, 20) is not None, log_path.read_text()
            h.send_policy(_policy(1))
            h.fresh_status(lambda s: status_mode(s) == Mode.RUN, 10, "the small policy to run")
            t0, paused = time.monotonic(), None

            def pausing(d):
                return diagnostic_values(d)["policy_input"].startswith("not listening")

            for k in range(40):  # a flood, until it pauses (keep-last 1: a big sample may replace the one in flight)
                h.send_policy(_policy(10 + k, layers=(8, 1400, 1400, 3)))
                paused = h.wait_diagnostic(pausing, t0, 0.1)
                if paused is not None:
                    break
            assert paused is not None, log_path.read_text()
            rejected = h.fresh_status(timeout=5).swaps_rejected
            assert rejected >= 3
            assert paused.level == DiagnosticStatus.WARN and "not listening" in paused.message
            t_paused = time.monotonic()
            for k in range(3):  # inside the pause: nobody is listening
                h.send_policy(_policy(20 + k, layers=(8, 1400, 1400, 3)))
            h.send_policy(_policy(2))  # the topic's last message: latched, delivered when it listens again
            sent_within = time.monotonic() - t_paused
            status = h.fresh_status(lambda s: s.active_policy_id == 2, 15, "the latched small policy after the pause")
            assert sent_within < 2.5, f"sending took {sent_within:.1f} s: the pause may have ended meanwhile"
            assert status.swaps_rejected == rejected, "nothing sent during the pause was received"
            assert status_mode(status) == Mode.RUN and len(_quiet(h, 0.2)) > 50  # commanding all along
            back = h.fresh_diagnostic()
            assert diagnostic_values(back)["policy_input"] == "listening"
            # one more just after listening again: still a flood, paused at once for twice as long (6 s) ...
            t1 = time.monotonic()
            h.send_policy(_policy(30, layers=(8, 1400, 1400, 3)))
            again = h.wait_diagnostic(pausing, t1, 10)
            assert again is not None and "for 6 s" in again.message, log_path.read_text()
            # ... which a new setting ends at once: oversize_pause_s 0, listening again, the next policy runs
            assert h.set_param("oversize_pause_s", 0.0).successful
            h.send_policy(_policy(3))
            status = h.fresh_status(lambda s: s.active_policy_id == 3, 4, "a policy once the pause was switched off")
            assert time.monotonic() - t1 < 6.0
        log = log_path.read_text()
        assert "not listening to /warpd/policy_weights for 3 s" in log
        assert "listening to /warpd/policy_weights again" in log
    finally:
        stop_process(proc)


@pytest.mark.once  # warpd's own lifecycle CLI; the standard services are tested on both distros
def test_warpd_lifecycle_drives_the_controller_where_ros2_lifecycle_is_missing(managed, run_warpd):
    """The pip venv has no ros2lifecycle; `warpd lifecycle` calls the same standard services."""
    got = run_warpd("lifecycle", "get", "/warpd_controller")
    assert got.returncode == 0 and got.stdout.strip() == "unconfigured", got.stdout + got.stderr
    refused = run_warpd("lifecycle", "set", "/warpd_controller", "activate")  # not a transition from unconfigured
    assert refused.returncode == 1 and "REFUSED" in refused.stdout, refused.stdout + refused.stderr
    ok = run_warpd("lifecycle", "set", "/warpd_controller", "configure")
    assert ok.returncode == 0 and "unconfigured -> inactive" in ok.stdout, ok.stdout + ok.stderr
    assert managed.lifecycle_state() == "inactive"
    missing = run_warpd("lifecycle", "get", "/no_such_node", "--timeout", "1")
    assert missing.returncode == 2 and "not available" in missing.stdout, missing.stdout + missing.stderr
    usage = run_warpd("lifecycle", "set", "/warpd_controller")
    assert usage.returncode == 2 and "needs a transition" in usage.stderr, usage.stdout + usage.stderr
