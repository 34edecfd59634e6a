"""Open a dataset directory: read dataset.json, memory-map and validate every shard.

Opening checks everything a training loop would otherwise trip over late (see shard.py) plus
what only the whole dataset can tell: episode indices unique across shards. Episodes come in
storage order (shards by name, then as written), which for warpd collect is episode_index order.
Arrays are read-only; with a single shard they are views into the memory-mapped file (no copy).
"""
from __future__ import annotations

import json
import warnings
from functools import cached_property
from pathlib import Path

import numpy as np

from warpd_core.data.schema import HEADER_FILE, SHARD_DIR, SHARD_SUFFIX, TEMP_SUFFIX, DatasetInfo, EpisodeRecord
from warpd_core.data.shard import Shard, read_shard
from warpd_core.errors import WarpdError


class DatasetWarning(UserWarning):
    """Something worth knowing about a dataset that does not stop it from being read."""


class Dataset:
    """A validated, read-only dataset. Build with Dataset.open(path)."""

    def __init__(self, path: Path, info: DatasetInfo, shards: list[Shard]):
        self.path, self.info, self.shards = path, info, shards
        self.episodes: list[EpisodeRecord] = [r for shard in shards for r in shard.records]
        # episode k lives in shards[_where[k][0]] at record position _where[k][1]
        self._where = [(s, k) for s, shard in enumerate(shards) for k in range(len(shard.records))]

    @classmethod
    def open(cls, path) -> Dataset:
        path = Path(path)
        info = read_header(path)
        shard_dir = path / SHARD_DIR
        _warn_about_temp_files(path, shard_dir)
        shards = [read_shard(p, info) for p in sorted(shard_dir.glob("*" + SHARD_SUFFIX))]
        _check_unique_indices(shards)
        return cls(path, info, shards)

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    def __len__(self) -> int:
        return len(self.episodes)

    def episode(self, i: int) -> tuple[np.ndarray, np.ndarray, EpisodeRecord]:
        """The i-th episode in storage order: (observations (T, obs_dim), actions (T, action_dim), record)."""
        s, k = self._where[i]
        shard = self.shards[s]
        rows = slice(shard.starts[k], shard.starts[k + 1])
        return shard.observations[rows], shard.actions[rows], shard.records[k]

    def __iter__(self):
        return (self.episode(i) for i in range(len(self)))

    @cached_property
    def observations(self) -> np.ndarray:
        """All steps, (total_steps, obs_dim) float32."""
        return self._concat("observations", np.zeros((0, self.info.obs_dim), np.float32))

    @cached_property
    def actions(self) -> np.ndarray:
        """All steps, (total_steps, action_dim) float32."""
        return self._concat("actions", np.zeros((0, self.info.action_dim), np.float32))

    @cached_property
    def episode_index(self) -> np.ndarray:
        """(total_steps,) int64: the episode_index of each step."""
        return self._concat("episode_index", np.zeros(0, np.int64))

    def _concat(self, name: str, empty: np.ndarray) -> np.ndarray:
        parts = [getattr(shard, name) for shard in self.shards]
        if len(parts) == 1:
            return parts[0]  # the memory-mapped view itself
        joined = np.concatenate(parts) if parts else empty
        joined.flags.writeable = False
        return joined


def read_header(path: Path) -> DatasetInfo:
    header = path / HEADER_FILE
    if not header.is_file():
        what = "does not exist" if not path.exists() else f"has no {HEADER_FILE}"
        raise WarpdError(f"no warpd dataset at {path}: it {what}",
                         "create one with `warpd collect` or `warpd import-bag`, or check the path")
    try:
        data = json.loads(header.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise WarpdError(f"cannot read {header}: {exc}", "restore dataset.json from a copy, or re-create "
                                                          "the dataset") from None
    return DatasetInfo.from_json(data, str(header))


def _warn_about_temp_files(*directories: Path) -> None:
    for directory in directories:
        for tmp in sorted(directory.glob("*" + TEMP_SUFFIX)):
            warnings.warn(f"ignoring {tmp}: an unfinished write, left by an interrupted flush; the episodes in it "
                          "were not saved (delete the file to silence this)", DatasetWarning, stacklevel=3)


def _check_unique_indices(shards: list[Shard]) -> None:
    seen: dict[int, Path] = {}
    for shard in shards:
        for record in shard.records:
            if record.episode_index in seen:
                raise WarpdError(f"episode index {record.episode_index} appears twice: in {seen[record.episode_index]}"
                                 f" and in {shard.path}", "a shard was copied in twice, or comes from another "
                                 "dataset; move the duplicate file out")
            seen[record.episode_index] = shard.path
