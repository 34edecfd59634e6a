"""WARPD models on tiny configurations: shapes, learning, runtime equality, checkpoints."""
import copy
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import REPO
from warpd_core.errors import WarpdError
from warpd_core.policies.warpd.checkpoint import content_hash, load_checkpoint, save_checkpoint
from warpd_core.policies.warpd.config import TrainConfig
from warpd_core.policies.warpd.modeling import WarpdModel
from warpd_core.policies.warpd.planner import Planner
from warpd_core.policies.warpd.stage1 import Stage1
from warpd_core.runtime.mlp_runtime import MLPPolicy

OBS, ACT, H = 5, 2, 4


def tiny_config(**sections) -> TrainConfig:
    base = {"data": {"horizon": H}, "encoder": {"latent_dim": 6, "hidden": [32]},
            "policy": {"hidden": [16, 16]}, "hypernet": {"chunk_size": 64, "chunk_embedding_dim": 8, "hidden": [32]},
            "world_model": {"hidden": [32]}, "diffusion": {"hidden": 32, "layers": 1, "train_timesteps": 20,
                                                            "sample_steps": 4}}
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return TrainConfig.from_dict(base)


def tiny_model(config=None) -> WarpdModel:
    torch.manual_seed(0)
    model = WarpdModel(config or tiny_config(), [f"o{i}" for i in range(OBS)], [f"a{i}" for i in range(ACT)], ["t"])
    rng = np.random.default_rng(0)
    model.set_normalization(rng.normal(1.0, 2.0, (100, OBS)), rng.normal(-0.5, 0.3, (100, ACT)))
    return model.eval()


def linear_system_windows(n=512, seed=0):
    """Windows from s' = s + 0.1 a with the expert a = -K s: a problem every term can learn."""
    g = torch.Generator().manual_seed(seed)
    gain = torch.randn(ACT, OBS, generator=g) * 0.5
    states, actions, nexts = [], [], []
    s = torch.randn(n, OBS, generator=g)
    for _ in range(H):
        a = s @ -gain.T
        s_next = s + 0.1 * torch.cat([a, torch.zeros(n, OBS - ACT)], dim=1)
        states.append(s), actions.append(a), nexts.append(s_next)
        s = s_next
    return torch.stack(states, 1), torch.stack(actions, 1), torch.stack(nexts, 1)


DECODERS = {"chunked": {}, "low_rank": {"kind": "low_rank", "rank": 8, "hidden": [32]}}


@pytest.mark.parametrize("decoder", DECODERS)
def test_stage1_shapes(decoder):
    stage1 = Stage1(OBS, ACT, tiny_config(hypernet=DECODERS[decoder]))
    states, actions, nexts = linear_system_windows(8)
    mean, log_var = stage1.encoder(states, actions)
    assert mean.shape == log_var.shape == (8, 6)
    weights = stage1.hypernet(mean)
    assert weights.shape == (8, stage1.hypernet.architecture.n_params()) == (8, 5 * 16 + 16 + 16 * 16 + 16 + 16 * 2 + 2)
    assert stage1.hypernet.policy_forward(stage1.hypernet.split(weights), states).shape == (8, H, ACT)
    losses = stage1(states, actions, nexts)
    assert set(losses) == {"total", "bc", "tf", "ro", "kl", "plan"} and all(v.shape == () for v in losses.values())
    assert losses["plan"] == 0  # off unless configured


@pytest.mark.parametrize("decoder", DECODERS)
def test_every_loss_term_decreases_on_a_tiny_problem(decoder):
    torch.manual_seed(0)
    stage1 = Stage1(OBS, ACT, tiny_config(loss={"ro": 1.0, "beta_kl": 1e-3}, hypernet=DECODERS[decoder]))
    data = linear_system_windows()
    optimizer = torch.optim.Adam(stage1.parameters(), lr=3e-3)
    initial = copy.deepcopy(stage1).eval()
    first = {k: float(v.detach()) for k, v in stage1(*data).items()}
    for _ in range(300):
        losses = stage1(*data)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
    stage1.eval()
    last = {k: float(v.detach()) for k, v in stage1(*data).items()}
    assert last["bc"] < 0.1 * first["bc"]
    assert last["tf"] < first["tf"] - 2.0  # a NLL: it keeps going down as the model sharpens
    # L_RO is a KL under the co-trained world model, whose sharpening alone raises it; judge the
    # policy against the untrained one under the *same* final world model.
    initial.world_model.load_state_dict(stage1.world_model.state_dict())
    assert last["ro"] < 0.2 * float(initial(*data)["ro"].detach())
    assert last["kl"] < first["kl"] * 50  # held in check by beta_kl while the latent becomes informative


def test_rollout_loss_trains_the_policy_not_the_world_model():
    stage1 = Stage1(OBS, ACT, tiny_config(loss={"bc": 0.0, "tf": 0.0, "ro": 1.0, "beta_kl": 0.0}))
    stage1(*linear_system_windows(16))["total"].backward()
    assert all(p.grad is None or not p.grad.any() for p in stage1.world_model.parameters())
    assert any(p.grad is not None and p.grad.any() for p in stage1.hypernet.parameters())


@pytest.mark.parametrize("decoder", DECODERS)
def test_decoded_policy_in_numpy_equals_the_torch_hypernetwork(decoder):
    model = tiny_model(tiny_config(hypernet=DECODERS[decoder]))
    obs = torch.randn(64, OBS) * 2 + 1
    for row in range(3):
        z = torch.randn(1, 6)
        weights = model.stage1.hypernet(z)
        torch_actions = model.stage1.hypernet.policy_forward(model.stage1.hypernet.split(weights),
                                                             model.normalize_obs(obs).unsqueeze(0))[0]
        torch_actions = torch_actions * model.action_std + model.action_mean
        runtime = MLPPolicy(model.to_generated_policy(weights[0], z[0], "t"))
        np.testing.assert_allclose(runtime.select_actions(obs.numpy()), torch_actions.detach().numpy(),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(runtime.select_action(obs[0].numpy()), torch_actions[0].detach().numpy(),
                                   rtol=1e-5, atol=1e-5)


def test_planner_generates_valid_numbered_policies():
    planner = Planner(tiny_model(), "t", seed=3)
    first, second = planner.generate(np.ones(OBS)), planner.generate(np.ones(OBS))
    first.validate()
    assert (first.policy_id, second.policy_id) == (1, 2) and first.planner_id == "warpd_planner"
    assert not np.array_equal(first.latent, second.latent)  # fresh noise each plan
    again = Planner(tiny_model(), "t", seed=3).generate(np.ones(OBS))
    assert np.array_equal(again.weights, first.weights)  # reproducible from the seed
    assert planner.plan(np.ones(OBS)).select_action(np.ones(OBS)).shape == (ACT,)
    with pytest.raises(WarpdError, match="not trained on task 'other'"):
        Planner(tiny_model(), "other")


@pytest.mark.parametrize("decoder", DECODERS)
def test_checkpoint_round_trip(tmp_path, decoder):
    model = tiny_model(tiny_config(hypernet=DECODERS[decoder]))
    path = save_checkpoint(model, tmp_path / "c.safetensors")
    loaded = load_checkpoint(path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    assert loaded.task_names == ["t"] and loaded.config == model.config
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    obs = torch.randn(3, OBS)
    assert torch.equal(model.generate(obs, "t", generator=g1)[0], loaded.generate(obs, "t", generator=g2)[0])


def test_low_rank_decode_costs_a_fraction_of_the_chunked_one():
    """The low-rank decoder runs its trunk once; the chunked one once per chunk of weights."""
    from warpd_core.eval.flops import count_flops

    z = torch.zeros(1, 6)
    chunked = Stage1(OBS, ACT, tiny_config()).hypernet
    low_rank = Stage1(OBS, ACT, tiny_config(hypernet=DECODERS["low_rank"])).hypernet
    n = chunked.n_params
    assert count_flops(low_rank, z) == 2 * (6 * 32 + 32 * 8) + 2 * 8 * n  # trunk 6 -> 32 -> 8, then U (8 x n)
    assert count_flops(chunked, z) == chunked.n_chunks * 2 * ((6 + 8) * 32 + 32 * 64)


def test_sampling_reuses_the_condition_and_equals_the_full_denoiser():
    """The per-plan path (condition once, cached time features) predicts exactly what forward() does, and
    the time cache follows a change of the weights."""
    model = tiny_model()
    denoiser = model.denoiser
    z, state, task = torch.randn(3, 6), torch.randn(3, OBS), torch.zeros(3, dtype=torch.long)
    t = torch.tensor(7)
    with torch.no_grad():
        full = denoiser(z, t.expand(3), state, task)
        fast = denoiser.denoise(z, denoiser.condition(state, task) + denoiser.time_features((7,))[0])
        torch.testing.assert_close(fast, full)
        denoiser.time_mlp[0].weight.add_(0.5)
        changed = denoiser(z, t.expand(3), state, task)
        fast = denoiser.denoise(z, denoiser.condition(state, task) + denoiser.time_features((7,))[0])
        torch.testing.assert_close(fast, changed)
        assert not torch.allclose(changed, full)


def test_plan_windows_point_at_later_steps_of_their_own_episode():
    """Two episodes of 10 and 6 steps, H 2, plan horizon 6 with 3 samples: offsets 2, 4, 5 after each
    window's start, clamped to the episode's last step, never into the next episode."""
    from warpd_core.policies.warpd.windows import make_windows

    demos = [(np.arange(11, dtype=np.float32)[:, None] * np.ones((1, OBS)), np.arange(10.0)[:, None] * np.ones((1, ACT)),
              0), (100 + np.arange(7.0)[:, None] * np.ones((1, OBS)), 100 + np.arange(6.0)[:, None] * np.ones((1, ACT)),
                   0)]
    stats = (np.zeros(OBS), np.ones(OBS), np.zeros(ACT), np.ones(ACT))
    windows = make_windows(demos, 2, *stats, plan_horizon=6, plan_samples=3)
    states, actions, _, plan_states, plan_actions = windows.batch(torch.arange(len(windows)))
    assert len(windows) == 8 + 4 and plan_states.shape == (12, 3, OBS) and plan_actions.shape == (12, 3, ACT)
    starts = actions[:, 0, 0]
    assert plan_actions[0, :, 0].tolist() == [2, 4, 5] and starts[0] == 0
    assert plan_actions[7, :, 0].tolist() == [9, 9, 9] and starts[7] == 7  # clamped to the episode's end
    assert plan_actions[8, :, 0].tolist() == [102, 104, 105] and plan_actions[11, :, 0].tolist() == [105, 105, 105]
    assert torch.equal(plan_states[..., 0], plan_actions[..., 0])  # each later action with its own state
    assert make_windows(demos, 2, *stats).plan_index is None


def test_plan_loss_teaches_the_policy_the_later_steps():
    """With L_plan the policy decoded from a window fits the expert on states the window never saw."""
    torch.manual_seed(0)
    config = tiny_config(loss={"plan": 1.0, "plan_horizon": 12, "plan_samples": 4})
    stage1 = Stage1(OBS, ACT, config)
    states, actions, nexts = linear_system_windows(256)
    later = torch.randn(256, 4, OBS) * 2  # states far from the windows' ...
    gain = torch.linalg.lstsq(states.reshape(-1, OBS), actions.reshape(-1, ACT)).solution  # ... same expert
    data = (states, actions, nexts, later, later @ gain)
    first = float(stage1(*data)["plan"])
    optimizer = torch.optim.Adam(stage1.parameters(), lr=3e-3)
    for _ in range(200):
        loss = stage1(*data)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(stage1.eval()(*data)["plan"]) < 0.1 * first


def test_unknown_decoder_or_sampler_fails_at_load():
    with pytest.raises(WarpdError, match="loss.plan needs loss.plan_horizon > data.horizon"):
        tiny_config(loss={"plan": 1.0, "plan_horizon": H})
    with pytest.raises(WarpdError, match="hypernet.kind is 'dense'"):
        tiny_config(hypernet={"kind": "dense"})
    with pytest.raises(WarpdError, match="diffusion.sampler is 'euler'"):
        tiny_config(diffusion={"sampler": "euler"})
    with pytest.raises(WarpdError, match="diffusion.prediction is 'noise'"):
        tiny_config(diffusion={"prediction": "noise"})
    with pytest.raises(WarpdError, match="trailing with prediction epsilon") as info:
        tiny_config(diffusion={"timestep_spacing": "trailing"})
    assert "prediction sample" in info.value.hint


def test_data_perturbations_is_a_spec_path_or_null():
    demos = str(REPO / "config" / "perturbations_demos.yaml")
    assert tiny_config(data={"perturbations": demos}).data.perturbations == demos
    assert tiny_config(data={"perturbations": None}).data.perturbations is None  # null, as --set writes it
    with pytest.raises(WarpdError, match="data: perturbations must be a string or null, got 3"):
        tiny_config(data={"perturbations": 3})
    # a recorded config names the spec but never needs it: training reads it (test_warpd_training)
    assert tiny_config(data={"perturbations": "nope.yaml"}).data.perturbations == "nope.yaml"


def test_a_checkpoint_loads_wherever_it_runs(tmp_path, monkeypatch):
    """The shipped checkpoints were trained on perturbed demonstrations: their recorded config names
    config/perturbations_demos.yaml, relative to the checkout. A planner started elsewhere (ros2 launch
    from an installed package) must load them all the same."""
    monkeypatch.chdir(tmp_path)
    for name in ("reach_around", "panda_reach_around"):
        model = load_checkpoint(REPO / "checkpoints" / name / "checkpoint.safetensors")
        assert model.config.data.perturbations == "config/perturbations_demos.yaml"


def test_truncated_checkpoint_is_refused(tmp_path):
    path = save_checkpoint(tiny_model(), tmp_path / "c.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WarpdError, match="not a readable safetensors file") as info:
        load_checkpoint(path)
    assert "truncated or corrupt" in info.value.hint


def test_an_oversized_checkpoint_is_refused_before_it_is_read(tmp_path):
    from warpd_core.policies.checkpoint_io import MAX_BYTES

    path = tmp_path / "huge.safetensors"
    with open(path, "wb") as f:
        f.truncate(MAX_BYTES + 1)  # sparse: costs no disk, and would take seconds to parse if it were read
    with pytest.raises(WarpdError, match="more than a WARPD checkpoint may be"):
        load_checkpoint(path)


def test_modified_tensor_bytes_fail_the_hash(tmp_path):
    path = save_checkpoint(tiny_model(), tmp_path / "c.safetensors")
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # inside the last tensor
    path.write_bytes(bytes(data))
    with pytest.raises(WarpdError, match="content hash mismatch"):
        load_checkpoint(path)


def test_checkpoint_for_another_architecture_is_refused(tmp_path):
    path = save_checkpoint(tiny_model(), tmp_path / "c.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["warpd"])
    meta["config"]["policy"]["hidden"] = [8, 8]  # tensors say 16-16
    tensors = load_file(str(path))
    save_file(tensors, str(path), metadata={"warpd": json.dumps(meta)})
    assert content_hash(tensors) == meta["sha256"]
    with pytest.raises(WarpdError, match="does not match the WARPD architecture"):
        load_checkpoint(path)


def test_non_warpd_files_are_refused(tmp_path):
    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(2)}, str(plain))
    with pytest.raises(WarpdError, match="not a WARPD checkpoint"):
        load_checkpoint(plain)
    text = tmp_path / "notes.safetensors"
    text.write_text("hello")
    with pytest.raises(WarpdError, match="not a readable safetensors file"):
        load_checkpoint(text)
    with pytest.raises(WarpdError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")


POSITION_OBS = ["q_j0", "q_j1", "qd_j0", "qd_j1", "goal_x"]
POSITION_ACT = ["j0_pos", "j1_pos"]


@pytest.mark.parametrize("activation,hidden", [("elu", [16, 16]), ("relu", [16]), ("gelu", [16, 8]), ("elu", [])])
def test_position_actions_learned_as_steps_run_as_targets(activation, hidden):
    """With action_offset, the policy learns target - q and the published MLP outputs q + step: the numpy
    runtime (what the controller runs) equals the torch policy's de-normalised step plus the measured q."""
    torch.manual_seed(0)
    config = tiny_config(policy={"hidden": hidden, "activation": activation, "action_offset": "auto"})
    model = WarpdModel(config, POSITION_OBS, POSITION_ACT, ["t"]).eval()
    rng = np.random.default_rng(1)
    obs = rng.normal([0.3, -1.2, 0, 0, 0.5], [0.8, 0.5, 1, 1, 0.2], (200, 5))
    targets = obs[:, :2] + rng.normal(0.01, 0.02, (200, 2))
    steps = model.learned_actions(obs, targets)
    np.testing.assert_allclose(steps, targets - obs[:, :2])
    model.set_normalization(obs, steps)
    assert model.architecture.layer_sizes == (5, *(h + 2 for h in hidden), 2)
    hypernet = model.stage1.hypernet
    weights = hypernet(torch.randn(1, 6))
    x = torch.as_tensor(obs, dtype=torch.float32)
    step = hypernet.policy_forward(hypernet.split(weights), model.normalize_obs(x).unsqueeze(0))[0]
    expected = (step * model.action_std + model.action_mean).detach().numpy() + obs[:, :2]
    policy = model.to_generated_policy(weights[0], torch.zeros(6), "t")
    runtime = MLPPolicy(policy)
    np.testing.assert_allclose(runtime.select_actions(obs), expected, atol=2e-5)
    np.testing.assert_allclose(runtime.select_action(obs[7]), expected[7], atol=2e-5)


def test_action_offset_refusals():
    with pytest.raises(WarpdError, match="activation 'tanh'"):
        WarpdModel(tiny_config(policy={"activation": "tanh", "action_offset": "joint_position"}),
                   POSITION_OBS, POSITION_ACT, ["t"])
    with pytest.raises(WarpdError, match="needs position actions"):
        WarpdModel(tiny_config(policy={"action_offset": "joint_position"}), POSITION_OBS, ["j0_vel", "j1_vel"], ["t"])
    with pytest.raises(WarpdError, match="policy.action_offset"):
        tiny_config(policy={"action_offset": "steps"}).validate("x.yaml")
    # auto leaves velocity actions, and none leaves position actions, as they are
    velocity = WarpdModel(tiny_config(policy={"action_offset": "auto"}), POSITION_OBS, ["j0_vel", "j1_vel"], ["t"])
    absolute = WarpdModel(tiny_config(), POSITION_OBS, POSITION_ACT, ["t"])
    assert velocity.offset_indices is None and absolute.offset_indices is None
    assert absolute.architecture == absolute.stage1.hypernet.architecture
