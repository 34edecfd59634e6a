"""Success rate and mode shares of a set of episode records, as collect and plot-demos print them.

Mode shares are the point of a WARPD dataset (the policy must learn every way of solving the
task), so they are reported with counts and percentages, episodes with no mode included.
"""
from __future__ import annotations

from collections import Counter

from warpd_core.data.schema import EpisodeRecord

NO_MODE = "(no mode)"


def mode_label(mode: str | None) -> str:
    return mode if mode is not None else NO_MODE


def mode_counts(records: list[EpisodeRecord]) -> dict[str, int]:
    """Mode label -> episodes, most frequent first; episodes without a mode counted under NO_MODE."""
    counts = Counter(mode_label(r.mode) for r in records)
    return dict(sorted(counts.items(), key=lambda item: (item[0] == NO_MODE, -item[1], item[0])))


def success_line(records: list[EpisodeRecord]) -> str:
    known = [r.success for r in records if r.success is not None]
    if not known:
        return "success: unknown (no episode has a success flag)"
    text = f"success: {sum(known)}/{len(known)} ({_percent(sum(known), len(known))})"
    return text + (f"; {len(records) - len(known)} episodes without a flag" if len(known) < len(records) else "")


def modes_line(records: list[EpisodeRecord]) -> str:
    parts = [f"{mode} {n} ({_percent(n, len(records))})" for mode, n in mode_counts(records).items()]
    return "modes:   " + (", ".join(parts) if parts else "none (no episodes)")


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "n/a"
