"""msg <-> numpy conversion: bit-exact both ways, read-only views, clear errors on bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rclpy.serialization import deserialize_message, serialize_message

from warpd_core.errors import PolicyValidationError
from warpd_core.runtime.policy_spec import GeneratedPolicy, MLPArchitecture
from warpd_core.runtime.synthetic import same_bits, synthetic_policy
from warpd_ros.conversions import (
    from_float32_field,
    msg_to_policy,
    policy_to_msg,
    s_to_duration,
    duration_to_s,
    to_float32_field,
)
from warpd_ros.msg import PolicyWeights

SIZES = [0, 1, 2, 3, 17, 255, 1024, 4099, 69_120, 77_060, 99_999, 100_000]


def _random_bits(n, seed):
    """float32 values from random bit patterns: NaNs with payloads, infinities, -0.0, subnormals."""
    return np.random.default_rng(seed).integers(0, 2**32, n, dtype=np.uint32).view(np.float32)


@pytest.mark.parametrize("n", SIZES)
def test_float32_field_round_trip_is_bit_exact(n):
    values = _random_bits(n, n)
    field = to_float32_field(values)
    assert len(field) == n
    assert same_bits(from_float32_field(field), values)
    # ...and through CDR serialisation, as it travels over DDS
    msg = PolicyWeights(weights=field)
    back = deserialize_message(serialize_message(msg), PolicyWeights)
    assert same_bits(from_float32_field(back.weights), values)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 100_000), st.integers(0, 2**31))
def test_float32_field_round_trip_any_size(n, seed):
    values = _random_bits(n, seed)
    assert same_bits(from_float32_field(to_float32_field(values)), values)


def test_views_are_read_only_and_do_not_copy():
    field = to_float32_field(np.arange(5, dtype=np.float32))
    view = from_float32_field(field)
    with pytest.raises(ValueError):
        view[0] = 1.0
    assert np.shares_memory(view, np.frombuffer(field, np.float32))


def test_non_float32_input_is_converted_and_lists_are_read():
    assert list(to_float32_field([1, 2.5])) == [1.0, 2.5]
    assert from_float32_field([1.0, 2.0]).dtype == np.float32
    with pytest.raises(PolicyValidationError, match="1-D"):
        to_float32_field(np.zeros((2, 2)))
    with pytest.raises(PolicyValidationError, match="float32"):
        to_float32_field(["a", "b"])


@pytest.mark.parametrize("layers", [(1, 1), (7, 3), (39, 256, 256, 4), (12, 64, 64, 64, 6)])
def test_policy_round_trip_through_dds_serialisation(layers):
    policy = synthetic_policy(layers, policy_id=42, seed=3, task="reach")
    policy.joint_names = ("j1", "j2")
    policy.stamp_ns = 1_700_000_000_123_456_789
    policy.valid_for_s = 0.75
    policy.auth_tag = bytes(range(32))
    msg = deserialize_message(serialize_message(policy_to_msg(policy)), PolicyWeights)
    back = msg_to_policy(msg)
    for field in ("weights", "obs_mean", "obs_std", "action_mean", "action_std", "latent"):
        assert same_bits(getattr(back, field), getattr(policy, field)), field
    assert back.architecture == policy.architecture
    assert (back.policy_id, back.task, back.joint_names, back.stamp_ns) == (42, "reach", ("j1", "j2"), policy.stamp_ns)
    assert back.valid_for_s == pytest.approx(0.75, abs=1e-9)
    assert back.auth_tag == bytes(range(32))
    # layers() slices the flat vector in the documented order: W_l (out x in) then b_l
    (w0, b0), *_ = back.layers()
    assert w0.shape == (layers[1], layers[0]) and b0.shape == (layers[1],)
    assert same_bits(w0.ravel(), policy.weights[: layers[0] * layers[1]])


def _msg(**changes):
    msg = policy_to_msg(synthetic_policy((4, 8, 2)))
    for key, value in changes.items():
        setattr(msg, key, value)
    return msg


@pytest.mark.parametrize("changes, reason, text", [
    ({"weights": [0.0] * 10}, "weights_size", "weights has 10 values but layer_sizes [4, 8, 2] needs 58"),
    ({"weights": []}, "weights_size", "needs 58"),
    ({"weights": [float("nan")] + [0.0] * 57}, "weights_nonfinite", "1 NaN/Inf"),
    ({"weights": [float("inf")] * 58}, "weights_nonfinite", "58 NaN/Inf"),
    ({"obs_mean": [0.0] * 3}, "normalisation_size", "obs_mean has 3 values but the architecture needs 4"),
    ({"action_std": [1.0]}, "normalisation_size", "action_std has 1 values"),
    ({"obs_std": [1.0, 0.0, 1.0, 1.0]}, "normalisation_scale", "obs_std must be strictly positive"),
    ({"action_std": [-1.0, 1.0]}, "normalisation_scale", "action_std"),
    ({"action_mean": [float("nan"), 0.0]}, "normalisation_nonfinite", "action_mean"),
    ({"latent": [float("-inf")]}, "latent_nonfinite", "latent"),
    ({"layer_sizes": [4]}, "architecture", "2..16 entries"),
    ({"layer_sizes": []}, "architecture", "2..16 entries"),
    ({"layer_sizes": [4, 0, 2]}, "architecture", "widths outside"),
    ({"layer_sizes": [4, 4_000_000_000, 2]}, "architecture", "widths outside"),
    ({"layer_sizes": [4096] * 3}, "architecture", "parameters, more than"),
    ({"activation": "sigmoid"}, "activation", "unknown activation 'sigmoid'"),
    ({"output_activation": "softmax"}, "activation", "unknown output activation"),
    ({"joint_names": ["a", "a"]}, "joint_names", "duplicates"),
])
def test_bad_messages_are_rejected_with_a_clear_reason(changes, reason, text):
    with pytest.raises(PolicyValidationError) as info:
        msg_to_policy(_msg(**changes))
    assert info.value.reason == reason
    assert text in str(info.value)


def test_invalid_policy_is_not_packed():
    policy = synthetic_policy((4, 8, 2))
    policy.weights = policy.weights[:-1]
    with pytest.raises(PolicyValidationError, match="needs 58"):
        policy_to_msg(policy)


def test_valid_for_limits():
    assert duration_to_s(s_to_duration(2.5)) == 2.5
    for bad in (-1.0, float("nan"), float("inf"), 2.0**40):
        with pytest.raises(PolicyValidationError, match="valid_for"):
            s_to_duration(bad)


def test_architecture_counts_parameters():
    arch = MLPArchitecture((39, 256, 256, 4))
    assert arch.n_params() == 39 * 256 + 256 + 256 * 256 + 256 + 256 * 4 + 4 == 77_060
    assert arch.layer_shapes() == [(256, 39), (256, 256), (4, 256)]
    policy = GeneratedPolicy(arch, np.zeros(77_060), np.zeros(39), np.ones(39), np.zeros(4), np.ones(4))
    policy.validate()
    assert policy.weights.dtype == np.float32
