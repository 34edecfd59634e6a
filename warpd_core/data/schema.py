"""The dataset format, version 1: file names, the dataset.json header, the per-episode record and
the Arrow schema of a shard.

Everything that reads or writes datasets goes through these definitions, so a change of format
is made here, once, together with a bump of SCHEMA_VERSION (readers refuse versions they do not
know rather than misreading them).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import pyarrow as pa

from warpd_core import __version__
from warpd_core.errors import WarpdError
from warpd_core.tasks.base import ObsActionLayout

SCHEMA_VERSION = 1
HEADER_FILE = "dataset.json"
SHARD_DIR = "shards"
SHARD_SUFFIX = ".arrow"
TEMP_SUFFIX = ".tmp"  # an unfinished atomic write (see atomic.py); never read
EPISODES_KEY = b"warpd.episodes"  # shard schema metadata: JSON list of EpisodeRecord


@dataclass(frozen=True)
class DatasetInfo(ObsActionLayout):
    """What every episode of a dataset shares; stored once, in dataset.json."""

    tasks: tuple[str, ...]
    obs_names: tuple[str, ...]
    action_names: tuple[str, ...]
    control_dt: float | None  # seconds per step; None when unknown
    created_by: str = f"warpd_core {__version__}"  # the tool that created the dataset (see made_by)
    schema_version: int = SCHEMA_VERSION
    task_frame: str | None = None  # frame of goal positions among the task features (None: "world")

    @classmethod
    def from_task_spec(cls, spec, created_by: str) -> DatasetInfo:
        """The header for episodes of one task (a tasks.base.TaskSpec)."""
        return cls((spec.name,), tuple(spec.obs_names), tuple(spec.action_names), spec.control_dt,
                   made_by(created_by))

    def robot_contract(self):
        """The robot these episodes were recorded on (warpd_core.robot_contract), as the names spell it
        out; None for layouts that are not joint-space (Meta-World's end-effector tasks)."""
        from warpd_core.robot_contract import RobotContract

        try:
            return RobotContract.from_names(self.obs_names, self.action_names, self.control_dt, self.task_frame)
        except WarpdError:
            return None

    def to_json(self) -> dict:
        return {"schema_version": self.schema_version, "created_by": self.created_by, "tasks": list(self.tasks),
                "obs_names": list(self.obs_names), "action_names": list(self.action_names),
                "obs_dim": self.obs_dim, "action_dim": self.action_dim, "control_dt": self.control_dt,
                "task_frame": self.task_frame}

    @classmethod
    def from_json(cls, data, source: str) -> DatasetInfo:
        """Parse a dataset.json document, refusing unknown versions and inconsistent dims."""
        if not isinstance(data, dict):
            raise _bad_header(source, "it is not a JSON object")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise WarpdError(f"{source} has dataset format version {version!r}; this warpd reads version "
                             f"{SCHEMA_VERSION}", "use the warpd version that wrote it, or re-create the dataset")
        try:
            info = cls(tuple(data["tasks"]), tuple(data["obs_names"]), tuple(data["action_names"]),
                       data["control_dt"], data["created_by"], version, data.get("task_frame"))
            dims = (data["obs_dim"], data["action_dim"])
        except (KeyError, TypeError) as exc:
            raise _bad_header(source, f"missing or malformed field {exc}") from None
        if dims != (info.obs_dim, info.action_dim):
            raise _bad_header(source, f"obs_dim/action_dim {dims} do not match the {info.obs_dim} obs_names "
                                      f"and {info.action_dim} action_names")
        return info

    def layout_differences(self, other: DatasetInfo) -> list[str]:
        """Why episodes described by `other` cannot be appended to a dataset with this header."""
        problems = [f"{name} {getattr(self, name)} != {getattr(other, name)}"
                    for name in ("obs_names", "action_names") if getattr(self, name) != getattr(other, name)]
        if not _same_dt(self.control_dt, other.control_dt):
            problems.append(f"control_dt {self.control_dt} != {other.control_dt}")
        if missing := [t for t in other.tasks if t not in self.tasks]:
            problems.append(f"task(s) {', '.join(missing)} not among the dataset's tasks {', '.join(self.tasks)}")
        return problems


@dataclass(frozen=True)
class EpisodeRecord:
    """Facts about one episode. None means unknown (e.g. success and mode of a recorded bag)."""

    episode_index: int  # unique within the dataset; collect uses it to resume
    task: str
    length: int  # steps (rows) of the episode
    success: bool | None = None
    mode: str | None = None  # which way the task was solved (tasks.base.Task.mode_reached)
    task_version: str | None = None
    seed: int | None = None
    expert: str | None = None
    perturbation: float | None = None  # perturbation level the episode ran under; 0 = none
    metadata: dict = field(default_factory=dict)  # free-form, JSON-serialisable

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data, source: str) -> EpisodeRecord:
        try:
            record = cls(**data)  # TypeError for a non-mapping, unknown or missing fields
        except TypeError as exc:
            raise WarpdError(f"{source}: malformed episode record ({exc})", CORRUPT_HINT) from None
        if not (_is_int(record.episode_index) and _is_int(record.length) and record.length > 0):
            raise WarpdError(f"{source}: episode record with bad episode_index/length: {data}", CORRUPT_HINT)
        return record


def made_by(tool: str) -> str:
    """The created_by text for `tool`: its name and the warpd_core version, for tracing odd datasets."""
    return f"{tool} (warpd_core {__version__})"


CORRUPT_HINT = "the file was damaged or not written by warpd; delete it (dropping its episodes) or restore a copy"


def shard_schema(obs_dim: int, action_dim: int) -> pa.Schema:
    """Columns of a shard (without the episode metadata)."""
    def vector(dim):
        return pa.list_(pa.field("item", pa.float32(), nullable=False), dim)
    return pa.schema([pa.field("episode_index", pa.int64(), nullable=False),
                      pa.field("frame_index", pa.int32(), nullable=False),
                      pa.field("observation", vector(obs_dim), nullable=False),
                      pa.field("action", vector(action_dim), nullable=False)])


def _bad_header(source: str, why: str) -> WarpdError:
    return WarpdError(f"{source} is not a valid warpd dataset header: {why}",
                      "restore dataset.json from a copy, or re-create the dataset")


def _same_dt(a: float | None, b: float | None) -> bool:
    return a == b or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
