"""Writing benchmark results: one marked section per benchmark in BENCHMARKS.md, plus machine facts.

Each benchmark owns the text between its markers and rewrites only that, so benchmarks can be run
one at a time without losing the others' numbers.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
from importlib import metadata
from pathlib import Path

from warpd_ros.testing.benchmarks_md import BENCHMARKS_MD, HEADER, update_section  # noqa: F401  (the benches' writer)

REPO = Path(__file__).resolve().parents[1]
PLOTS = REPO / "docs" / "bench"

def machine_info() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for dist in ("numpy", "ros-rclpy", "torch"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"{now}; {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}; "
            + ", ".join(versions))


def pyplot():
    """matplotlib.pyplot on the headless Agg backend (benchmarks run without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def image_lines(alt: str, picture: Path | None) -> list[str]:
    """The Markdown lines that show `picture` (a file under docs/bench/) in BENCHMARKS.md; none
    without one."""
    return ["", f"![{alt}]({picture.relative_to(picture.parents[2]).as_posix()})"] if picture else []


def publish(section: str, out: Path | None, markdown, draw, picture_name: str | None = None) -> Path:
    """Write section `section`: into BENCHMARKS.md after `draw(path)` made its plot
    docs/bench/<picture_name or section>.png, or into `out` (no plot). `markdown(picture)` makes
    the text, picture None when none was drawn. Prints what it wrote."""
    picture = draw(PLOTS / f"{picture_name or section}.png") if out is None else None
    written = update_section(section, markdown(picture), **({"path": out} if out else {}))
    print(f"wrote {written}" + (f" and {picture}" if picture else ""))
    return written


def verdict(met: bool) -> str:
    """How a goal's outcome is written in BENCHMARKS.md (and searched for by tests)."""
    return "met" if met else "MISSED"
