"""`warpd roundtrip`: one process publishes PolicyWeights, another receives them, over loopback.

The smallest real end-to-end check of the swap contract: two separate processes with real rclpy
nodes, the policy-swap QoS, the message conversion on both sides, validation on receipt, and a
bit-exact comparison against what the sender generated (both rebuild it from the policy id).
Each side prints what it did; the subscriber prints the one-way latency (header stamp ->
callback, so it includes numpy->msg conversion, serialisation and transport).

    warpd roundtrip                       # orchestrates both processes
    python -m warpd_ros.roundtrip sub ... # one side alone (what the orchestrator starts)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time

import numpy as np

from warpd_core.errors import PolicyValidationError, WarpdError
from warpd_core.runtime.synthetic import same_bits, synthetic_policy
from warpd_ros.ros_env import loopback_environment, parse_domain_id, require_ros

HELP = "send PolicyWeights between two processes over loopback; print what was sent, received and the latency"
DEFAULT_TOPIC = "/warpd/roundtrip/policy_weights"


def _layers(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 39,256,256,4, got {text!r}")
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError("need at least [obs_dim, action_dim], every size >= 1")
    return sizes


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=_positive_int, default=5, help="policies to send (default 5)")
    parser.add_argument("--layers", type=_layers, default=(39, 256, 256, 4),
                        help="MLP layer sizes obs,hidden...,action (default 39,256,256,4 = 77,060 weights)")
    parser.add_argument("--period", type=_positive_float, default=0.2,
                        help="seconds between policies (default 0.2)")
    parser.add_argument("--domain-id", type=parse_domain_id, default=None,
                        help="ROS_DOMAIN_ID for both processes (default: inherit; discovery is forced to LOCALHOST)")
    parser.add_argument("--timeout", type=_positive_float, default=30.0,
                        help="give up after this many seconds (default 30)")
    parser.add_argument("--topic", default=DEFAULT_TOPIC, help=f"topic to use (default {DEFAULT_TOPIC})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic weights")


def _digest(weights: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(weights, np.float32).tobytes()).hexdigest()[:12]


def _child_args(role: str, args: argparse.Namespace, extra=()) -> list[str]:
    return [sys.executable, "-m", "warpd_ros.roundtrip", role, "--count", str(args.count),
            "--layers", ",".join(map(str, args.layers)), "--period", str(args.period),
            "--timeout", str(args.timeout), "--topic", args.topic, "--seed", str(args.seed), *extra]


def run(args: argparse.Namespace) -> int:
    """Start a subscriber and a publisher process, relay their output, report the outcome."""
    require_ros()  # fail here, once and clearly, rather than in both children
    env = loopback_environment(args.domain_id)
    env["PYTHONUNBUFFERED"] = "1"
    domain = env.get("ROS_DOMAIN_ID", "0 (default)")
    print(f"roundtrip: {args.count} PolicyWeights {list(args.layers)} on {args.topic}, "
          f"ROS_DOMAIN_ID={domain}, discovery LOCALHOST")
    sub = subprocess.Popen(_child_args("sub", args), env=env)
    pub = subprocess.Popen(_child_args("pub", args), env=env)
    deadline = time.monotonic() + args.timeout + 10
    codes = {}
    try:
        for name, proc in (("subscriber", sub), ("publisher", pub)):
            codes[name] = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise WarpdError(f"the round trip did not finish within {args.timeout + 10:.0f} s",
                         "check that nothing else floods this ROS_DOMAIN_ID; try --domain-id 42") from None
    finally:
        for proc in (sub, pub):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if any(codes.values()):
        bad = ", ".join(f"{k} exited {v}" for k, v in codes.items() if v)
        raise WarpdError(f"round trip failed: {bad}", "see the lines above for what each side reported")
    print("roundtrip: OK — every policy arrived bit-exact and passed validation")
    return 0


# ---------------------------------------------------------------- the two sides (child processes)

def _publisher(args: argparse.Namespace) -> int:
    rclpy = require_ros()
    from warpd_ros.conversions import policy_to_msg
    from warpd_ros.msg import PolicyWeights
    from warpd_ros.qos import policy_swap_qos

    rclpy.init()
    node = rclpy.create_node("warpd_roundtrip_pub")
    try:
        pub = node.create_publisher(PolicyWeights, args.topic, policy_swap_qos(depth=args.count))
        start, deadline = time.monotonic(), time.monotonic() + args.timeout
        while pub.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                print(f"[pub] no subscriber appeared on {args.topic} within {args.timeout:.0f} s", file=sys.stderr)
                return 1
            rclpy.spin_once(node, timeout_sec=0.02)
        print(f"[pub] subscriber matched after {(time.monotonic() - start) * 1e3:.0f} ms")
        for policy_id in range(1, args.count + 1):
            policy = synthetic_policy(args.layers, policy_id, args.seed, task="roundtrip")
            policy.planner_id = node.get_name()
            policy.stamp_ns = time.time_ns()
            t0 = time.perf_counter()
            msg = policy_to_msg(policy)
            convert_ms = (time.perf_counter() - t0) * 1e3
            pub.publish(msg)
            print(f"[pub] sent policy {policy_id}/{args.count}: {policy.weights.size} weights "
                  f"({policy.weights.nbytes / 1e3:.0f} kB), sha256 {_digest(policy.weights)}, "
                  f"numpy->msg {convert_ms:.3f} ms")
            rclpy.spin_once(node, timeout_sec=args.period)
        if not pub.wait_for_all_acked(rclpy.duration.Duration(seconds=max(0.1, deadline - time.monotonic()))):
            print("[pub] the subscriber did not acknowledge every policy in time", file=sys.stderr)
            return 1
        return 0
    finally:
        node.destroy_node()
        rclpy.shutdown()


def _subscriber(args: argparse.Namespace) -> int:
    rclpy = require_ros()
    from warpd_ros.conversions import msg_to_policy
    from warpd_ros.msg import PolicyWeights
    from warpd_ros.qos import policy_swap_qos

    results: list[dict] = []

    def on_policy(msg: PolicyWeights) -> None:
        latency_ms = (time.time_ns() - (msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)) / 1e6
        record = {"policy_id": int(msg.policy_id), "latency_ms": latency_ms}
        t0 = time.perf_counter()
        try:
            policy = msg_to_policy(msg)
        except PolicyValidationError as exc:
            record.update(valid=False, reason=exc.reason, error=str(exc), bit_exact=False)
        else:
            record["msg_to_numpy_ms"] = (time.perf_counter() - t0) * 1e3
            expected = synthetic_policy(args.layers, policy.policy_id, args.seed, task="roundtrip")
            record.update(
                valid=True, n_weights=int(policy.weights.size), sha256=_digest(policy.weights),
                layer_sizes=list(policy.architecture.layer_sizes), planner_id=policy.planner_id,
                bit_exact=all(same_bits(getattr(policy, f), getattr(expected, f))
                              for f in ("weights", "obs_mean", "obs_std", "action_mean", "action_std", "latent")),
            )
        results.append(record)
        if args.json:
            print(json.dumps(record), flush=True)
        elif record["valid"]:
            print(f"[sub] received policy {record['policy_id']} from {record['planner_id']}: "
                  f"{record['n_weights']} weights, sha256 {record['sha256']}, "
                  f"bit-exact {'yes' if record['bit_exact'] else 'NO'}, latency {latency_ms:.2f} ms, "
                  f"msg->numpy {record['msg_to_numpy_ms']:.3f} ms", flush=True)
        else:
            print(f"[sub] REJECTED policy {record['policy_id']}: {record['error']}", flush=True)

    rclpy.init()
    node = rclpy.create_node("warpd_roundtrip_sub")
    try:
        node.create_subscription(PolicyWeights, args.topic, on_policy, policy_swap_qos(depth=args.count))
        if not args.json:
            print(f"[sub] listening on {args.topic}", flush=True)
        deadline = time.monotonic() + args.timeout
        while len(results) < args.count and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        node.destroy_node()
        rclpy.shutdown()

    good = [r for r in results if r["valid"] and r["bit_exact"]]
    if not args.json:
        lat = np.array([r["latency_ms"] for r in results]) if results else np.zeros(1)
        print(f"[sub] received {len(results)}/{args.count} policies, {len(good)} valid and bit-exact; "
              f"latency p50 {np.median(lat):.2f} ms, max {lat.max():.2f} ms")
    if len(results) < args.count:
        print(f"[sub] only {len(results)}/{args.count} policies arrived within {args.timeout:.0f} s", file=sys.stderr)
    return 0 if len(good) == args.count else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warpd_ros.roundtrip", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=("pub", "sub"), help="which side of the round trip to run")
    parser.add_argument("--json", action="store_true", help="(sub) print one JSON object per received policy")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return _publisher(args) if args.role == "pub" else _subscriber(args)
    except WarpdError as exc:
        print(f"[{args.role}] error: {exc}" + (f"\n[{args.role}] hint: {exc.hint}" if exc.hint else ""),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
