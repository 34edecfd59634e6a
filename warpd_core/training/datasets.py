"""The demonstrations a training run learns from, whatever the policy: the configured datasets
(collected on demand) and their successful episodes, each tagged with its task id."""
from __future__ import annotations

import sys

import numpy as np

from warpd_core.errors import WarpdError
from warpd_core.training.distributed import DistContext


def ensure_datasets(config, ctx: DistContext) -> list:
    """Open the dataset of every configured task (config.data.task_list), collecting a missing one
    with the scripted expert first. One task: [the dataset at data.path]."""
    from warpd_core.data.collect import collect_dataset
    from warpd_core.data.reader import Dataset
    from warpd_core.tasks.registry import task_names

    data = config.data
    perturbations = demo_perturbations(data)
    for task in data.task_list:
        path = data.dataset_path(task)
        if not (path / "dataset.json").exists() and task not in task_names():
            raise WarpdError(f"no dataset at {path} (data.path), and {task!r} is not a task warpd can collect "
                             "demonstrations for", "import your recording first: `warpd import-bag BAG --out "
                             f"{path} --task-name {task} ...` (README, \"Your own robot\"), or fix data.path")
        if not (path / "dataset.json").exists() and ctx.is_main:
            print(f"[train] no dataset at {path}: collecting {data.episodes} expert episodes of {task} first")
            result = collect_dataset(task, path, data.episodes, seed=data.seed, hold_steps=data.hold_steps,
                                     perturbations=perturbations)
            print(result.report())
            if result.signum is not None:
                print(result.interruption(), file=sys.stderr)
                raise WarpdError(f"collecting the dataset at {path} failed")
    ctx.barrier()
    datasets = [Dataset.open(data.dataset_path(task)) for task in data.task_list]
    for dataset in datasets:
        _check_collected_as_configured(dataset, data, perturbations)
    first = datasets[0].info
    for dataset in datasets[1:]:  # one model, one observation/action layout
        if (dataset.info.obs_names, dataset.info.action_names) != (first.obs_names, first.action_names):
            raise WarpdError(f"datasets {datasets[0].path} and {dataset.path} have different observation or "
                             "action names", "multitask training needs tasks with the same observation and "
                             "action layout")
    return datasets


def demo_perturbations(data):
    """The PerturbationSpec the demonstrations are collected under (data.perturbations), or None.

    Read here, when training starts and before anything is collected, not when a config is built: a
    checkpoint carries its training config, and loading it must not need the spec file where it runs."""
    from warpd_core.perturb.spec import PerturbationSpec

    if not data.perturbations:
        return None
    try:
        return PerturbationSpec.from_yaml(data.perturbations)
    except WarpdError as exc:
        raise WarpdError(f"data.perturbations: {exc}", exc.hint or "give the path of a perturbation spec YAML, "
                         "e.g. config/perturbations_demos.yaml, or null") from None


def _check_collected_as_configured(dataset, data, perturbations) -> None:
    """A dataset `warpd collect` made under other perturbations than data.perturbations says would be
    trained on silently (it exists, so nothing is collected): refuse it. Imported datasets carry no
    collect settings and pass."""
    from warpd_core.data.collect import recorded_perturbations

    wanted = recorded_perturbations(perturbations)
    for record in dataset.episodes:
        settings = record.metadata.get("collect")
        if settings is not None and settings.get("perturbations") != wanted:
            have = "perturbed" if settings.get("perturbations") else "unperturbed"
            raise WarpdError(f"the dataset at {dataset.path} holds {have} demonstrations, but data.perturbations is "
                             f"{data.perturbations or 'unset'}", "point data.path at another directory (training "
                             "collects it), or set data.perturbations to what the dataset was collected with")


def demonstrations(datasets, task_names: list[str]) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """(obs, actions, task id) of every successful episode of the given datasets (one or several,
    e.g. one per MT10 task); the task id is the episode's task's index in `task_names`.

    Every task must have successful episodes: a task without any would get a task embedding that
    was never trained, and a planner that silently generates nonsense for it."""
    demos = []
    for dataset in datasets:
        for obs, actions, record in dataset:
            if record.success and record.task in task_names:
                demos.append((np.asarray(obs), np.asarray(actions), task_names.index(record.task)))
    missing = [t for k, t in enumerate(task_names) if not any(d[2] == k for d in demos)]
    if missing:
        raise WarpdError(f"no successful episodes of task(s) {', '.join(missing)} in "
                         f"{', '.join(str(d.path) for d in datasets)}",
                         "collect demonstrations with `warpd collect`, or check data.path / data.task(s)")
    return demos


def robot_contract_record(config) -> dict | None:
    """The robot contract of the first configured dataset, for the checkpoint's record (None where the
    layout is not joint-space): planner and controller compare it with their configuration."""
    from warpd_core.data.reader import Dataset

    contract = Dataset.open(config.data.dataset_path(config.data.task_list[0])).info.robot_contract()
    return None if contract is None else contract.to_json()
