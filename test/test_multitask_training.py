"""Multitask WARPD (MT10-style): a `data.tasks` config, one dataset per task, one task-conditioned
checkpoint whose planner serves every trained task and refuses others. Tiny sizes: seconds."""
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, tiny_warpd_config

from warpd_core.data.reader import Dataset
from warpd_core.errors import WarpdError
from warpd_core.policies.warpd.checkpoint import load_checkpoint, read_metadata
from warpd_core.policies.warpd.config import TrainConfig
from warpd_core.policies.warpd.planner import Planner
from warpd_core.policies.warpd.training import train
from warpd_core.training.datasets import demonstrations

TASKS = ["metaworld/reach-v3", "metaworld/drawer-close-v3"]


def tiny_config(data_root: Path, output: Path, tasks=TASKS) -> dict:
    loop = {"steps": 4, "batch_size": 16, "log_every": 2, "checkpoint_every": 100}
    return tiny_warpd_config({"path": str(data_root), "tasks": list(tasks), "episodes": 2, "seed": 0, "horizon": 4,
                              "hold_steps": 0}, stage1=loop, stage2=dict(loop), sample_steps=3, output=str(output))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Train once: collects 2 expert episodes per task (one dataset each), then a few steps."""
    root = tmp_path_factory.mktemp("multitask")
    config = TrainConfig.from_dict(tiny_config(root / "data", root / "run"))
    checkpoint = train(config, progress=False)
    return config, checkpoint


def test_one_dataset_per_task_and_one_checkpoint_for_all(trained):
    config, checkpoint = trained
    for task in TASKS:  # collected on demand, each into its own single-task dataset
        dataset = Dataset.open(config.data.dataset_path(task))
        assert dataset.info.tasks == (task,) and dataset.num_episodes == 2
    meta = read_metadata(checkpoint)
    assert meta["task_names"] == TASKS
    assert meta["architecture"]["layer_sizes"] == [39, 16, 16, 4]
    model = load_checkpoint(checkpoint)
    assert model.denoiser.state_dict()["task_embedding.weight"].shape[0] == len(TASKS)


def test_normalisation_covers_every_task(trained):
    config, checkpoint = trained
    model = load_checkpoint(checkpoint)
    datasets = [Dataset.open(config.data.dataset_path(t)) for t in TASKS]
    demos = demonstrations(datasets, TASKS)
    assert {task_id for _, _, task_id in demos} == {0, 1}
    all_obs = np.concatenate([obs for obs, _, _ in demos])
    np.testing.assert_allclose(model.obs_mean.numpy(), all_obs.mean(0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("task", TASKS)
def test_planner_generates_valid_policies_for_each_task(trained, task):
    _, checkpoint = trained
    planner = Planner.from_checkpoint(checkpoint, task)
    from warpd_core.tasks import make_task

    env = make_task(task)
    obs = env.reset(123)
    generated = planner.generate(obs)
    generated.validate()
    assert generated.task == task and generated.architecture.layer_sizes == (39, 16, 16, 4)
    action = planner.plan(obs)(obs)
    assert action.shape == (4,) and np.all(np.isfinite(action))
    env.close()


def test_task_conditioning_changes_the_generated_policy(trained):
    """Same state, same sampler seed, different task id -> different weights."""
    _, checkpoint = trained
    obs = np.zeros(39, dtype=np.float32)
    first, second = (Planner.from_checkpoint(checkpoint, t, seed=7).generate(obs).weights for t in TASKS)
    assert not np.allclose(first, second)


def test_planner_refuses_an_untrained_task(trained):
    _, checkpoint = trained
    with pytest.raises(WarpdError, match="not trained on task 'metaworld/push-v3'") as error:
        Planner.from_checkpoint(checkpoint, "metaworld/push-v3")
    assert "metaworld/reach-v3" in error.value.hint


def test_a_task_without_successful_demonstrations_is_an_error(trained):
    config, _ = trained
    only_reach = [Dataset.open(config.data.dataset_path(TASKS[0]))]
    with pytest.raises(WarpdError, match="no successful episodes of task.s. metaworld/drawer-close-v3"):
        demonstrations(only_reach, TASKS)


def test_multitask_config_validation(tmp_path):
    good = TrainConfig.from_dict(tiny_config(tmp_path / "d", tmp_path / "o"))
    assert good.data.task_list == TASKS
    assert good.data.dataset_path(TASKS[1]) == tmp_path / "d" / "drawer-close-v3"
    with pytest.raises(WarpdError, match="unknown task 'metaworld/pushh-v3'") as error:
        TrainConfig.from_dict(tiny_config(tmp_path, tmp_path, tasks=["metaworld/reach-v3", "metaworld/pushh-v3"]))
    assert "did you mean metaworld/push-v3" in error.value.hint
    with pytest.raises(WarpdError, match="lists a task twice"):
        TrainConfig.from_dict(tiny_config(tmp_path, tmp_path, tasks=[TASKS[0], TASKS[0]]))
    not_a_list = tiny_config(tmp_path, tmp_path)
    not_a_list["data"]["tasks"] = "metaworld/reach-v3"
    with pytest.raises(WarpdError, match="data: tasks must be like"):
        TrainConfig.from_dict(not_a_list)


def test_shipped_configs_load():
    single = TrainConfig.from_yaml(REPO / "config/train_reach_around.yaml")
    assert single.data.task_list == ["reach_around"] and single.data.dataset_path("reach_around") == \
        Path("runs/data/reach_around_perturbed")
    for name in ("train_mt10.yaml", "train_mt10_full.yaml"):
        mt10 = TrainConfig.from_yaml(REPO / "config" / name)
        assert len(mt10.data.task_list) == 10 and all(t.startswith("metaworld/") for t in mt10.data.task_list)
