"""`warpd plot-demos` draws a collected dataset (and one of an unknown task) and reports its modes."""
import re

import numpy as np
import pytest

from warpd_core.data import DatasetInfo, DatasetWriter, EpisodeRecord
from warpd_ros.cli import main as warpd_main

pytestmark = pytest.mark.once  # plots of datasets: no ROS node involved


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    out = tmp_path_factory.mktemp("demos") / "reach_around"
    assert warpd_main(["collect", "--episodes", "8", "--out", str(out)]) == 0
    return out


def test_plot_of_collected_demos(demos, tmp_path, run_warpd):
    png = tmp_path / "demos.png"
    proc = run_warpd("plot-demos", str(demos), "--out", str(png), "--max-episodes", "6")
    assert proc.returncode == 0, proc.stderr
    assert "8 episodes of reach_around (6 drawn)" in proc.stdout and "success: 8/8 (100.0%)" in proc.stdout
    counts = dict(re.findall(r"(near|far) (\d+) \(", proc.stdout))
    assert set(counts) == {"near", "far"} and sum(map(int, counts.values())) == 8
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_unknown_task_is_drawn_in_its_first_two_observation_dims(tmp_path, capsys):
    info = DatasetInfo(("rosbag",), ("q_a", "q_b", "qd_a", "qd_b"), ("cmd_a", "cmd_b"), 0.01)
    with DatasetWriter(tmp_path / "ds", info) as writer:
        for i in range(3):
            path = np.cumsum(np.full((20, 4), 0.1 * (i + 1)), axis=0)
            writer.add_episode(path, np.zeros((20, 2)), EpisodeRecord(i, "rosbag", 20))
    assert warpd_main(["plot-demos", str(tmp_path / "ds"), "--out", str(tmp_path / "bag.png")]) == 0
    out = capsys.readouterr().out
    assert "success: unknown" in out and "modes:   (no mode) 3 (100.0%)" in out
    assert (tmp_path / "bag.png").stat().st_size > 10_000


def test_empty_or_missing_dataset(tmp_path, capsys):
    assert warpd_main(["plot-demos", str(tmp_path / "none")]) == 2
    assert "no warpd dataset at" in capsys.readouterr().err
    DatasetWriter(tmp_path / "empty", DatasetInfo(("reach_around",), ("a", "b"), ("u",), 0.02)).close()
    assert warpd_main(["plot-demos", str(tmp_path / "empty"), "--out", str(tmp_path / "x.png")]) == 2
    assert "holds no episodes yet" in capsys.readouterr().err
