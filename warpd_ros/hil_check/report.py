"""The verdict: one PASS/FAIL/SKIP row per check from the measured numbers, printed as a table and
written as JSON. Pure: it sees only the dict `analysis.analyse` returns and the thresholds.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from warpd_ros.hil_check.stats import percentiles
from warpd_ros.hil_check.thresholds import THRESHOLDS

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


def _fmt(value: float, digits: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def judge(m: dict, th: dict) -> list[dict]:
    """One row per check: {"check", "measured", "threshold", "result", "why"}."""
    rows = []
    spec = {t.key: t for t in THRESHOLDS}

    def row(check, key, measured, value, why_fail, skip=None):
        t, limit = spec[key], th[key]
        unit = "" if not t.unit else (t.unit if t.unit.startswith("/") else " " + t.unit)
        threshold = f"{'>=' if t.bound == 'min' else '<='} {limit:g}{unit}"
        if skip:
            rows.append({"check": check, "measured": measured, "threshold": threshold, "result": SKIP, "why": skip})
            return
        ok = value is not None and not math.isnan(value) and (value >= limit if t.bound == "min" else value <= limit)
        rows.append({"check": check, "measured": measured, "threshold": threshold, "result": PASS if ok else FAIL,
                     "why": "" if ok else why_fail})

    js = m["joint_states"]
    row("joint-state rate", "min_joint_state_rate_hz", f"{js['rate_hz']:.1f} Hz ({js['count']} states)", js["rate_hz"],
        f"the driver delivers {js['rate_hz']:.1f} joint states/s, fewer than {th['min_joint_state_rate_hz']:g} "
        "(dropped messages, or a slow driver)" if js["count"] else "no joint states received")
    row("joint-state max gap", "max_joint_state_gap_ms", f"{js['max_gap_ms']:.1f} ms", js["max_gap_ms"],
        f"no joint state arrived for {js['max_gap_ms']:.1f} ms (at +{js['max_gap_at_s']:.1f} s)")

    lat, age = m["state_to_command_ms"], m["state_age_ms"]
    origin = "stamp (when the driver sampled it)" if m["stamps_usable"] else "arrival"
    row("state -> command latency p99", "max_state_to_command_latency_ms",
        f"{_fmt(lat['p99'])} ms (p50 {_fmt(lat['p50'])}, max {_fmt(lat['max'])}; state age p99 {_fmt(age['p99'])} ms)",
        lat["p99"],
        (f"from a joint state's {origin} to the first command after it arrived takes {_fmt(lat['p99'])} ms at p99; "
         f"of that, the state is already {_fmt(age['p99'])} ms old when it arrives (driver/link latency)")
        if lat["n"] else "no joint state was followed by a command"
        + (f" (the controller held: {'; '.join(m['hold_reasons'])})" if m.get("hold_reasons") else ""))

    no_status = "no ControllerStatus received (is warpd_controller running, with the same topic remappings?)"
    if m.get("status_reports"):
        pe = m["period_error_p99_us"]
        row("loop period error p99 (controller)", "max_period_error_p99_us",
            f"{pe['worst_window']:.0f} µs worst window (median {pe['median_window']:.0f}, max {pe['max_us']:.0f})",
            pe["worst_window"],
            f"the control loop jitters: p99 period error {pe['worst_window']:.0f} µs in its worst 100 ms window")
        row("missed ticks (controller)", "max_missed_ticks_per_s",
            f"{m['missed_ticks_per_s']:.1f}/s ({m['missed_ticks']} in {m['window_s']:.1f} s)", m["missed_ticks_per_s"],
            f"{m['missed_ticks']} control ticks came more than two periods late")
    else:
        row("loop period error p99 (controller)", "max_period_error_p99_us", "no status", None, no_status)
        row("missed ticks (controller)", "max_missed_ticks_per_s", "no status", None, no_status)
    cs, ce = m["commands"], m["command_interval_error_us"]
    row("command max gap (received here)", "max_command_gap_ms",
        f"{cs['max_gap_ms']:.1f} ms ({cs['rate_hz']:.0f} Hz; interval error p99 {_fmt(ce['p99'], 0)} µs)",
        cs["max_gap_ms"] if cs["count"] else None,
        f"no command arrived for {cs['max_gap_ms']:.1f} ms (at +{cs['max_gap_at_s']:.1f} s)" if cs["count"]
        else "no commands received")
    if m.get("status_reports"):
        reasons = m.get("hold_reasons") or []
        row("controller driving (RUN/SHADOW)", "min_run_share",
            f"{100 * m['run_share']:.0f}% of {m['status_reports']} reports", m["run_share"],
            "the controller held instead of driving" + (f" ({'; '.join(reasons)})" if reasons else ""))
    else:
        row("controller driving (RUN/SHADOW)", "min_run_share", "no status", None, no_status)

    sw = m["swaps"]
    stats = sw.get("stats_ms", percentiles([]))
    skip = sw.get("why")
    if not sw["policies_seen"]:
        skip = skip or "no policy was published during the window (is warpd_planner running?)"
    elif not sw["measured"] and sw.get("blind") and not sw["not_found"]:
        skip = skip or "not measured: hil-check itself stalled whenever a policy arrived; rerun"
    row("policy swap latency p99", "max_swap_latency_ms",
        f"{_fmt(stats['p99'])} ms (p50 {_fmt(stats['p50'])}, max {_fmt(stats['max'])}; "
        f"{sw['measured']}/{sw['policies_seen']} swaps seen)" if sw["policies_seen"] else "-",
        stats["p99"] if sw["measured"] else None,
        (f"new policies reached the commands {_fmt(stats['p99'])} ms after they were made (p99)" if sw["measured"]
         else f"none of the {sw['policies_seen']} policies published showed up in the commands "
              f"({sw['not_found']} not found, {sw['ambiguous']} indistinguishable from their predecessor)"), skip=skip)

    hold = m["hold"]
    if not hold.get("tested"):
        row("HOLD reaction (fault test)", "max_hold_reaction_s", "-", None, "", skip=hold.get("why", "not tested"))
    elif "reaction_s" not in hold:
        row("HOLD reaction (fault test)", "max_hold_reaction_s", "no HOLD", None, hold["why"])
    else:
        moving = hold["moving_after_hold"]
        row("HOLD reaction (fault test)", "max_hold_reaction_s",
            f"{hold['reaction_s']:.3f} s after the last state" + (f"; then {moving} moving commands" if moving else ""),
            hold["reaction_s"] if moving == 0 else math.inf,
            (f"after holding, the controller commanded motion again ({moving} commands other than the HOLD command) without joint states"
             if moving else f"the controller held {hold['reaction_s']:.3f} s after the last joint state "
                            "(its stale_timeout_s?)"))
    return rows


def failed(rows: list[dict]) -> bool:
    """Whether any check failed (hil-check then exits 1)."""
    return any(r["result"] == FAIL for r in rows)


def print_report(rows: list[dict], m: dict, out=print) -> None:
    headers = ("check", "measured", "threshold", "result")
    widths = [max(len(h), *(len(r[k]) for r in rows)) for h, k in zip(headers, ("check", "measured", "threshold",
                                                                               "result"))]
    line = "  ".join(f"{h:<{w}}" for h, w in zip(headers, widths))
    out("")
    out(line)
    out("  ".join("-" * w for w in widths))
    for r in rows:
        out("  ".join(f"{r[k]:<{w}}" for k, w in zip(("check", "measured", "threshold", "result"), widths)))
    out("")
    for note in m.get("notes", []):
        out(f"note: {note}")
    for r in rows:
        if r["result"] == SKIP:
            out(f"skipped: {r['check']}: {r['why']}")
    failed_rows = [r for r in rows if r["result"] == FAIL]
    if failed_rows:
        out(f"verdict: FAIL ({len(failed_rows)} of {len(rows)} checks failed)")
        for r in failed_rows:
            out(f"  {r['check']}: {r['measured']} (threshold {r['threshold']}): {r['why']}")
    else:
        out(f"verdict: PASS ({sum(r['result'] == PASS for r in rows)} checks passed"
            + (f", {sum(r['result'] == SKIP for r in rows)} skipped)" if any(r['result'] == SKIP for r in rows)
               else ")"))


def write_json(path: Path, config, thresholds: dict, measured: dict, rows: list[dict]) -> None:
    """The raw numbers beside the verdict, for a CI job or a later comparison."""
    Path(path).write_text(json.dumps({"config": str(config), "thresholds": thresholds, "measured": measured,
                                      "checks": rows}, indent=2, default=_json_default))


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
