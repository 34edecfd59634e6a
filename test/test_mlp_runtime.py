"""MLPPolicy computes what the documented layout says, as torch does, and refuses bad input.

The reference is built independently: torch.nn.Linear layers loaded with W and b cut from the
flat weights in the order msg/PolicyWeights.msg documents, and torch's own activations.
"""
from functools import lru_cache

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from warpd_core.errors import PolicyValidationError
from warpd_core.runtime.mlp_runtime import MLPPolicy
from warpd_core.runtime.policy_spec import ACTIVATIONS, OUTPUT_ACTIVATIONS, GeneratedPolicy, MLPArchitecture

ARCHITECTURES = ((8, 64, 64, 3), (39, 256, 256, 4), (5, 2), (3, 17, 9, 31, 2))
TOL = {"rtol": 1e-5, "atol": 1e-5}
TORCH_ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "elu": torch.nn.functional.elu,
    "gelu": lambda t: torch.nn.functional.gelu(t, approximate="tanh"),
}


def make_policy(layer_sizes, activation="relu", output_activation="identity", seed=0) -> GeneratedPolicy:
    """Weights scaled by 1/sqrt(fan_in): pre-activations of a few units, so every activation bends,
    while float32 rounding (which grows with the magnitudes inside the net) stays well inside TOL."""
    arch = MLPArchitecture(tuple(layer_sizes), activation, output_activation)
    rng = np.random.default_rng(seed)
    flat = []
    for out, inp in arch.layer_shapes():
        flat += [rng.standard_normal(out * inp) / np.sqrt(inp), rng.standard_normal(out) * 0.5]
    return GeneratedPolicy(
        architecture=arch,
        weights=np.concatenate(flat),
        obs_mean=rng.standard_normal(arch.obs_dim),
        obs_std=rng.uniform(1.0, 2.0, arch.obs_dim),
        action_mean=rng.standard_normal(arch.action_dim),
        action_std=rng.uniform(0.5, 2.0, arch.action_dim),
        policy_id=7,
    )


def torch_reference(policy: GeneratedPolicy):
    """obs (B, obs_dim) -> actions (B, action_dim), in torch float32, from the flat weights."""
    arch = policy.architecture
    sizes, flat, offset, linears = arch.layer_sizes, torch.from_numpy(policy.weights.copy()), 0, []
    for inp, out in zip(sizes[:-1], sizes[1:]):
        linear = torch.nn.Linear(inp, out)
        with torch.no_grad():
            linear.weight.copy_(flat[offset:offset + out * inp].reshape(out, inp))
            offset += out * inp
            linear.bias.copy_(flat[offset:offset + out])
            offset += out
        linears.append(linear)
    act = TORCH_ACTIVATIONS[arch.activation]
    mean, std, a_mean, a_std = (torch.from_numpy(a.copy()) for a in
                                (policy.obs_mean, policy.obs_std, policy.action_mean, policy.action_std))

    @torch.no_grad()
    def forward(obs):
        x = (torch.as_tensor(np.asarray(obs), dtype=torch.float32) - mean) / std
        for linear in linears[:-1]:
            x = act(linear(x))
        y = linears[-1](x)
        if arch.output_activation == "tanh":
            y = torch.tanh(y)
        return (y * a_std + a_mean).numpy()

    return forward


@lru_cache(maxsize=None)
def runtime_and_reference(layer_sizes, activation, output_activation):
    policy = make_policy(layer_sizes, activation, output_activation)
    return MLPPolicy(policy), torch_reference(policy)


@pytest.mark.parametrize("output_activation", OUTPUT_ACTIVATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("layer_sizes", ARCHITECTURES, ids=lambda sizes: "-".join(map(str, sizes)))
def test_single_and_batched_paths_match_torch(layer_sizes, activation, output_activation):
    runtime, reference = runtime_and_reference(layer_sizes, activation, output_activation)
    obs = np.random.default_rng(1).normal(0.0, 3.0, (32, layer_sizes[0]))
    expected = reference(obs)
    np.testing.assert_allclose(runtime.select_actions(obs), expected, **TOL)
    single = np.stack([runtime.select_action(o) for o in obs])
    np.testing.assert_allclose(single, expected, **TOL)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_random_observations_match_torch(activation, data):
    runtime, reference = runtime_and_reference((39, 256, 256, 4), activation, "tanh")
    elements = st.floats(-10, 10, allow_nan=False, width=32)
    obs = data.draw(hnp.arrays(np.float64, (39,), elements=elements))
    np.testing.assert_allclose(runtime.select_action(obs), reference(obs[None])[0], **TOL)
    batch = data.draw(hnp.arrays(np.float32, (data.draw(st.integers(1, 6)), 39), elements=elements))
    np.testing.assert_allclose(runtime.select_actions(batch), reference(batch), **TOL)


def test_actions_are_fresh_float64_arrays_and_properties_pass_through():
    policy = make_policy((8, 64, 64, 3))
    runtime = MLPPolicy(policy)
    obs = [0.1] * 8
    first, second = runtime.select_action(obs), runtime.select_action(obs)
    assert first.dtype == np.float64 and first.shape == (3,) and first is not second
    first[:] = 1e9
    np.testing.assert_array_equal(runtime.select_action(obs), second)
    assert runtime.select_actions(np.zeros((4, 8))).dtype == np.float64
    assert runtime.architecture is policy.architecture and runtime.policy_id == 7


@pytest.mark.parametrize("obs", [np.zeros(7), np.zeros(9), np.zeros((1, 8)), np.float64(0.0)],
                         ids=["short", "long", "2-D", "scalar"])
def test_single_path_rejects_wrong_shapes(obs):
    with pytest.raises(ValueError, match=r"observation must have shape \(8,\)"):
        MLPPolicy(make_policy((8, 64, 64, 3))).select_action(obs)


@pytest.mark.parametrize("batch", [np.zeros(8), np.zeros((4, 7)), np.zeros((2, 4, 8))], ids=["1-D", "width", "3-D"])
def test_batched_path_rejects_wrong_shapes(batch):
    with pytest.raises(ValueError, match=r"observation batch must have shape \(B, 8\)"):
        MLPPolicy(make_policy((8, 64, 64, 3))).select_actions(batch)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_observations_raise(bad):
    runtime = MLPPolicy(make_policy((8, 64, 64, 3)))
    obs = np.zeros(8)
    obs[3] = bad
    with pytest.raises(ValueError, match="observation contains NaN/Inf"):
        runtime.select_action(obs)
    batch = np.zeros((5, 8))
    batch[2, 3] = bad
    with pytest.raises(ValueError, match=r"observation contains NaN/Inf \(batch rows \[2\]\)"):
        runtime.select_actions(batch)


def test_finite_observation_beyond_float32_range_raises():
    obs = np.zeros(8)
    obs[0] = 1e300
    with np.errstate(over="ignore"), pytest.raises(ValueError, match="observation contains NaN/Inf"):
        MLPPolicy(make_policy((8, 64, 64, 3))).select_action(obs)


def _break(policy, how):
    if how == "nan_weight":
        policy.weights[5] = np.nan
    elif how == "short_weights":
        policy.weights = policy.weights[:-1]
    elif how == "zero_std":
        policy.obs_std[0] = 0.0
    elif how == "unknown_activation":
        policy.architecture = MLPArchitecture(policy.architecture.layer_sizes, "swish")
    return policy


@pytest.mark.parametrize("how,reason", [("nan_weight", "weights_nonfinite"), ("short_weights", "weights_size"),
                                        ("zero_std", "normalisation_scale"), ("unknown_activation", "activation")])
def test_invalid_policies_are_refused_at_construction(how, reason):
    with pytest.raises(PolicyValidationError) as info:
        MLPPolicy(_break(make_policy((8, 64, 64, 3)), how))
    assert info.value.reason == reason


def test_runtime_does_not_alias_the_policy_arrays():
    policy = make_policy((8, 64, 64, 3))
    runtime = MLPPolicy(policy)
    obs = np.linspace(-1, 1, 8)
    before, before_batch = runtime.select_action(obs), runtime.select_actions(obs[None])
    for name in ("weights", "obs_mean", "obs_std", "action_mean", "action_std"):
        getattr(policy, name)[:] = 3.0
    np.testing.assert_array_equal(runtime.select_action(obs), before)
    np.testing.assert_array_equal(runtime.select_actions(obs[None]), before_batch)


def test_flops_per_action_counted_by_hand():
    # 2 -> 3 -> 1: normalise 2*2 = 4; layer 1: 2*2*3 multiply-adds + 3 bias = 15;
    # layer 2: 2*3*1 + 1 = 7; de-normalise 2*1 = 2. Total 28.
    assert MLPPolicy(make_policy((2, 3, 1))).flops_per_action() == 28
    # 8 -> 64 -> 64 -> 3: 16 + (1024 + 64) + (8192 + 64) + (384 + 3) + 6
    assert MLPPolicy(make_policy((8, 64, 64, 3))).flops_per_action() == 9753
