"""Demonstration datasets: a directory of immutable Apache Arrow IPC shards plus a JSON header.

Why Arrow IPC files (and not HDF5, npz, or a database):
- **memory-mappable**: an IPC *file* stores each column as one contiguous little-endian buffer,
  so `pa.memory_map` + `pa.ipc.open_file` hands out numpy views straight into the page cache:
  nothing is parsed or copied but the footer and the records (validation scans the values once
  for NaN/inf), and training can index millions of steps without loading them (see reader.py);
- **appendable without rewriting**: a dataset is a directory and every flush writes one new,
  complete shard (temp file, fsync, `os.replace`), so a crash (kill -9, power cut) can lose
  at most the episodes not flushed yet and never leaves a half-written file under its real name;
  that is what makes `warpd collect` resumable;
- **self-describing and checkable**: the Arrow schema fixes column types and widths, and the
  shard's schema metadata carries the per-episode records, so each shard can be validated on its
  own against dataset.json (dims, row counts, duplicates, finite values) before anything trusts
  it;
- **readable everywhere**: pyarrow, polars, DuckDB, Rust and C++ read the files with no warpd
  code.

Layout (schema version 1; schema.py is the single definition):

    DATASET/dataset.json           written once at creation: format version, tasks, names, dims, dt
    DATASET/shards/shard-NNNNNN.arrow
        rows: episode_index int64, frame_index int32,
              observation fixed_size_list<float32>[obs_dim], action fixed_size_list<float32>[action_dim]
        schema metadata "warpd.episodes": JSON list of per-episode records (schema.EpisodeRecord)

`Dataset.open(path)` reads and validates; `DatasetWriter(path, info)` creates or appends.
"""
from warpd_core.data.reader import Dataset, DatasetWarning
from warpd_core.data.schema import SCHEMA_VERSION, DatasetInfo, EpisodeRecord
from warpd_core.data.writer import DatasetWriter

__all__ = ["SCHEMA_VERSION", "Dataset", "DatasetInfo", "DatasetWarning", "DatasetWriter", "EpisodeRecord"]
