"""One shard: an Arrow IPC file holding whole episodes (rows) and their records (schema metadata).

Shards are written once and never modified. Reading memory-maps the file and returns numpy
views into the mapping (no copy, read-only); validation checks everything a consumer relies on:
the columns and widths, that rows and records agree episode by episode, and finite values.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from warpd_core.data.atomic import atomic_write
from warpd_core.data.schema import CORRUPT_HINT, EPISODES_KEY, DatasetInfo, EpisodeRecord, shard_schema
from warpd_core.errors import WarpdError

Episode = tuple[np.ndarray, np.ndarray, EpisodeRecord]  # observations (T, obs_dim), actions (T, action_dim)


@dataclass(frozen=True)
class Shard:
    path: Path
    observations: np.ndarray  # (rows, obs_dim) float32, read-only view into the mapped file
    actions: np.ndarray  # (rows, action_dim) float32, likewise
    episode_index: np.ndarray  # (rows,) int64
    records: list[EpisodeRecord]
    starts: np.ndarray  # (len(records) + 1,) row offsets: episode k is rows starts[k]:starts[k+1]


def write_shard(path: Path, info: DatasetInfo, episodes: list[Episode]) -> None:
    """Write `episodes` as one shard file at `path`, atomically."""
    records = [record for _, _, record in episodes]
    schema = shard_schema(info.obs_dim, info.action_dim).with_metadata(
        {EPISODES_KEY: json.dumps([r.to_json() for r in records])})
    lengths = [r.length for r in records]
    columns = [np.repeat([r.episode_index for r in records], lengths).astype(np.int64),
               np.concatenate([np.arange(n, dtype=np.int32) for n in lengths]),
               _vectors(np.concatenate([obs for obs, _, _ in episodes]), info.obs_dim),
               _vectors(np.concatenate([act for _, act, _ in episodes]), info.action_dim)]
    batch = pa.record_batch(columns, schema=schema)

    def write(file):
        with pa.ipc.new_file(file, schema) as ipc:
            ipc.write_batch(batch)
    atomic_write(path, write)


def read_shard(path: Path, info: DatasetInfo) -> Shard:
    """Memory-map and validate one shard against the dataset header; WarpdError if anything is off."""
    batch, metadata = _open_batch(path, info)
    records = _records(path, metadata)
    observations = _matrix(batch.column("observation"), info.obs_dim)
    actions = _matrix(batch.column("action"), info.action_dim)
    episode_index = batch.column("episode_index").to_numpy()
    frame_index = batch.column("frame_index").to_numpy()
    starts = np.concatenate([[0], np.cumsum([r.length for r in records])]).astype(np.int64)
    _check_rows(path, records, starts, episode_index, frame_index)
    for name, values in (("observations", observations), ("actions", actions)):
        if not np.isfinite(values).all():
            row = int(np.argwhere(~np.isfinite(values))[0, 0])
            raise WarpdError(f"{path}: non-finite {name} in episode {episode_index[row]}, frame {frame_index[row]}",
                             CORRUPT_HINT)
    return Shard(path, observations, actions, episode_index, records, starts)


def _vectors(values: np.ndarray, dim: int) -> pa.FixedSizeListArray:
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat, type=pa.float32()), dim)


def _open_batch(path: Path, info: DatasetInfo) -> tuple[pa.RecordBatch, dict]:
    try:
        reader = pa.ipc.open_file(pa.memory_map(str(path)))
        if reader.num_record_batches != 1:
            raise pa.ArrowInvalid(f"{reader.num_record_batches} record batches, warpd shards hold exactly 1")
        batch = reader.get_batch(0)
        batch.validate(full=True)
    except (pa.ArrowException, OSError) as exc:
        raise WarpdError(f"{path} is truncated or corrupt: {exc}", CORRUPT_HINT) from None
    expected = shard_schema(info.obs_dim, info.action_dim)
    if not batch.schema.remove_metadata().equals(expected):
        raise WarpdError(f"{path} does not match dataset.json (obs_dim {info.obs_dim}, action_dim "
                         f"{info.action_dim}): its columns are {_describe(batch.schema)}, expected "
                         f"{_describe(expected)}", "this shard belongs to another dataset; move it out")
    vectors = (batch.column("observation").values, batch.column("action").values)
    if any(column.null_count for column in (*batch.columns, *vectors)):
        raise WarpdError(f"{path} contains null values", CORRUPT_HINT)
    return batch, reader.schema.metadata or {}


def _describe(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema)


def _records(path: Path, metadata: dict) -> list[EpisodeRecord]:
    try:
        raw = json.loads(metadata[EPISODES_KEY])
    except (KeyError, ValueError) as exc:
        raise WarpdError(f"{path} has no readable episode records ({exc!r})", CORRUPT_HINT) from None
    if not isinstance(raw, list) or not raw:
        raise WarpdError(f"{path}: episode records must be a non-empty list", CORRUPT_HINT)
    return [EpisodeRecord.from_json(item, str(path)) for item in raw]


def _matrix(column: pa.FixedSizeListArray, dim: int) -> np.ndarray:
    """(rows, dim) numpy view of a fixed-size-list column, without copying."""
    values = column.values.slice(column.offset * dim, len(column) * dim)
    return values.to_numpy(zero_copy_only=True).reshape(len(column), dim)


def _check_rows(path, records, starts, episode_index, frame_index) -> None:
    """Rows must be the records' episodes, contiguous, in record order, frames 0..length-1."""
    lengths = np.diff(starts)
    expected = np.repeat([r.episode_index for r in records], lengths)
    if len(episode_index) == starts[-1] and np.array_equal(episode_index, expected):
        if np.array_equal(frame_index, np.arange(starts[-1]) - np.repeat(starts[:-1], lengths)):
            return
        raise WarpdError(f"{path}: frame_index is not 0..length-1 within each episode", CORRUPT_HINT)
    for record in records:
        rows = int(np.count_nonzero(episode_index == record.episode_index))
        if rows != record.length:
            raise WarpdError(f"{path}: episode {record.episode_index}'s record says length {record.length} "
                             f"but the shard holds {rows} rows for it", CORRUPT_HINT)
    raise WarpdError(f"{path}: its rows do not follow its episode records (each episode's rows must be "
                     "contiguous, in record order, and every row must belong to a recorded episode)", CORRUPT_HINT)
