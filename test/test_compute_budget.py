"""The compute budget: what a policy may cost per tick on this host. The arithmetic of a budget, the
host measurement's sanity, and the planner refusing at start-up a checkpoint its controller would refuse.
(The controller's refusal at admission, over real DDS, is in test_controller_lifecycle.py.)"""
import math

import pytest

from conftest import run_module
from warpd_core.runtime.compute_budget import ComputeBudget, measure_budget, mlp_matmul_flops


def test_a_budget_admits_what_its_period_share_allows_and_says_why_not():
    budget = ComputeBudget(overhead_s=10e-6, flops_per_s=1e9, period_s=1e-3, fraction=0.1)
    assert budget.max_seconds == pytest.approx(100e-6)
    assert budget.max_flops == 90_000  # (100 - 10) µs at 1 GFLOP/s
    small, big = (8, 64, 64, 3), (8, 256, 256, 3)
    assert mlp_matmul_flops(small) == 2 * (8 * 64 + 64 * 64 + 64 * 3) and budget.refusal(small) is None
    why = budget.refusal(big)
    assert why is not None and f"{mlp_matmul_flops(big):,} FLOPs" in why and "100 µs" in why
    assert budget.with_period(0.5e-3).refusal(small) is None and budget.with_period(0.5e-3).max_flops == 40_000
    assert ComputeBudget(200e-6, 1e9, 1e-3, 0.1).max_flops == 0  # even an empty forward would not fit
    off = ComputeBudget(10e-6, 1e9, 1e-3, 0.0)  # compute_budget 0: no budget, for a host verified otherwise
    assert off.refusal((8, 4096, 4096, 3)) is None and off.max_message_bytes > 10**12 and "off" in off.summary()
    assert budget.max_message_bytes == 4 * 90_000 + 1_000_000


def test_this_host_runs_a_small_policy_within_budget_and_refuses_a_two_million_weight_one():
    budget = measure_budget(8, 3, period_s=1e-3, fraction=0.1)
    assert math.isfinite(budget.flops_per_s) and budget.flops_per_s > 0 and 0 < budget.overhead_s < 1e-3
    assert budget.refusal((8, 64, 64, 3)) is None  # the size of the shipped policies
    assert budget.refusal((8, 1400, 1400, 3)) is not None  # ~2 M weights at 1 kHz: no CPU core does that in 100 µs


@pytest.mark.ros
def test_planner_refuses_to_start_with_policies_its_controller_would_refuse():
    proc = run_module("warpd_ros.nodes.planner", "--ros-args", "-p", "control_rate_hz:=2000.0",
                      "-p", "compute_budget:=0.01", timeout=120)  # 5 µs per forward: less than any call costs
    assert proc.returncode == 1, proc.stderr
    assert "would not fit the controller at 2000 Hz" in proc.stderr and "hint:" in proc.stderr
