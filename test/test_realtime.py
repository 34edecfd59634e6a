"""The controller's opt-in real-time mode: SCHED_FIFO on every thread, memory locked, CPU pinning.

Whether the OS grants SCHED_FIFO depends on the machine (CAP_SYS_NICE); each test asserts the
outcome that matches what this process is allowed, so neither branch is silently skipped."""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from warpd_ros.realtime import apply_realtime
from warpd_ros.testing.processes import start_module, stop_process
from warpd_ros.testing.standin import TestNode

SCHED_FIFO = 1


def _fifo_allowed() -> bool:
    """Ask in a child process, so this test process keeps normal scheduling."""
    code = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def _policies(pid: int) -> list[int]:
    """The scheduling policy of every thread of `pid` (field 41 of /proc/PID/task/TID/stat)."""
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
        except FileNotFoundError:
            continue
        out.append(int(stat.rsplit(")", 1)[1].split()[38]))
    return out


def test_bad_requests_are_refused_before_touching_the_scheduler():
    with pytest.raises(ValueError, match="priority"):
        apply_realtime(priority=99)
    with pytest.raises(ValueError, match="not available"):
        apply_realtime(cpus=[max(os.sched_getaffinity(0)) + 1000])


def test_apply_realtime_in_a_child_reports_what_the_os_granted():
    code = ("import json, os, threading, time; from warpd_ros.realtime import apply_realtime;"
            "t = threading.Thread(target=time.sleep, args=(2,), daemon=True); t.start();"
            "r = apply_realtime(5, [min(os.sched_getaffinity(0))], True);"
            "print(json.dumps({'applied': r.applied, 'failed': r.failed, 'summary': r.summary()}))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    out = json.loads(proc.communicate(timeout=30)[0])
    if _fifo_allowed():
        assert any(a.startswith("SCHED_FIFO 5 on") for a in out["applied"]), out
        threads = int(next(a for a in out["applied"] if a.startswith("SCHED_FIFO")).split(" on ")[1].split()[0])
        assert threads >= 2  # the main thread and the sleeping one: every thread, not just the caller
    else:
        assert any("SCHED_FIFO" in f and "CAP_SYS_NICE" in f for f in out["failed"]), out
    assert any(a.startswith("pinned to CPUs") for a in out["applied"]), out
    assert out["summary"] != "off"


@pytest.mark.ros
def test_controller_process_runs_sched_fifo_and_says_so(rclpy_context):
    from diagnostic_msgs.msg import DiagnosticArray

    from warpd_ros import topics
    from warpd_ros.qos import STATUS_QOS

    proc = start_module("warpd_ros.nodes.controller", {"control_rate_hz": 200.0, "realtime_priority": 7,
                                                       "lock_memory": True},
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    test = TestNode(rclpy_context, "test_realtime_observer")
    seen = []
    test.node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS,
                                  lambda m: seen.extend(kv.value for s in m.status for kv in s.values
                                                        if kv.key == "realtime"), STATUS_QOS)
    try:
        assert test.spin_until(lambda: any(v != "off" for v in seen), 20), f"no realtime report: {seen[-3:]}"
        report = next(v for v in seen if v != "off")
        policies = _policies(proc.pid)
        if _fifo_allowed():
            assert report.startswith("SCHED_FIFO 7 on"), report
            assert "memory locked" in report
            assert policies and all(p == SCHED_FIFO for p in policies), policies
        else:
            assert "FAILED SCHED_FIFO" in report, report
            assert proc.poll() is None  # refused real-time is reported, not fatal
    finally:
        test.close()
        assert stop_process(proc) == 0
