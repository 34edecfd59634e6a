"""Fault injection with real processes (issue 7): the controller's mode and the commands it publishes
under each fault, with warpd_controller / warpd_sim / warpd_planner running as real processes over
loopback in a private domain, and a RobotStandIn (a real rclpy node in this process) as robot and
planner. The scenarios live in warpd_ros/testing/faults/, which bench/faults.py runs for BENCHMARKS.md;
each returns named checks, and a test passes when all of them hold.

One controller process serves the whole file (the restart scenario replaces it); every scenario
first puts a fresh policy in RUN on good joint states, so none depends on what ran before it. A
scenario that fails while this (Python) process stalled is run once more (see run_scenario).
"""
import pytest

from warpd_ros.testing.faults import SCENARIOS, FaultGraph, run_scenario

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    with FaultGraph(tmp_path_factory.mktemp("faults")) as graph:
        yield graph


@pytest.mark.parametrize("fault", SCENARIOS)
def test_fault_is_survived(graph, fault):
    report = run_scenario(graph, fault)
    assert report.survived, report.explain()
