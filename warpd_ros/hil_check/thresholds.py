"""hil-check's thresholds: which checks there are, and their limits from the config's warpd_hil_check entry.

Kept apart from everything that measures, so a config can be validated (and the test of every
malformed entry run) without ROS and before any node is started.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from warpd_core.errors import WarpdError
from warpd_ros.graph import HIL_CHECK_KEY, read_params_file

ENTRY = HIL_CHECK_KEY  # the config entry with the thresholds (also accepted as /warpd_hil_check)


@dataclass(frozen=True)
class Threshold:
    key: str
    bound: str  # "min" or "max"
    unit: str
    description: str


THRESHOLDS = (
    Threshold("min_joint_state_rate_hz", "min", "Hz", "joint states received per second over the window"),
    Threshold("max_joint_state_gap_ms", "max", "ms", "largest interval between two received joint states"),
    Threshold("max_state_to_command_latency_ms", "max", "ms",
              "p99 of joint-state stamp -> first command received after the state"),
    Threshold("max_period_error_p99_us", "max", "µs", "controller's p99 loop period error, worst status window"),
    Threshold("max_missed_ticks_per_s", "max", "/s", "controller ticks longer than 2 periods, per second of window"),
    Threshold("max_command_gap_ms", "max", "ms", "largest interval between two received commands"),
    Threshold("min_run_share", "min", "", "share of status reports with the controller in RUN/SHADOW (0..1)"),
    Threshold("max_swap_latency_ms", "max", "ms", "p99 of policy stamp -> first command of that policy"),
    Threshold("max_hold_reaction_s", "max", "s", "last joint state -> first HOLD command (fault test)"),
)


def load_thresholds(path: str | Path) -> dict:
    """The thresholds of the config's warpd_hil_check entry, or WarpdError saying what is wrong."""
    params = read_params_file(path)
    names = [n for n in (ENTRY, "/" + ENTRY) if n in params]
    example = "\n".join(f"    {t.key}: ..." for t in THRESHOLDS)
    if not names:
        raise WarpdError(f"config file {path} has no {ENTRY} entry with the hil-check thresholds",
                         f"add (see config/hil.yaml):\n{ENTRY}:\n  ros__parameters:\n{example}")
    if len(names) > 1:
        raise WarpdError(f"config file {path} has both {ENTRY} and /{ENTRY} entries; keep one")
    return check_thresholds(params[names[0]], path)


def check_thresholds(entry: dict, path: str | Path = "(none)") -> dict:
    """{key: float} of one warpd_hil_check entry's ros__parameters; every key known, present, a number >= 0."""
    known = {t.key for t in THRESHOLDS}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise WarpdError(f"config file {path}: {ENTRY} has unknown thresholds {unknown}",
                         f"known: {', '.join(t.key for t in THRESHOLDS)}")
    missing = [t.key for t in THRESHOLDS if t.key not in entry]
    if missing:
        raise WarpdError(f"config file {path}: {ENTRY} lacks thresholds {missing}",
                         "every check needs its threshold; see config/hil.yaml")
    values = {}
    for t in THRESHOLDS:
        value = entry[t.key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise WarpdError(f"config file {path}: {ENTRY}.{t.key} ({t.description}) must be a number >= 0, "
                             f"got {value!r}")
        if t.key == "min_run_share" and value > 1:
            raise WarpdError(f"config file {path}: {ENTRY}.min_run_share is a share, 0..1; got {value!r}")
        values[t.key] = float(value)
    return values
