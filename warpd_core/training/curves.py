"""Loss curves: appended to CSV as training runs (so a crash keeps them), drawn to PNG at the end."""
from __future__ import annotations

import csv
from pathlib import Path


class CurveLog:
    def __init__(self, path: Path, columns: list[str], resume_from_step: int = 0):
        self.path, self.columns = path, ["step", *columns]
        rows = []
        if path.exists() and resume_from_step > 0:  # keep the rows before the resume point
            with path.open() as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) < resume_from_step]
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, self.columns)
            writer.writeheader()
            writer.writerows(rows)

    def add(self, step: int, values: dict) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns).writerow({"step": step, **{k: f"{values[k]:.6g}" for k in self.columns[1:]}})


def plot_curves(csv_paths: dict[str, Path], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(csv_paths), figsize=(6 * len(csv_paths), 3.8))
    axes = axes if len(csv_paths) > 1 else [axes]
    for ax, (title, path) in zip(axes, csv_paths.items()):
        with path.open() as f:
            rows = list(csv.DictReader(f))
        for column in [c for c in (rows[0].keys() if rows else []) if c not in ("step", "seconds")]:
            values = [float(r[column]) for r in rows]
            ax.plot([int(r["step"]) for r in rows], values, label=column)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
