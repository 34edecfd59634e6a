"""PolicyWeights over real DDS between processes (loopback, private domain; no mocks)."""
import json
import subprocess
import sys
import time

import pytest

from conftest import REPO
from warpd_core.runtime.synthetic import synthetic_policy

pytestmark = pytest.mark.ros

LAYERS = (39, 256, 256, 4)


def _start_subscriber(topic, count, timeout=20):
    return subprocess.Popen(
        [sys.executable, "-m", "warpd_ros.roundtrip", "sub", "--json", "--count", str(count),
         "--layers", ",".join(map(str, LAYERS)), "--topic", topic, "--timeout", str(timeout)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


def _publish_from_this_process(rclpy_context, topic, messages, pause=0.1):
    import rclpy

    from warpd_ros.msg import PolicyWeights
    from warpd_ros.qos import policy_swap_qos

    node = rclpy.create_node("test_policy_publisher", context=rclpy_context)
    executor = rclpy.executors.SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    try:
        pub = node.create_publisher(PolicyWeights, topic, policy_swap_qos(depth=len(messages)))
        deadline = time.monotonic() + 15
        while pub.get_subscription_count() == 0:
            assert time.monotonic() < deadline, "subscriber process never matched"
            executor.spin_once(timeout_sec=0.05)
        for msg in messages:
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(), 10**9)
            pub.publish(msg)
            executor.spin_once(timeout_sec=pause)
        assert pub.wait_for_all_acked(rclpy.duration.Duration(seconds=10))
    finally:
        executor.shutdown()
        node.destroy_node()


def test_policies_published_here_arrive_bit_exact_in_another_process(rclpy_context):
    from warpd_ros.conversions import policy_to_msg

    topic = "/test/pubsub/bit_exact"
    sub = _start_subscriber(topic, count=3)
    _publish_from_this_process(rclpy_context, topic,
                               [policy_to_msg(synthetic_policy(LAYERS, i, task="roundtrip")) for i in (1, 2, 3)])
    out, err = sub.communicate(timeout=30)
    assert sub.returncode == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["policy_id"] for r in records] == [1, 2, 3]
    assert all(r["valid"] and r["bit_exact"] and r["n_weights"] == 77_060 for r in records)
    assert all(0 < r["latency_ms"] < 5_000 for r in records)
    assert records[0]["planner_id"] == ""


def test_invalid_policy_is_rejected_by_the_receiving_process(rclpy_context):
    from warpd_ros.conversions import policy_to_msg

    bad = synthetic_policy(LAYERS, 1, task="roundtrip")
    bad.weights = bad.weights.copy()
    bad.weights[123] = float("nan")
    topic = "/test/pubsub/invalid"
    sub = _start_subscriber(topic, count=1)
    _publish_from_this_process(rclpy_context, topic, [policy_to_msg(bad, validate=False)])
    out, _ = sub.communicate(timeout=30)
    record = json.loads(out.splitlines()[0])
    assert record["valid"] is False and record["reason"] == "weights_nonfinite"
    assert sub.returncode == 1


def test_warpd_roundtrip_command_runs_two_processes(run_warpd):
    proc = run_warpd("roundtrip", "--count", "3", "--period", "0.05", "--layers", "12,64,64,6", timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert out.count("[pub] sent policy") == 3
    assert out.count("bit-exact yes") == 3
    assert "[sub] received 3/3 policies, 3 valid and bit-exact" in out
    assert "roundtrip: OK" in out


def test_warpd_roundtrip_reports_a_missing_subscriber_clearly(run_warpd):
    """Nobody to talk to (discovery off): a clear error and exit status, not a hang or traceback."""
    import os

    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="OFF")
    proc = subprocess.run([sys.executable, "-m", "warpd_ros.roundtrip", "pub", "--count", "1", "--timeout", "2",
                           "--topic", "/test/pubsub/nobody"], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=60)
    assert proc.returncode == 1
    assert "no subscriber appeared on /test/pubsub/nobody within 2 s" in proc.stderr
    assert "Traceback" not in proc.stderr
