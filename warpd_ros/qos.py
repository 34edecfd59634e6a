"""QoS profiles, chosen once for the whole graph so publishers and subscribers always match.

- Joint states are a sensor stream: best effort, keep the latest; a late sample is worth less
  than the next one. (A best-effort subscriber also matches the reliable publisher of
  ros2_control's joint_state_broadcaster.)
- Commands are reliable, shallow: ros2_control's forward_command_controller subscribes reliably,
  and a best-effort publisher would not match it.
- The policy-swap topic is reliable and transient-local: every policy that is sent arrives, and
  a controller that starts late still gets the latest one. Depth 1 is the contract (only the
  newest policy matters); tools that must see every message of a burst ask for more.
- Status, diagnostics, task features and episode events are reliable; task features are also
  transient-local, so a late controller learns the current goal at once.
- /tf is what tf2_ros's broadcaster uses (reliable, volatile, depth 100). robot_description is
  reliable and transient-local, as robot_state_publisher publishes it (RViz and Foxglove subscribe it
  that way). Markers are transient-local too: every MarkerArray is complete, so the latest one is all
  a late viewer needs.
"""
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

SENSOR_QOS = qos_profile_sensor_data


def _profile(depth: int, reliable: bool = True, latched: bool = False) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


def policy_swap_qos(depth: int = 1) -> QoSProfile:
    """QoS of PolicyWeights topics: reliable, transient-local, keep-last `depth`."""
    return _profile(depth, latched=True)


COMMAND_QOS = _profile(10)
STATUS_QOS = _profile(10)
EVENTS_QOS = _profile(50)
GOAL_QOS = _profile(10)  # reliable, volatile: what `ros2 topic pub` and RViz's goal tool offer
TASK_FEATURES_QOS = _profile(1, latched=True)
TF_QOS = _profile(100)
ROBOT_DESCRIPTION_QOS = _profile(1, latched=True)
MARKERS_QOS = _profile(1, latched=True)
