"""The interfaces in msg/ are built by rosidl, import in the venv, and say what every field means."""
import re

import pytest
from rclpy.serialization import deserialize_message, serialize_message

from conftest import REPO

FIELD = re.compile(r"^\s*([A-Za-z0-9_/]+(\[\])?)\s+([a-z_][a-z0-9_]*)\s*(=.*)?$")


def _fields(msg_file):
    """(type, name, is_constant, block) for every declaration; block = its paragraph of lines."""
    blocks = (REPO / "msg" / msg_file).read_text().split("\n\n")
    for block in blocks:
        for line in block.splitlines():
            m = FIELD.match(line)
            if m and not line.lstrip().startswith("#"):
                yield m.group(1), m.group(3), m.group(4) is not None, block


@pytest.mark.parametrize("msg_file", ["PolicyWeights.msg", "ControllerStatus.msg"])
def test_every_field_is_documented(msg_file):
    undocumented = [name for _, name, _, block in _fields(msg_file)
                    if not any(line.lstrip().startswith("#") for line in block.splitlines())]
    assert undocumented == []


def test_generated_python_matches_the_msg_files():
    from warpd_ros.msg import ControllerStatus, PolicyWeights

    for cls, msg_file in ((PolicyWeights, "PolicyWeights.msg"), (ControllerStatus, "ControllerStatus.msg")):
        declared = [name for _, name, is_const, _ in _fields(msg_file) if not is_const]
        assert list(cls.get_fields_and_field_types()) == declared


def test_policy_weights_contract_fields():
    from warpd_ros.msg import PolicyWeights

    types = PolicyWeights.get_fields_and_field_types()
    assert types["header"] == "std_msgs/Header"
    assert types["weights"] == "sequence<float>"
    assert types["layer_sizes"] == "sequence<uint32>"
    assert types["valid_for"] == "builtin_interfaces/Duration"
    assert types["auth_tag"] == "sequence<uint8>"
    for name in ("policy_id", "task", "activation", "obs_mean", "obs_std", "action_mean", "action_std", "latent"):
        assert name in types
    assert PolicyWeights.ACTIVATION_RELU == "relu" and PolicyWeights.OUTPUT_TANH == "tanh"


def test_controller_status_modes_and_stats():
    from warpd_ros.msg import ControllerStatus

    assert (ControllerStatus.MODE_HOLD, ControllerStatus.MODE_RUN, ControllerStatus.MODE_SHADOW) == (0, 1, 2)
    types = ControllerStatus.get_fields_and_field_types()
    for name in ("mode", "active_policy_id", "active_policy_age", "swaps_accepted", "swaps_rejected",
                 "last_rejection_reason", "loop_rate_hz", "period_error_p50", "period_error_p99"):
        assert name in types


def test_messages_survive_cdr_serialisation():
    from warpd_ros.msg import ControllerStatus, PolicyWeights

    msg = PolicyWeights(policy_id=7, task="reach", layer_sizes=[3, 2], weights=[1.5] * 8, auth_tag=b"\x01\x02")
    back = deserialize_message(serialize_message(msg), PolicyWeights)
    assert back == msg
    status = ControllerStatus(mode=ControllerStatus.MODE_SHADOW, swaps_rejected=3, last_rejection_reason="nan")
    assert deserialize_message(serialize_message(status), ControllerStatus) == status
