"""`warpd eval-bag`: success rate, mode shares and episode times of a deployment, from the
EpisodeEvent messages recorded in a bag (`ros2 bag record /warpd/episode_events ...`).

Scores what actually ran on the robot or the ROS sim, with the same event stream `warpd
import-bag --episode-events` reads; needs no ROS install. An episode counts once it ends with
SUCCESS or TIMEOUT; one that was reset or cut by the end of the recording before that is
"unfinished" and left out of the rates.
"""
from __future__ import annotations

import argparse
import json
import statistics

HELP = "success rate, modes and episode times from the EpisodeEvent messages in a rosbag2 recording"
DEFAULT_TOPIC = "/warpd/episode_events"
RESET, SUCCESS, TIMEOUT, PERTURBATION = 0, 1, 2, 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", help="rosbag2 directory (holds metadata.yaml; sqlite3 or mcap storage)")
    parser.add_argument("--episode-events", default=DEFAULT_TOPIC, metavar="TOPIC",
                        help=f"warpd_ros/msg/EpisodeEvent topic (default {DEFAULT_TOPIC})")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers to this JSON file")


def summarize(events) -> dict:
    """The numbers from (event, task, mode, episode_time) tuples in recording order. Episodes are paired
    by order, not by the `episode` counter, which starts again when the sim node restarts."""
    finished: list[tuple[bool, str, float]] = []
    running, unfinished, perturbations, tasks = False, 0, 0, set()
    for kind, task, mode, episode_time in events:
        tasks.add(task)
        if kind == RESET:
            unfinished += running  # reset before it ended
            running = True
        elif kind in (SUCCESS, TIMEOUT):
            finished.append((kind == SUCCESS, mode or "(none)", float(episode_time)))
            running = False
        elif kind == PERTURBATION:
            perturbations += 1
    unfinished += running  # cut by the end of the recording
    wins = [f for f in finished if f[0]]
    modes: dict[str, int] = {}
    for _, mode, _ in wins:
        modes[mode] = modes.get(mode, 0) + 1
    return {"episodes": len(finished), "successes": len(wins), "timeouts": len(finished) - len(wins),
            "unfinished": unfinished,
            "success_rate": len(wins) / len(finished) if finished else None,
            "modes": {m: {"count": n, "share": n / len(wins)} for m, n in sorted(modes.items(), key=lambda i: -i[1])},
            "episode_time_success": _times([f[2] for f in wins]),
            "episode_time_all": _times([f[2] for f in finished]),
            "perturbations": perturbations, "tasks": sorted(t for t in tasks if t)}


def _times(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"mean": statistics.fmean(values), "median": statistics.median(values), "min": min(values),
            "max": max(values)}


def read_events(bag, topic: str) -> list[tuple]:
    from tqdm import tqdm

    from warpd_core.data.rosbag_import import EPISODE_EVENT_TYPE, connections, open_bag

    with open_bag(bag) as reader:
        found = connections(reader, topic, (EPISODE_EVENT_TYPE,), "--episode-events")
        out = []
        for connection, _t, raw in tqdm(reader.messages(found), total=reader.topics[topic].msgcount,
                                        desc="read bag", unit="msg", disable=reader.topics[topic].msgcount < 10000):
            msg = reader.deserialize(raw, connection.msgtype)
            out.append((int(msg.event), msg.task, msg.mode, msg.episode_time))
    return out


def report(summary: dict) -> list[str]:
    lines = [f"episodes: {summary['episodes']} finished ({summary['successes']} success, {summary['timeouts']} "
             f"timeout), {summary['unfinished']} unfinished" + (f"; tasks: {', '.join(summary['tasks'])}"
                                                                 if summary["tasks"] else "")]
    if summary["success_rate"] is not None:
        lines.append(f"success rate: {100 * summary['success_rate']:.1f}% ({summary['successes']}/{summary['episodes']})")
    if summary["modes"]:
        lines.append("modes of successes: " + ", ".join(f"{m} {100 * v['share']:.1f}% ({v['count']})"
                                                        for m, v in summary["modes"].items()))
    for key, label in (("episode_time_success", "successes"), ("episode_time_all", "all finished")):
        if t := summary[key]:
            lines.append(f"episode time, {label}: mean {t['mean']:.2f} s, median {t['median']:.2f} s, "
                         f"min {t['min']:.2f} s, max {t['max']:.2f} s")
    if summary["perturbations"]:
        lines.append(f"perturbations: {summary['perturbations']}")
    return lines


def run(args) -> int:
    from pathlib import Path

    from warpd_core.errors import WarpdError

    summary = summarize(read_events(args.bag, args.episode_events))
    if not summary["episodes"] and not summary["unfinished"]:
        raise WarpdError(f"no episode on {args.episode_events} in {args.bag}",
                         "the topic holds no RESET, SUCCESS or TIMEOUT event")
    print(f"bag: {args.bag} ({args.episode_events})")
    for line in report(summary):
        print(line)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"bag": str(args.bag), "topic": args.episode_events, **summary}, indent=2))
        print(f"wrote {path}")
    return 0
