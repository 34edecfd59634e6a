"""The dataset format: exact round trips, zero-copy reads, appends, and a clear error for every
way a dataset on disk can be broken."""
import json
import shutil

import numpy as np
import pyarrow as pa
import pytest

from warpd_core.data import Dataset, DatasetInfo, DatasetWarning, DatasetWriter, EpisodeRecord
from warpd_core.data.schema import EPISODES_KEY
from warpd_core.errors import WarpdError

INFO = DatasetInfo(("toy",), ("x", "y", "z"), ("u", "v"), 0.05, created_by="test")


def episode(index, length, seed=None):
    rng = np.random.default_rng(index if seed is None else seed)
    obs = rng.standard_normal((length, 3)).astype(np.float32)
    act = rng.standard_normal((length, 2)).astype(np.float32)
    record = EpisodeRecord(index, "toy", length, success=index % 2 == 0, mode=("a", "b", None)[index % 3],
                           task_version="1", seed=100 + index, expert="scripted", perturbation=0.0,
                           metadata={"note": f"episode {index}", "nested": {"k": [1, 2]}})
    return obs, act, record


def write(path, indices, lengths=None, flush_every=10, info=INFO):
    with DatasetWriter(path, info, flush_every=flush_every) as writer:
        for k, index in enumerate(indices):
            writer.add_episode(*episode(index, lengths[k] if lengths else 3 + index))
    return path


def shard_files(path):
    return sorted((path / "shards").glob("*.arrow"))


def test_write_append_reopen_round_trip_is_exact(tmp_path):
    path = write(tmp_path / "ds", [0, 1, 2], flush_every=2)  # two shards
    write(path, [3, 4])  # append: a third
    dataset = Dataset.open(path)
    assert [p.name for p in shard_files(path)] == ["shard-000000.arrow", "shard-000001.arrow", "shard-000002.arrow"]
    assert dataset.info == INFO and dataset.num_episodes == len(dataset) == 5
    for i, (obs, act, record) in enumerate(dataset):
        want_obs, want_act, want_record = episode(i, 3 + i)
        assert record == want_record
        assert obs.dtype == np.float32 and np.array_equal(obs, want_obs) and np.array_equal(act, want_act)
    assert dataset.episodes == [episode(i, 3 + i)[2] for i in range(5)]
    assert np.array_equal(dataset.observations, np.concatenate([episode(i, 3 + i)[0] for i in range(5)]))
    assert np.array_equal(dataset.actions, np.concatenate([episode(i, 3 + i)[1] for i in range(5)]))
    assert np.array_equal(dataset.episode_index, np.repeat(np.arange(5), [3, 4, 5, 6, 7]))
    assert not dataset.observations.flags.writeable and not dataset.actions.flags.writeable
    header = json.loads((path / "dataset.json").read_text())
    assert header["schema_version"] == 1 and header["obs_dim"] == 3 and header["action_dim"] == 2
    assert header["tasks"] == ["toy"] and header["control_dt"] == 0.05


def test_single_shard_arrays_are_views_into_the_memory_mapped_file(tmp_path):
    path = tmp_path / "ds"
    obs, act, record = episode(0, 4)
    obs[2, 1] = 1234.5
    with DatasetWriter(path, INFO) as writer:
        writer.add_episode(obs, act, record)
    dataset = Dataset.open(path)
    view = dataset.observations
    assert not view.flags.owndata and not view.flags.writeable
    assert np.shares_memory(view, dataset.episode(0)[0])
    # Change the value in the file itself: a view of the mapping sees it, a copy would not.
    shard = shard_files(path)[0]
    offset = shard.read_bytes().find(np.float32(1234.5).tobytes())
    with open(shard, "r+b") as file:
        file.seek(offset)
        file.write(np.float32(-7.25).tobytes())
    assert view[2, 1] == np.float32(-7.25)


def test_writer_flushes_every_k_episodes_and_on_exit_even_after_an_error(tmp_path):
    path = tmp_path / "ds"
    with pytest.raises(RuntimeError):
        with DatasetWriter(path, INFO, flush_every=2) as writer:
            for i in range(3):
                writer.add_episode(*episode(i, 3))
            assert len(shard_files(path)) == 1  # episodes 0, 1; episode 2 still buffered
            raise RuntimeError("boom")
    assert Dataset.open(path).num_episodes == 3 and len(shard_files(path)) == 2


def test_reopening_with_another_layout_is_refused(tmp_path):
    path = write(tmp_path / "ds", [0])
    other = DatasetInfo(("toy",), ("x", "y"), ("u", "v"), 0.05)
    with pytest.raises(WarpdError, match=r"cannot append to .*layout differs \(obs_names"):
        DatasetWriter(path, other)
    with pytest.raises(WarpdError, match="task.*other_task.*not among the dataset's tasks toy"):
        DatasetWriter(path, DatasetInfo(("other_task",), INFO.obs_names, INFO.action_names, 0.05))
    with pytest.raises(WarpdError, match="control_dt 0.05 != 0.1"):
        DatasetWriter(path, DatasetInfo(("toy",), INFO.obs_names, INFO.action_names, 0.1))


def test_writer_refuses_a_directory_that_is_not_a_dataset_and_bad_episodes(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(WarpdError, match="not empty and is not a warpd dataset"):
        DatasetWriter(tmp_path, INFO)
    with DatasetWriter(tmp_path / "ds", INFO) as writer:
        obs, act, record = episode(0, 3)
        with pytest.raises(ValueError, match=r"must be \(3, 3\) and \(3, 2\)"):
            writer.add_episode(obs[:2], act, record)
        obs[1, 0] = np.nan
        with pytest.raises(WarpdError, match="non-finite"):
            writer.add_episode(obs, act, record)
        writer.add_episode(*episode(0, 3))
        with pytest.raises(ValueError, match="already in"):
            writer.add_episode(*episode(0, 3))


def test_leftover_temp_file_is_ignored_with_a_warning(tmp_path):
    path = write(tmp_path / "ds", [0, 1])
    (path / "shards" / "shard-000001.arrow.tmp").write_bytes(b"half a shard")
    with pytest.warns(DatasetWarning, match="shard-000001.arrow.tmp: an unfinished write"):
        dataset = Dataset.open(path)
    assert dataset.num_episodes == 2
    with pytest.warns(DatasetWarning):
        write(path, [2])  # appending works too, and its flush replaces the leftover
    assert not list((path / "shards").glob("*.tmp"))
    assert Dataset.open(path).num_episodes == 3


# ---- every way a dataset can be broken gets a clear WarpdError --------------------------------

def test_missing_dataset_or_header(tmp_path):
    with pytest.raises(WarpdError, match="no warpd dataset at .*nowhere: it does not exist") as exc:
        Dataset.open(tmp_path / "nowhere")
    assert "warpd collect" in exc.value.hint
    with pytest.raises(WarpdError, match="has no dataset.json"):
        Dataset.open(tmp_path)


def test_unreadable_header(tmp_path):
    path = write(tmp_path / "ds", [0])
    (path / "dataset.json").write_text("{not json")
    with pytest.raises(WarpdError, match="cannot read .*dataset.json"):
        Dataset.open(path)
    (path / "dataset.json").write_text(json.dumps({"schema_version": 1, "tasks": ["toy"]}))
    with pytest.raises(WarpdError, match="not a valid warpd dataset header: missing or malformed field"):
        Dataset.open(path)


def test_unknown_schema_version(tmp_path):
    path = write(tmp_path / "ds", [0])
    header = json.loads((path / "dataset.json").read_text())
    (path / "dataset.json").write_text(json.dumps(header | {"schema_version": 99}))
    with pytest.raises(WarpdError, match="dataset format version 99; this warpd reads version 1"):
        Dataset.open(path)


def test_shard_with_other_dims_than_the_header(tmp_path):
    path = write(tmp_path / "ds", [0])
    other_info = DatasetInfo(("toy",), ("x", "y", "z", "w"), ("u", "v"), 0.05)
    with DatasetWriter(tmp_path / "other", other_info) as writer:
        writer.add_episode(np.zeros((2, 4)), np.zeros((2, 2)), EpisodeRecord(7, "toy", 2))
    shutil.copy(shard_files(tmp_path / "other")[0], path / "shards" / "shard-000001.arrow")
    with pytest.raises(WarpdError, match=r"shard-000001.arrow does not match dataset.json \(obs_dim 3, action_dim 2\)"
                                         r".*fixed_size_list<item: float not null>\[4\]"):
        Dataset.open(path)


@pytest.mark.parametrize("damage", ["cut in half", "garbage"])
def test_truncated_or_garbage_shard(tmp_path, damage):
    path = write(tmp_path / "ds", [0, 1])
    shard = shard_files(path)[0]
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2] if damage == "cut in half" else np.random.default_rng(0).bytes(len(data)))
    with pytest.raises(WarpdError, match="shard-000000.arrow is truncated or corrupt") as exc:
        Dataset.open(path)
    assert "delete it" in exc.value.hint


def test_duplicate_episode_index_across_shards(tmp_path):
    path = write(tmp_path / "ds", [0, 1])
    shutil.copy(shard_files(path)[0], path / "shards" / "shard-000007.arrow")
    with pytest.raises(WarpdError, match="episode index 0 appears twice: in .*shard-000000.arrow and in "
                                         ".*shard-000007.arrow"):
        Dataset.open(path)


def rewrite_shard(shard, records=None, observations=None):
    """Rewrite a shard bypassing the writer's checks, as a buggy tool or a bit flip might."""
    table = pa.ipc.open_file(pa.BufferReader(shard.read_bytes())).read_all()  # not mapped: we overwrite it
    metadata = dict(table.schema.metadata)
    if records is not None:
        metadata[EPISODES_KEY] = json.dumps(records(json.loads(metadata[EPISODES_KEY])))
    if observations is not None:
        flat = observations(table.column("observation").combine_chunks().values.to_numpy().copy())
        column = pa.FixedSizeListArray.from_arrays(pa.array(flat), type=table.schema.field("observation").type)
        table = table.set_column(2, table.schema.field("observation"), column)
    table = table.replace_schema_metadata(metadata)
    with pa.OSFile(str(shard), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def test_record_length_not_matching_the_rows(tmp_path):
    path = write(tmp_path / "ds", [0, 1])
    rewrite_shard(shard_files(path)[0], records=lambda rs: [r | {"length": r["length"] + 1} for r in rs])
    with pytest.raises(WarpdError, match="episode 0's record says length 4 but the shard holds 3 rows"):
        Dataset.open(path)


def test_malformed_record(tmp_path):
    path = write(tmp_path / "ds", [0])
    rewrite_shard(shard_files(path)[0], records=lambda rs: [{k: v for k, v in r.items() if k != "task"} for r in rs])
    with pytest.raises(WarpdError, match="malformed episode record .*task"):
        Dataset.open(path)


def test_non_finite_values(tmp_path):
    path = write(tmp_path / "ds", [0, 1])

    def poison(flat):
        flat[3 * 4 + 1] = np.inf  # row 4 = episode 1, frame 1
        return flat
    rewrite_shard(shard_files(path)[0], observations=poison)
    with pytest.raises(WarpdError, match="non-finite observations in episode 1, frame 1"):
        Dataset.open(path)
