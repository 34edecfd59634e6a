"""Statistics over receive times, pure numpy: percentiles, spans, the checker's own blind spans,
stream rate/gaps and state -> command latency.

Every time is an int64 array of nanoseconds on this machine's clock (the middleware's receive
time, or the publisher's send time or header stamp); nothing here knows about ROS.
"""
from __future__ import annotations

import math

import numpy as np

LATE_MS = 50.0  # a sample received this long after it was sent was delivered late (see blind_intervals)


def percentiles(values, qs=(50, 99)) -> dict:
    """{"n", "p50", "p99", "max"} (NaN when empty)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {"n": 0, **{f"p{q}": math.nan for q in qs}, "max": math.nan}
    return {"n": int(values.size), **{f"p{q}": float(v) for q, v in zip(qs, np.percentile(values, qs))},
            "max": float(values.max())}


def spans_mask(t: np.ndarray, spans) -> np.ndarray:
    """Which times fall inside any of the (start, end) spans."""
    mask = np.zeros(np.shape(t), dtype=bool)
    for a, b in spans:
        mask |= (t >= a) & (t <= b)
    return mask


def spans_overlap(starts: np.ndarray, ends: np.ndarray, spans) -> np.ndarray:
    """Which intervals [start, end] overlap any of the spans."""
    mask = np.zeros(np.shape(starts), dtype=bool)
    for a, b in spans:
        mask |= (starts <= b) & (ends >= a)
    return mask


def _merge(spans) -> list:
    merged = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def blind_intervals(streams, late_ns: float = LATE_MS * 1e6) -> list:
    """Spans in which hil-check itself received nothing in time: every stream was delivered late at once.

    `streams` are (sent ns, received ns) arrays, one pair per stream, from different publishers (the
    driver's joint states, the controller's commands). A sample received more than `late_ns` after
    it was sent spans [sent, received]; where the late spans of all streams overlap, the publishers
    kept sending but this process did not take the samples — a stall of the checker (or of the
    whole machine, which the controller's own timing shows). Those spans are left out of the
    stream statistics instead of being blamed on the driver or the controller.
    """
    common = None
    for sent, received in streams:
        late = (received - sent) > late_ns
        spans = _merge(zip(sent[late].tolist(), received[late].tolist()))
        if common is None:
            common = spans
        else:
            common = _merge([(max(a, c), min(b, d)) for a, b in common for c, d in spans if max(a, c) <= min(b, d)])
        if not common:
            return []
    return common or []


def stream_stats(recv_ns: np.ndarray, t0: int, t1: int, blind=()) -> dict:
    """Rate (Hz) and the largest gap (ms) of a stream of receive times within [t0, t1], blind spans left out."""
    seen = ~spans_mask(recv_ns, blind)
    inside = recv_ns[(recv_ns >= t0) & (recv_ns <= t1) & seen]
    # gaps at the window's edges count too: from the last sample before it, and up to its end (not to
    # the first sample after it: the fault test cuts the states right after the window)
    edges = np.concatenate([recv_ns[(recv_ns < t0) & seen][-1:], inside, [t1]]).astype(np.int64)
    gaps = np.diff(edges)
    gaps[spans_overlap(edges[:-1], edges[1:], blind)] = 0
    blind_s = sum(max(0, min(b, t1) - max(a, t0)) for a, b in blind) * 1e-9
    worst = int(np.argmax(gaps)) if gaps.size else 0
    return {"count": int(inside.size), "rate_hz": inside.size / max((t1 - t0) * 1e-9 - blind_s, 1e-9),
            "max_gap_ms": float(gaps[worst]) * 1e-6 if gaps.size else 0.0,
            "max_gap_at_s": float((edges[worst] - t0) * 1e-9) if gaps.size else 0.0}


def state_to_command(state_recv: np.ndarray, state_stamp: np.ndarray, cmd_recv: np.ndarray) -> dict:
    """For each state, the first command received after it: latency from the state's stamp and its age.

    Returns arrays in ms: `latency` (stamp -> that command), `age` (stamp -> state received) and
    `reaction` (state received -> that command), and `command_recv` (ns); states after the last
    command are left out.
    """
    idx = np.searchsorted(cmd_recv, state_recv, side="right")
    ok = idx < cmd_recv.size
    nxt = cmd_recv[idx[ok]]
    return {"latency": (nxt - state_stamp[ok]) * 1e-6, "age": (state_recv[ok] - state_stamp[ok]) * 1e-6,
            "reaction": (nxt - state_recv[ok]) * 1e-6, "command_recv": nxt}


def usable_stamps(state_recv: np.ndarray, state_stamp: np.ndarray) -> bool:
    """Joint-state stamps on this machine's clock: not zero, not in the future, not seconds old."""
    if state_stamp.size == 0:
        return False
    age = (state_recv - state_stamp) * 1e-9
    return bool(np.all(state_stamp > 0) and np.percentile(age, 1) > -0.002 and np.median(age) < 5.0)


def lost(seqs) -> int:
    """Samples published but not received here: gaps in the publication sequence numbers (None: unknown)."""
    seqs = np.array([s for s in seqs if s is not None], dtype=np.int64)
    if seqs.size < 2:
        return 0
    steps = np.diff(seqs)
    return int(steps[(steps > 1) & (steps < 10_000)].sum() - np.count_nonzero((steps > 1) & (steps < 10_000)))
