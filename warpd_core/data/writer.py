"""Create a dataset or append to one, an episode at a time, one new shard per flush.

Episodes are buffered in memory and written as a shard every `flush_every` episodes, on
flush(), and when the `with` block ends — also when it ends by an exception, since every
buffered episode is complete. Appending re-opens (and so validates) the existing dataset and
refuses episodes whose layout differs from dataset.json, so one dataset never mixes layouts.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from warpd_core.data.atomic import atomic_write
from warpd_core.data.reader import Dataset
from warpd_core.data.schema import HEADER_FILE, SHARD_DIR, SHARD_SUFFIX, DatasetInfo, EpisodeRecord
from warpd_core.data.shard import Episode, write_shard
from warpd_core.errors import WarpdError


class DatasetWriter:
    """Writes episodes into the dataset at `path`, creating it (from `info`) or appending to it.

    One writer per dataset at a time: shard names are chosen without locking."""

    def __init__(self, path, info: DatasetInfo, flush_every: int = 10):
        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1, got {flush_every}")
        self.path, self.flush_every = Path(path), flush_every
        self.info, self.records = self._open_or_create(info)
        self._indices = {r.episode_index for r in self.records}  # records: saved and buffered, in order
        self._pending: list[Episode] = []
        self._shard_number = len(list((self.path / SHARD_DIR).glob("*" + SHARD_SUFFIX)))

    def _open_or_create(self, info: DatasetInfo) -> tuple[DatasetInfo, list[EpisodeRecord]]:
        if (self.path / HEADER_FILE).exists():
            existing = Dataset.open(self.path)
            if problems := existing.info.layout_differences(info):
                raise WarpdError(f"cannot append to {self.path}: its layout differs ({'; '.join(problems)})",
                                 "write to a new dataset directory instead")
            return existing.info, list(existing.episodes)
        if self.path.exists() and any(self.path.iterdir()):
            raise WarpdError(f"{self.path} exists, is not empty and is not a warpd dataset (no {HEADER_FILE})",
                             "choose a new or empty directory")
        (self.path / SHARD_DIR).mkdir(parents=True, exist_ok=True)
        atomic_write(self.path / HEADER_FILE, lambda f: f.write(json.dumps(info.to_json(), indent=2).encode()))
        return info, []

    @property
    def episode_indices(self) -> frozenset[int]:
        """Indices already in the dataset or buffered for the next flush."""
        return frozenset(self._indices)

    @property
    def next_episode_index(self) -> int:
        return max(self._indices, default=-1) + 1

    def add_episode(self, observations, actions, record: EpisodeRecord) -> None:
        """Buffer one finished episode; flushes when flush_every episodes are waiting."""
        obs = np.asarray(observations, dtype=np.float32)
        act = np.asarray(actions, dtype=np.float32)
        self._check(obs, act, record)
        self._pending.append((obs, act, record))
        self.records.append(record)
        self._indices.add(record.episode_index)
        if len(self._pending) >= self.flush_every:
            self.flush()

    def _check(self, obs: np.ndarray, act: np.ndarray, record: EpisodeRecord) -> None:
        want = ((record.length, self.info.obs_dim), (record.length, self.info.action_dim))
        if (obs.shape, act.shape) != want or record.length < 1:
            raise ValueError(f"episode {record.episode_index}: observations {obs.shape} and actions {act.shape} "
                             f"must be {want[0]} and {want[1]} (record length {record.length})")
        if record.episode_index in self._indices:
            raise ValueError(f"episode index {record.episode_index} is already in {self.path}")
        if not (np.isfinite(obs).all() and np.isfinite(act).all()):
            raise WarpdError(f"episode {record.episode_index} has non-finite observations or actions",
                             "datasets hold finite values only; drop or repair the episode")

    def flush(self) -> int:
        """Write the buffered episodes as one new shard; returns how many were written."""
        if not self._pending:
            return 0
        write_shard(self._next_shard_path(), self.info, self._pending)
        written, self._pending = len(self._pending), []
        return written

    def _next_shard_path(self) -> Path:
        while True:  # skip names taken (e.g. after a shard was deleted by hand): never overwrite one
            path = self.path / SHARD_DIR / f"shard-{self._shard_number:06d}{SHARD_SUFFIX}"
            self._shard_number += 1
            if not path.exists():
                return path

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
