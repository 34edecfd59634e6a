"""The conversion benchmark writes its own section of a BENCHMARKS file and leaves others alone."""

import pytest
from conftest import run_module
from warpd_ros.testing.benchmarks_md import update_section

pytestmark = pytest.mark.once  # BENCHMARKS.md sections: text, no ROS


def test_update_section_replaces_only_its_own_block(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    update_section("a", "first A", path)
    update_section("b", "only B", path)
    update_section("a", "second A", path)
    text = path.read_text()
    assert "second A" in text and "first A" not in text and "only B" in text
    assert text.index("second A") < text.index("only B")


def test_conversion_benchmark_reports_goals(tmp_path):
    out = tmp_path / "B.md"
    proc = run_module("bench.conversion", "--repeats", "3", "--out", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "<!-- bench:conversion:start -->" in text
    assert text.count("| 70,000 floats |") == 4  # fast and naive, both directions
    assert "- msg -> numpy ≤ 0.1 ms, 70,000 floats:" in text and "- numpy -> msg ≤ 0.5 ms, 70,000 floats:" in text
    assert "- msg -> numpy ≤ 0.1 ms, full policy, validated:" in text
    assert "policy_to_msg (validated)" in text and "msg_to_policy (validated)" in text


def test_env_throughput_benchmark_reports_every_mode(tmp_path):
    out = tmp_path / "B.md"
    proc = run_module("bench.env_throughput", "--tasks", "reach_around", "--episodes", "2", "--batch", "2",
                      "--out", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    for mode in ("raw step", "expert in the loop", "expert, level-1 perturbations", "lockstep batch of 2",
                 "2-process sweep"):
        assert f"| reach_around | {mode}" in text


def test_policy_forward_benchmark_reports_both_paths_and_the_goal(tmp_path):
    out = tmp_path / "B.md"
    proc = run_module("bench.policy_forward", "--calls", "200", "--batch-calls", "5", "--out", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "<!-- bench:policy_forward:start -->" in text
    for policy in ("8-64-64-3", "39-256-256-4"):
        for path in ("single obs", "batch 256"):
            assert f"| {policy} | {path} | MLPPolicy |" in text and f"| {policy} | {path} | naive, allocating |" in text
            assert f"- {policy}, {path}: " in text
    assert "Goal: numpy policy forward ≤30 µs per observation" in text
    assert text.count("— **met**") + text.count("— **MISSED**") == 4
