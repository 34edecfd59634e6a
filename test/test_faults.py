"""Fault injection with real processes (issue 7): the controller's mode and the commands it publishes
under each fault, with warpd_controller / warpd_sim / warpd_planner running as real processes over
loopback in a private domain, and a RobotStandIn (a real rclpy node in this process) as robot and
planner. The scenarios live in warpd_ros/testing/faults/, which bench/faults.py runs for BENCHMARKS.md;
each returns named checks, and a test passes when all of its behaviour checks hold (speed figures
such as missed ticks under the burst are judged by the benchmark, not here).

One controller process serves the whole file (the restart scenario replaces it); every scenario
first puts a fresh policy in RUN on good joint states, so none depends on what ran before it. A
scenario that fails while this (Python) process stalled is run once more (see run_scenario).
"""
import pytest

from warpd_ros.testing.faults import SCENARIOS, FaultGraph, FaultReport, run_scenario

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    with FaultGraph(tmp_path_factory.mktemp("faults")) as graph:
        yield graph


# The joint-state and burst scenarios test the controller's own decisions through plain pub/sub: the same on
# every distro, so they run in the first pass only. Restarts and a killed node depend on DDS discovery,
# which differs between the distros' middleware versions: those run on both.
DISTRO_DEPENDENT = ("controller_restart", "sim_restart", "planner_killed")


@pytest.mark.parametrize("fault", [f if f in DISTRO_DEPENDENT else pytest.param(f, marks=pytest.mark.once)
                                   for f in SCENARIOS])
def test_fault_is_survived(graph, fault):
    report = run_scenario(graph, fault)
    assert report.survived, report.explain()


def test_a_failed_behaviour_fails_the_report_an_over_budget_figure_only_marks_it():
    report = FaultReport("example")
    report.check("no HOLD", True)
    report.check("missed ticks within budget", False, "13 > 11.7", budget=True)
    assert report.survived and not report.within_budget
    assert "[OVER BUDGET] missed ticks within budget (13 > 11.7)" in report.explain()
    report.check("no non-finite command", False)
    assert not report.survived and "[FAIL] no non-finite command" in report.explain()
