"""Evaluation sweeps: methods x tasks x perturbation levels x action horizons x seeds, to a tidy CSV.

One row per episode, appended and flushed the moment the episode ends, so an interrupted sweep
keeps every finished episode and a rerun of the same sweep runs only what is missing. A sweep
directory also records the settings its rows were made with (checkpoints by content hash, the
perturbation spec, diffusion steps); resuming with different ones is refused rather than
silently mixing two experiments in one table.

Methods that do not re-plan (the scripted expert) do not depend on the horizon: they run once per
(task, level, seed) and their rows have an empty horizon.
"""
from __future__ import annotations

import csv
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from warpd_core.errors import WarpdError
from warpd_core.eval.methods import Method
from warpd_core.eval.runner import EpisodeJob, EpisodeMetrics, iter_jobs
from warpd_core.perturb.spec import PerturbationSpec

CSV_NAME = "episodes.csv"
SETTINGS_NAME = "settings.json"
COLUMNS = ("method", "task", "level", "horizon", "seed", "success", "steps", "time_to_success", "mode",
           "min_distance", "final_distance", "smoothness", "replans")


@dataclass(frozen=True)
class SweepPlan:
    methods: tuple[Method, ...]
    tasks: tuple[str, ...]
    levels: tuple[float, ...]
    horizons: tuple[int, ...]
    seeds: tuple[int, ...]
    perturbation: PerturbationSpec
    steps: int | None = None  # diffusion steps; None = each checkpoint's own

    def jobs(self) -> list[tuple[tuple, EpisodeJob]]:
        """(row key, job) for every episode of the sweep."""
        out = []
        for method in self.methods:
            for task in self.tasks:
                factory = method.factory(task, self.steps)
                for level in self.levels:
                    spec = self.perturbation.at_level(level)
                    for horizon in (self.horizons if method.replans else (None,)):
                        for seed in self.seeds:
                            out.append(((method.name, task, _level_key(level), horizon, seed),
                                        EpisodeJob(task, factory, seed, spec, horizon)))
        return out

    def settings(self) -> dict:
        """What the rows depend on besides their key; compared when a sweep is resumed."""
        methods = {}
        for m in self.methods:
            methods[m.name] = {"kind": m.kind, "checkpoint": m.checkpoint,
                               "sha256": m.metadata().get("sha256") if m.checkpoint else None}
        spec = self.perturbation.to_dict()
        spec.pop("level")
        return {"methods": methods, "perturbation": spec, "steps": self.steps}


def _level_key(level) -> float:
    return round(float(level), 6)


def row_key(row: dict) -> tuple:
    return row["method"], row["task"], _level_key(row["level"]), row["horizon"], row["seed"]


def metrics_row(key: tuple, metrics: EpisodeMetrics) -> dict:
    method, task, level, horizon, seed = key
    return {"method": method, "task": task, "level": level, "horizon": horizon, "seed": seed,
            "success": bool(metrics.success), "steps": metrics.steps, "time_to_success": metrics.time_to_success,
            "mode": metrics.mode, "min_distance": metrics.min_distance, "final_distance": metrics.final_distance,
            "smoothness": metrics.action_smoothness, "replans": metrics.replans}


# ---- the CSV ----------------------------------------------------------------------------------
def _format(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


_PARSE: dict[str, Callable] = {
    "level": float, "horizon": lambda s: int(s) if s else None, "seed": int, "success": lambda s: s == "1",
    "steps": int, "time_to_success": lambda s: float(s) if s else math.nan, "mode": lambda s: s or None,
    "min_distance": float, "final_distance": float, "smoothness": float, "replans": int,
}


class EpisodeTable:
    """The sweep's CSV: read once, then appended to row by row (each row flushed to disk)."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: list[dict] = self._read() if path.exists() else []
        if not path.exists() or path.stat().st_size == 0:
            path.write_text(",".join(COLUMNS) + "\n")

    def _read(self) -> list[dict]:
        text = self.path.read_text()
        if text and not text.endswith("\n"):  # torn last line (killed mid-write): drop it, it reruns
            text = text[:text.rfind("\n") + 1]
            self.path.write_text(text)
        reader = csv.DictReader(text.splitlines())
        if text and tuple(reader.fieldnames or ()) != COLUMNS:
            raise WarpdError(f"{self.path} is not a `warpd eval` episode table (columns {reader.fieldnames})",
                             "point --out at a new directory")
        rows = []
        for number, raw in enumerate(reader, start=2):
            try:
                rows.append({c: _PARSE.get(c, str)(raw[c]) for c in COLUMNS})
            except (TypeError, ValueError):
                raise WarpdError(f"{self.path}, line {number}: unreadable row {raw}",
                                 "delete that line; the episode is rerun") from None
        return rows

    def append(self, row: dict) -> None:
        with self.path.open("a") as f:
            f.write(",".join(_format(row[c]) for c in COLUMNS) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.rows.append(row)


def _check_settings(path: Path, settings: dict) -> None:
    """Merge `settings` into the sweep's record, refusing any change to what existing rows used."""
    old = json.loads(path.read_text()) if path.exists() else {"methods": {}}
    settings = json.loads(json.dumps(settings))  # as it reads back (tuples become lists)
    for key in ("perturbation", "steps"):
        if key in old and old[key] != settings[key]:
            raise WarpdError(f"{path.parent} holds a sweep run with other {key} settings (see {path})",
                             "use a new --out directory to compare settings")
    for name, entry in settings["methods"].items():
        if name in old["methods"] and old["methods"][name] != entry:
            raise WarpdError(f"{path.parent}: method {name!r} was run there with {old['methods'][name]}, "
                             f"now {entry}", "use a new --out directory, or another method name (NAME=PATH)")
    merged = {**old, **settings, "methods": {**old["methods"], **settings["methods"]}}
    path.write_text(json.dumps(merged, indent=2) + "\n")


def run_sweep_to_csv(plan: SweepPlan, out: Path, workers: int = 1, progress: bool = True,
                     log: Callable[[str], None] = print) -> list[dict]:
    """Run what the CSV in `out` lacks of `plan`; returns the plan's rows (old and new)."""
    out.mkdir(parents=True, exist_ok=True)
    _check_settings(out / SETTINGS_NAME, plan.settings())
    table = EpisodeTable(out / CSV_NAME)
    planned = plan.jobs()
    done = {row_key(r) for r in table.rows}
    todo = [(key, job) for key, job in planned if key not in done]
    log(f"{len(planned)} episodes in the sweep: {len(planned) - len(todo)} already in {table.path}, "
        f"{len(todo)} to run on {workers} worker(s)")
    from tqdm import tqdm

    with tqdm(total=len(todo), unit="ep", desc="eval", disable=not progress or not todo, dynamic_ncols=True) as bar:
        for index, metrics in iter_jobs([job for _, job in todo], workers, ordered=False):
            table.append(metrics_row(todo[index][0], metrics))
            bar.update()
    keys = {key for key, _ in planned}
    return [r for r in table.rows if row_key(r) in keys]


# ---- summaries ----------------------------------------------------------------------------------
def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate: sane at 0%, 100% and small n, unlike p ± 1.96·se."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    return (0.0 if successes == 0 else lo), (1.0 if successes == n else hi)  # exact where rounding is not


def paired_difference(a: dict, b: dict) -> tuple[int, int, float]:
    """Two methods on the same seeds (seed -> success): (seeds only `a` solved, seeds only `b` solved,
    exact two-sided McNemar p). Only the seeds where they differ carry information; p says how often
    a split at least this uneven comes from a fair coin: is a success gap more than seed noise?"""
    seeds = a.keys() & b.keys()
    a_only = sum(1 for s in seeds if a[s] and not b[s])
    b_only = sum(1 for s in seeds if b[s] and not a[s])
    n, k = a_only + b_only, min(a_only, b_only)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0
    return a_only, b_only, p


def success_by(rows: Iterable[dict], *columns: str) -> dict[tuple, tuple[int, int]]:
    """(values of `columns`) -> (successes, episodes)."""
    counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        c = counts[tuple(r[k] for k in columns)]
        c[0] += bool(r["success"])
        c[1] += 1
    return {k: (s, n) for k, (s, n) in counts.items()}


def format_rate(successes: int, n: int) -> str:
    """'93 (85–97)': success % and its 95% Wilson interval, in percent."""
    if not n:
        return "–"
    lo, hi = wilson_interval(successes, n)
    return f"{100 * successes / n:.0f} ({100 * lo:.0f}–{100 * hi:.0f})"


def summary_table(rows: list[dict], method_order: Iterable[str] = ()) -> str:
    """Success % (95% Wilson CI) per task, method and horizon (rows) and perturbation level (columns)."""
    levels = sorted({r["level"] for r in rows})
    cells = success_by(rows, "task", "method", "horizon", "level")
    overall = success_by(rows, "task", "method", "horizon")
    order = {name: i for i, name in enumerate(method_order)}
    lines_keys = sorted(overall, key=lambda k: (k[0], order.get(k[1], len(order)), k[1], k[2] or 0))
    header = ["task", "method", "K"] + [f"level {lv:g}" for lv in levels] + ["all levels"]
    table = [header]
    for task, method, horizon in lines_keys:
        table.append([task, method, "-" if horizon is None else str(horizon)]
                     + [format_rate(*cells.get((task, method, horizon, lv), (0, 0))) for lv in levels]
                     + [format_rate(*overall[(task, method, horizon)])])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            for row in table]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


def demo_mode_counts(dataset_path: str | Path) -> dict[str, int]:
    """Mode -> successful demonstrations of a dataset: what a policy's mode shares are held against."""
    from warpd_core.data.reader import Dataset
    from warpd_core.data.stats import mode_counts

    return mode_counts([r for r in Dataset.open(dataset_path).episodes if r.success])
