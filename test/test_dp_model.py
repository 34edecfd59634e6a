"""Diffusion Policy baseline on tiny configurations: U-Net shapes and conditioning, learning,
checkpoints, receding-horizon planning in the episode runner, and `warpd train --policy dp`."""
import json
import struct

import numpy as np
import pytest
import torch

from conftest import REPO
from warpd_core.commands import train as train_command
from warpd_core.errors import WarpdError
from warpd_core.eval.runner import run_episode
from warpd_core.policies.dp.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from warpd_core.policies.dp.config import DPConfig, UNetConfig
from warpd_core.policies.dp.modeling import DPModel, training_scheduler
from warpd_core.policies.dp.planner import DPPlanner, DPPlannerFactory
from warpd_core.policies.dp.training import make_chunk_samples, train
from warpd_core.policies.dp.unet import ConditionalUNet1D
from warpd_core.tasks.registry import make_task
from warpd_core.training import loop as loop_module

OBS, ACT = 8, 3  # reach_around's sizes, so the tiny model can run an episode
TINY = {"model": {"n_obs_steps": 2, "horizon": 8, "train_timesteps": 20, "sample_steps": 3},
        "unet": {"down_dims": [8, 16], "kernel_size": 3, "n_groups": 4, "step_embedding_dim": 8,
                 "task_embedding_dim": 4}}


def tiny_config(**sections) -> DPConfig:
    raw = json.loads(json.dumps(TINY))
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return DPConfig.from_dict(raw)


def tiny_model(config=None) -> DPModel:
    torch.manual_seed(0)
    model = DPModel(config or tiny_config(), [f"o{i}" for i in range(OBS)], [f"a{i}" for i in range(ACT)],
                    ["reach_around"])
    rng = np.random.default_rng(0)
    model.set_normalization(rng.normal(0.0, 1.0, (200, OBS)), rng.uniform(-2.0, 2.0, (200, ACT)))
    return model.eval()


@pytest.mark.parametrize("horizon", [8, 16, 32, 64])
@pytest.mark.parametrize("batch", [1, 3])
def test_unet_keeps_the_chunk_shape(horizon, batch):
    unet = ConditionalUNet1D(ACT, 10, UNetConfig(down_dims=(8, 16, 16), kernel_size=5, n_groups=4,
                                                 step_embedding_dim=8))
    x = torch.randn(batch, horizon, ACT)
    out = unet(x, torch.randint(0, 100, (batch,)), torch.randn(batch, 10))
    assert out.shape == (batch, horizon, ACT) and torch.isfinite(out).all()


def test_unet_output_depends_on_condition_and_step():
    torch.manual_seed(0)
    unet = ConditionalUNet1D(ACT, 10, UNetConfig(down_dims=(8, 16), kernel_size=3, n_groups=4, step_embedding_dim=8))
    x, t, cond = torch.randn(2, 16, ACT), torch.tensor([5, 5]), torch.randn(2, 10)
    base = unet(x, t, cond)
    assert not torch.allclose(base, unet(x, t, cond + 1.0))
    assert not torch.allclose(base, unet(x, torch.tensor([50, 50]), cond))
    # and the model's condition really carries the history and the task
    model = tiny_model()
    hist = torch.randn(1, 2, OBS)
    assert not torch.allclose(model.condition(hist, torch.tensor([0])), model.condition(hist.flip(1), torch.tensor([0])))


def test_config_rejects_horizons_the_unet_cannot_halve():
    with pytest.raises(WarpdError, match="multiple of 2"):
        tiny_config(model={"horizon": 7})
    with pytest.raises(WarpdError, match="after_chunk"):
        tiny_config(model={"after_chunk": "repeat"})


def synthetic_demos(n=6, steps=30, seed=0):
    """Demos of a smooth expert: action = -gain * (position - goal), easy to learn."""
    rng = np.random.default_rng(seed)
    demos = []
    for _ in range(n):
        obs = np.cumsum(rng.normal(0, 0.1, (steps, OBS)), axis=0)
        demos.append((obs, -0.5 * obs[:, :ACT] + 0.1, 0))
    return demos


def test_chunk_samples_pad_history_and_future_within_the_episode():
    model = tiny_model()
    demos = synthetic_demos(n=2, steps=5)
    samples = make_chunk_samples(demos, model)
    assert len(samples) == 10
    assert samples.obs_index[0].tolist() == [0, 0] and samples.obs_index[6].tolist() == [5, 6]
    assert samples.action_index[3].tolist() == [3, 4, 4, 4, 4, 4, 4, 4]  # end of episode 0: hold the last
    obs, actions, task_ids = samples.batch(torch.tensor([7]))
    assert obs.shape == (1, 2, OBS) and actions.shape == (1, 8, ACT) and task_ids.tolist() == [0]
    expected = model.normalize_action(torch.as_tensor(demos[1][1][2:5], dtype=torch.float32))
    assert torch.allclose(actions[0, :3], expected)


def test_a_few_training_steps_reduce_the_loss():
    model = tiny_model().train()
    samples = make_chunk_samples(synthetic_demos(), model)
    scheduler = training_scheduler(model.config.model)
    batch = samples.batch(torch.arange(len(samples)))

    def fixed_loss():
        torch.manual_seed(123)  # the same noise and timesteps each time
        with torch.no_grad():
            return float(model(*batch, scheduler))

    before = fixed_loss()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(60):
        index = torch.randint(0, len(samples), (64,), generator=torch.Generator().manual_seed(step))
        loss = model(*samples.batch(index), scheduler)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert fixed_loss() < 0.7 * before


def test_predict_chunk_shape_range_and_seeding():
    model = tiny_model()
    history = torch.randn(4, 2, OBS)
    chunk = model.predict_chunk(history, "reach_around", generator=torch.Generator().manual_seed(1))
    assert chunk.shape == (4, 8, ACT)
    low, high = model.action_offset - model.action_scale, model.action_offset + model.action_scale
    assert ((chunk >= low - 1e-4) & (chunk <= high + 1e-4)).all()  # DDIM clips to the training range
    again = model.predict_chunk(history, "reach_around", generator=torch.Generator().manual_seed(1))
    assert torch.equal(chunk, again)
    fast = model.predict_chunk(history, "reach_around", 4, torch.Generator().manual_seed(1), sampler="dpm")
    assert fast.shape == chunk.shape and torch.isfinite(fast).all()  # the few-step sampler WARPD uses
    assert ((fast >= low - 1e-4) & (fast <= high + 1e-4)).all()  # clipped to the training range too
    with pytest.raises(WarpdError, match="not trained on task 'other'"):
        model.predict_chunk(history, "other")
    with pytest.raises(ValueError, match="obs_history must be"):
        model.predict_chunk(torch.randn(4, 3, OBS), "reach_around")


def test_checkpoint_round_trip_is_bit_exact_and_pickle_free(tmp_path):
    model = tiny_model()
    path = save_checkpoint(model, tmp_path / "dp.safetensors", extra={"note": 1})
    raw = path.read_bytes()
    header_len = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + header_len])
    tensor_bytes = sum(v["data_offsets"][1] - v["data_offsets"][0] for k, v in header.items() if k != "__metadata__")
    assert len(raw) == 8 + header_len + tensor_bytes  # nothing but a safetensors header and raw tensors
    meta = read_metadata(path)
    assert meta["config"]["unet"]["down_dims"] == [8, 16] and meta["n_parameters"] == model.n_parameters()
    loaded = load_checkpoint(path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    history = torch.randn(2, 2, OBS)
    assert torch.equal(model.predict_chunk(history, "reach_around", generator=torch.Generator().manual_seed(0)),
                       loaded.predict_chunk(history, "reach_around", generator=torch.Generator().manual_seed(0)))


def test_corrupt_or_foreign_checkpoints_get_clear_errors(tmp_path):
    path = save_checkpoint(tiny_model(), tmp_path / "dp.safetensors")
    data = bytearray(path.read_bytes())
    flipped = tmp_path / "flipped.safetensors"
    data[-5] ^= 0xFF
    flipped.write_bytes(bytes(data))
    with pytest.raises(WarpdError, match="content hash mismatch"):
        load_checkpoint(flipped)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(WarpdError, match="not a readable safetensors file"):
        load_checkpoint(truncated)
    from warpd_core.policies.warpd.checkpoint import save_checkpoint as save_warpd
    from test_warpd_models import tiny_model as tiny_warpd

    warpd = save_warpd(tiny_warpd(), tmp_path / "warpd.safetensors")
    with pytest.raises(WarpdError, match="not a Diffusion Policy checkpoint"):
        load_checkpoint(warpd)
    with pytest.raises(WarpdError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_planner_keeps_history_and_plays_the_chunk_open_loop():
    model = tiny_model()
    planner = DPPlanner(model, "reach_around", seed=0)
    first = np.arange(OBS, dtype=float)
    assert np.array_equal(planner.observation_history(first), np.stack([first, first]))  # padded at the start
    executor = planner.plan(first)
    actions = [executor(first + i) for i in range(10)]  # chunk of 8, then the after-chunk action
    assert np.allclose(actions[:8], executor.actions) and np.array_equal(actions[8], np.zeros(ACT))
    assert np.array_equal(planner.observation_history(first + 100), np.stack([first + 9, first + 100]))
    last = DPPlanner(tiny_model(tiny_config(model={"after_chunk": "last"})), "reach_around").plan(first)
    played = [last(first) for _ in range(10)]
    assert np.array_equal(played[9], played[7])


def test_planner_runs_a_reach_around_episode(tmp_path):
    path = save_checkpoint(tiny_model(), tmp_path / "dp.safetensors")
    factory = DPPlannerFactory(path, "reach_around")
    task = make_task("reach_around")
    metrics, trajectory = run_episode(task, factory, seed=3, replan_every=8, record=True)
    assert metrics.steps == len(trajectory.actions) > 0
    assert metrics.replans == -(-metrics.steps // 8)
    again, _ = run_episode(task, factory, seed=3, replan_every=8)
    assert again.final_distance == metrics.final_distance  # seeded per episode: reproducible


def test_training_collects_data_trains_reproduces_and_resumes(tmp_path, monkeypatch, capsys):
    """Collects a tiny dataset, trains, writes checkpoint + curves; the same config and seed give the
    same weights, also when the run crashed right after saving its train state and was resumed."""
    raw = json.loads(json.dumps(TINY))
    raw.update(data={"path": str(tmp_path / "data"), "episodes": 2, "seed": 0},
               train={"steps": 9, "batch_size": 16, "warmup_steps": 2, "log_every": 4, "checkpoint_every": 5})

    def config(name):
        return DPConfig.from_dict({**raw, "output": str(tmp_path / name)})

    hashes = [read_metadata(train(config(name), progress=False))["sha256"] for name in ("a", "b")]
    curve = (tmp_path / "a" / "losses_dp.csv").read_text().splitlines()
    assert curve[0] == "step,total,seconds" and len(curve) == 1 + 3  # steps 0, 4 and the last (8)
    assert (tmp_path / "a" / "losses.png").exists() and hashes[0] == hashes[1]
    meta = read_metadata(tmp_path / "a" / "checkpoint.safetensors")
    assert meta["task_names"] == ["reach_around"] and meta["extra"]["samples"] > 0

    save_state = loop_module.save_train_state

    def save_then_crash(*args, **kwargs):
        save_state(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop_module, "save_train_state", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train(config("c"), progress=False)
    assert not (tmp_path / "c" / "checkpoint.safetensors").exists()
    monkeypatch.undo()
    resumed = train(config("c"), progress=False)
    assert "resuming DP at step 5" in capsys.readouterr().out
    assert read_metadata(resumed)["sha256"] == hashes[0]


def test_warpd_train_routes_policy_dp_to_its_config(capsys, monkeypatch):
    """`--policy dp` reads config/train_dp_reach_around.yaml as a DP config (its checks, its keys)."""
    monkeypatch.chdir(REPO)
    assert train_command.main(["--policy", "dp", "--set", "model.horizon=7"]) == 2
    err = capsys.readouterr().err
    assert "train_dp_reach_around.yaml" in err and "multiple of 4" in err
    assert train_command.main(["--policy", "dp", "--set", "stage1.steps=3"]) == 2  # a WARPD key is unknown here
    assert "unknown key(s) ['stage1']" in capsys.readouterr().err
