"""QoS profiles, chosen once for the whole graph so publishers and subscribers always match.

The policy-swap topic is reliable and transient-local: every policy that is sent arrives, and a
controller that starts late still gets the latest one. Depth 1 is the contract for the swap topic
(only the newest policy matters); tools that must see every message of a burst ask for more.
"""
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy


def policy_swap_qos(depth: int = 1) -> QoSProfile:
    """QoS of PolicyWeights topics: reliable, transient-local, keep-last `depth`."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
