"""The controller-vs-platform verdicts of bench/controller_timing.py (warpd_ros/testing/platform_timing.py):
pass/miss arithmetic and how a miss is worded, on made-up counts (no timing is measured here); and the
benchmark's I/O twin doing its traffic over loopback."""
import math
import time

import pytest

from warpd_ros.testing.platform_timing import (
    MISSED_RATIO,
    P99_MARGIN_US,
    compare_to_platform,
    parse_window_line,
    window_line,
)

pytestmark = pytest.mark.once  # verdict arithmetic on timing rows, and a benchmark helper: once per CI run


def test_the_goals_are_the_issues():
    assert MISSED_RATIO == 1.2 and P99_MARGIN_US == 100.0


def test_the_issue_baseline_misses_both_and_says_by_how_much():
    cmp = compare_to_platform(bare_missed=42, ctrl_missed=73, bare_p99_us=582, ctrl_p99_us=745)
    assert not cmp.missed_ok and not cmp.p99_ok and not cmp.ok
    assert cmp.missed_ratio == pytest.approx(73 / 42)
    assert cmp.missed_allowed == pytest.approx(50.4)
    assert cmp.missed_excess == pytest.approx(22.6)
    assert cmp.p99_diff_us == pytest.approx(163) and cmp.p99_excess_us == pytest.approx(63)
    assert cmp.missed_verdict().startswith("MISSED by 22.6 ticks (73 vs 42: 1.74x > 1.2x")
    assert cmp.p99_verdict().startswith("MISSED by 63 µs (745 - 582 = +163 µs > +100 µs)")


@pytest.mark.parametrize("bare, ctrl, ok", [
    (5, 6, True),     # exactly 1.2x: 1.2 * 5 is 6.000000000000001 in floats, still a pass
    (5, 7, False),
    (10, 12, True),
    (10, 13, False),
    (0, 0, True),     # neither missed a tick
    (0, 1, False),    # 1.2 x 0 allows none
    (3, 0, True),
])
def test_missed_ticks_within_1_2x_the_bare_timers(bare, ctrl, ok):
    cmp = compare_to_platform(bare, ctrl, 100.0, 100.0)
    assert cmp.missed_ok is ok
    assert (cmp.missed_excess == 0) is ok
    assert cmp.missed_verdict().startswith("PASS" if ok else "MISSED by")


def test_missed_ratio_edges():
    assert compare_to_platform(0, 0, 0, 0).missed_ratio == 1.0
    assert compare_to_platform(0, 4, 0, 0).missed_ratio == math.inf
    assert "n/a" in compare_to_platform(0, 0, 0, 0).missed_verdict()
    assert compare_to_platform(0, 4, 0, 0).missed_verdict().startswith("MISSED by 4.0 ticks")


@pytest.mark.parametrize("bare_p99, ctrl_p99, ok, excess", [
    (582.0, 682.0, True, 0.0),    # exactly + 100 µs
    (582.0, 682.5, False, 0.5),
    (582.0, 400.0, True, 0.0),    # better than the bare timer
    (582.0, 745.0, False, 63.0),
])
def test_p99_within_the_bare_timers_plus_100_us(bare_p99, ctrl_p99, ok, excess):
    cmp = compare_to_platform(10, 10, bare_p99, ctrl_p99)
    assert cmp.p99_ok is ok
    assert cmp.p99_excess_us == pytest.approx(excess)
    assert cmp.p99_verdict().startswith("PASS" if ok else "MISSED by")
    assert cmp.ok is ok  # the missed-ticks half passes here (10 vs 10)


def test_an_unmeasured_p99_fails_rather_than_passes():
    cmp = compare_to_platform(1, 1, float("nan"), 500.0)
    assert not cmp.p99_ok and not cmp.ok and math.isnan(cmp.p99_excess_us)


def test_other_goals_and_bad_counts():
    cmp = compare_to_platform(10, 14, 500, 640, missed_ratio=1.5, p99_margin_us=150)
    assert cmp.missed_ok and cmp.p99_ok
    with pytest.raises(ValueError):
        compare_to_platform(-1, 0, 0, 0)


def test_bare_timer_status_lines_round_trip_and_other_output_is_ignored():
    stats = {"periods": 1000, "loop_rate_hz": 999.5, "period_error_p50": 1e-5, "period_error_p99": 2e-4,
             "period_error_max": 3e-3}
    record = parse_window_line(window_line(1234.5, stats, 7) + "\n")
    assert record == {"t": 1234.5, "missed": 7, **stats}
    assert parse_window_line("[INFO] [bench_bare_timer]: started") is None
    assert parse_window_line("{not json") is None
    assert parse_window_line('{"periods": 3}') is None


@pytest.mark.ros
@pytest.mark.slow
def test_the_io_twin_does_the_controllers_traffic_and_reports_windows():
    """`--io` (the benchmark's third process) over loopback: it takes the stand-in's joint states, decodes the
    policies it is sent, publishes a zero command per joint on the controller's command topic at its rate,
    and its 1-s status lines report ticks and the policies decoded."""
    import subprocess
    import threading

    from warpd_ros.testing.policies import planner_like_policy
    from warpd_ros.testing.processes import module_argv, start_node, stop_process
    from warpd_ros.testing.standin import JOINTS, RobotStandIn, feed, running

    argv = module_argv("warpd_ros.testing.platform_timing") + ["--io", "--rate", "200", "--status-rate", "2"]
    proc = start_node(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    records = []
    reader = threading.Thread(target=lambda: records.extend(r for r in map(parse_window_line, proc.stdout) if r),
                              daemon=True)
    reader.start()
    try:
        with running(RobotStandIn, feed(order=JOINTS), rate_hz=100, name="twin_test_driver") as driver:
            assert driver.wait_until(lambda: len(driver.commands) >= 50, 30), "no commands from the I/O twin"
            sent = 0
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any(r.get("policies", 0) >= 3 for r in records):
                sent += 1
                driver.send_policy(planner_like_policy(JOINTS, sent, planner="twin_test"))
                time.sleep(0.2)
            assert any(r.get("policies", 0) >= 3 for r in records), f"policies not decoded: {records[-3:]}"
            commands = [c.data for c in driver.commands_since(0.0)]
            assert all(c.shape == (len(JOINTS),) and not c.any() for c in commands[-20:])
            ticking = [r for r in records if r["loop_rate_hz"] > 0]
            assert ticking and 100 < ticking[-1]["loop_rate_hz"] < 300  # its own 200 Hz, not the stand-in's 100
    finally:
        stop_process(proc, timeout=5)
        reader.join(timeout=2)
