"""What every policy's training config shares: the run's name, seed and output, the `data`
section (which demonstrations to train on) and strict YAML loading.

WARPD and Diffusion Policy both build on it, so they train on the same datasets, collected the
same way, and read their YAML by the same rules.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from warpd_core.errors import WarpdError
from warpd_core.policies.config_io import build_dataclass, read_yaml


@dataclass
class DataConfig:
    """Where the demonstrations come from; collected with the scripted expert when missing.

    One task: `task`, its dataset at `path`. Several tasks (multitask, e.g. MT10): list them
    in `tasks`; each gets its own dataset at `path`/<last part of the task name> (one dataset per
    task keeps `warpd collect` and the dataset format single-task), and `episodes`, `seed` and
    `hold_steps` apply to each. `task` is then ignored.
    """

    path: str = "runs/data/reach_around"
    task: str = "reach_around"
    tasks: tuple[str, ...] = ()  # several tasks, one dataset each under `path`; empty = just `task`
    episodes: int = 500
    seed: int = 0
    horizon: int = 16  # H: window length the encoder sees and L_BC / L_RO cover
    hold_steps: int = 16  # expert keeps demonstrating this long after success (how to stay at the goal)
    perturbations: str | None = None  # spec YAML: episodes perturbed at levels in [0, its level] (how to recover)

    @property
    def task_list(self) -> list[str]:
        """The tasks trained on, in task-id order (the order of the model's task embeddings)."""
        return list(self.tasks) if self.tasks else [self.task]

    def dataset_path(self, task: str) -> Path:
        """Where the demonstrations of `task` live."""
        return Path(self.path) / task.rsplit("/", 1)[-1] if self.tasks else Path(self.path)

    def validate(self, where: str) -> None:
        """Unknown names in `tasks` fail here, at load time, not after minutes of data collection.

        The single `task` is not checked: it may name an imported dataset's task (e.g. "rosbag")."""
        from warpd_core.tasks.registry import task_names, unknown_task_error

        known = set(task_names())
        for name in self.tasks:
            if name not in known:
                error = unknown_task_error(name)
                raise WarpdError(f"{where}: data: {error}", error.hint)
        if len(set(self.task_list)) != len(self.task_list):
            raise WarpdError(f"{where}: data.tasks lists a task twice: {list(self.tasks)}")
        leaves = [t.rsplit("/", 1)[-1] for t in self.tasks]
        if len(set(leaves)) != len(leaves):
            raise WarpdError(f"{where}: data.tasks {list(self.tasks)} would share a dataset directory under {self.path}",
                             "give tasks whose names differ after the last '/'")


@dataclass
class RunConfig:
    """The head of every training config; a policy's config subclasses it, adds its sections and
    sets its own defaults for `name` and `output` (a redeclared field keeps its place)."""

    name: str = "run"
    seed: int = 0
    output: str = "runs/run"
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self, where: str) -> None:
        """Checks beyond single values, run at load time; `where` labels errors."""
        self.data.validate(where)

    @classmethod
    def from_dict(cls, data: dict, source: str = "config"):
        config = build_dataclass(cls, data, source)
        config.validate(source)
        return config

    @classmethod
    def from_yaml(cls, path: str | Path):
        return cls.from_dict(read_yaml(path), source=str(path))
