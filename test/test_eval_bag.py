"""`warpd eval-bag`: the numbers of a deployment from the EpisodeEvent messages of a bag written with
rosbags; exact counts, shares and times, the JSON file, and the errors for a missing topic."""
import json

import pytest
from rosbags.rosbag2 import StoragePlugin

from warpd_core.data.rosbag_import import episode_event_typestore
from warpd_ros.cli import main as warpd_main
from warpd_ros.testing import bags

pytestmark = [pytest.mark.once]  # distro-independent (torch, data, rosbags): run in the first pass only

TS = episode_event_typestore()
T0 = 1_700_000_000 * 10**9
TOPIC = "/warpd/episode_events"


def event(kind, episode, mode="", time=0.0, task="reach_around"):
    header = TS.types["std_msgs/msg/Header"](stamp=TS.types["builtin_interfaces/msg/Time"](sec=0, nanosec=0),
                                            frame_id="")
    return TS.types["warpd_ros/msg/EpisodeEvent"](header=header, event=kind, episode=episode, seed=episode, task=task,
                                                  mode=mode, episode_time=time, distance=0.0, detail="")


# Five finished episodes (3 success: left, left, right; 2 timeouts); two unfinished: one reset before
# it ended, one cut by the end. The sim restarted after episode 2 (its counter starts again).
EVENTS = [event(0, 0), event(1, 0, "left", 2.0), event(0, 1), event(3, 1), event(2, 1, "", 8.0),
          event(0, 2), event(1, 2, "right", 3.0), event(0, 0), event(1, 0, "left", 4.0),
          event(0, 1), event(0, 2), event(2, 2, "left", 8.0), event(0, 3)]


def write_bag(path, messages, topic=TOPIC, storage=StoragePlugin.MCAP):
    """`messages` on `topic`, 0.1 s apart."""
    return bags.write_bag(path, [(T0 + k * 10**8, topic, msg) for k, msg in enumerate(messages)], TS, storage)


def warpd(capsys, *args):
    status = warpd_main(["eval-bag", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP], ids=["sqlite3", "mcap"])
def test_numbers_and_json(tmp_path, capsys, storage):
    bag = write_bag(tmp_path / "bag", EVENTS, storage=storage)
    status, out, err = warpd(capsys, bag, "--json", tmp_path / "out" / "eval.json")
    assert status == 0, err
    assert "episodes: 5 finished (3 success, 2 timeout), 2 unfinished; tasks: reach_around" in out
    assert "success rate: 60.0% (3/5)" in out
    assert "modes of successes: left 66.7% (2), right 33.3% (1)" in out
    assert "episode time, successes: mean 3.00 s, median 3.00 s, min 2.00 s, max 4.00 s" in out
    assert "episode time, all finished: mean 5.00 s, median 4.00 s, min 2.00 s, max 8.00 s" in out
    assert "perturbations: 1" in out
    data = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert data["success_rate"] == 0.6 and data["episodes"] == 5 and data["unfinished"] == 2
    assert data["modes"] == {"left": {"count": 2, "share": 2 / 3}, "right": {"count": 1, "share": 1 / 3}}
    assert data["episode_time_all"] == {"mean": 5.0, "median": 4.0, "min": 2.0, "max": 8.0}
    assert data["topic"] == TOPIC


def test_other_topic_name(tmp_path, capsys):
    bag = write_bag(tmp_path / "bag", EVENTS[:2], topic="/sim/events")
    status, out, err = warpd(capsys, bag, "--episode-events", "/sim/events")
    assert status == 0, err
    assert "success rate: 100.0% (1/1)" in out and "modes of successes: left 100.0% (1)" in out


def test_errors(tmp_path, capsys):
    bag = write_bag(tmp_path / "bag", EVENTS[:2], topic="/sim/events")
    status, _, err = warpd(capsys, bag)
    assert status == 2 and f"topic {TOPIC} (--episode-events) is not in the bag" in err
    assert "hint: topics in the bag: /sim/events [warpd_ros/msg/EpisodeEvent]" in err
    status, _, err = warpd(capsys, write_bag(tmp_path / "bag2", [event(3, 0)]))
    assert status == 2 and f"no episode on {TOPIC}" in err
    status, _, err = warpd(capsys, tmp_path / "nope")
    assert status == 2 and "nope does not exist" in err
