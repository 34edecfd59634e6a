"""warpd_expert drives warpd_sim through ROS, both real processes over loopback: the scripted expert solves
episodes (the sim's SUCCESS events), each episode's mode drawn reproducibly from seed + episode; bad set-ups
are clear start-up errors."""
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO
from warpd_ros.testing.processes import start_module, stop_process
from warpd_ros.testing.standin import TestNode, running

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.once]  # the expert logic is distro-independent; the sim and bag-recorder tests run it on both distros

EXPERT_SEED = 11


class Watcher(TestNode):
    """Episode events and the commands the expert sends."""

    def __init__(self, context):
        from std_msgs.msg import Float64MultiArray

        from warpd_ros import topics
        from warpd_ros.msg import EpisodeEvent
        from warpd_ros.qos import COMMAND_QOS, EVENTS_QOS

        super().__init__(context, "test_expert_watcher")
        self.events, self.commands = [], []
        self.node.create_subscription(EpisodeEvent, topics.EPISODE_EVENTS, self.events.append, EVENTS_QOS)
        self.node.create_subscription(Float64MultiArray, topics.JOINT_COMMANDS,
                                      lambda m: self.commands.append((time.monotonic(), np.array(m.data))),
                                      COMMAND_QOS)

    def of(self, kind):
        return [e for e in self.events if e.event == kind]


def test_the_expert_solves_sim_episodes_through_ros(tmp_path):
    from warpd_core.tasks import make_task
    from warpd_ros.msg import EpisodeEvent

    expert_log, sim_log = tmp_path / "expert.log", tmp_path / "sim.log"
    expert = start_module("warpd_ros.nodes.expert", {"task": "reach_around", "seed": EXPERT_SEED},
                          log_path=expert_log, unbuffered=True)
    sim = start_module("warpd_ros.nodes.sim", {"seed": 0, "perturbation_level": 0.0, "reset_delay_s": 0.3,
                                               "tf_rate_hz": 0.0, "markers_rate_hz": 0.0},
                       log_path=sim_log, unbuffered=True)
    try:
        with running(Watcher) as watcher:
            ok = watcher.spin_until(lambda: len([e for e in watcher.of(EpisodeEvent.SUCCESS) if e.episode >= 1]) >= 2,
                                    50)
            assert ok, (sim_log.read_text(), expert_log.read_text(),
                        [(e.event, e.episode, e.distance) for e in watcher.events])
            rate_window = [t for t, _ in watcher.commands if t >= watcher.commands[-1][0] - 1.0]
    finally:
        expert_code, sim_code = stop_process(expert), stop_process(sim)
    assert expert_code == 0 and sim_code == 0, (expert_log.read_text(), sim_log.read_text())
    text = expert_log.read_text()
    assert "reach_around_scripted_v1 drives reach_around (3 joints ['shoulder', 'elbow', 'wrist']) at 50 Hz" in text
    assert "Traceback" not in text and "Traceback" not in sim_log.read_text()
    assert all(c.shape == (3,) and np.isfinite(c).all() for _, c in watcher.commands)
    assert len(rate_window) >= 20  # ~50 Hz while an episode runs (a 0.3 s pause between episodes sends none)
    # each episode's expert: the mode drawn from seed + episode (episode 0 may have started before the
    # expert heard of it, so the checks start at episode 1), and the sim saw the expert take that side
    task = make_task("reach_around")
    finished = [e for e in watcher.of(EpisodeEvent.SUCCESS) if e.episode >= 1]
    for event in finished:
        drawn = task.expert(None, np.random.default_rng(EXPERT_SEED + event.episode)).mode
        assert event.mode == drawn and event.distance < 0.03 and event.episode_time < 4.0, (event, drawn)
    resets = watcher.of(EpisodeEvent.RESET)
    assert [e.episode for e in resets] == sorted(e.episode for e in resets)


def test_with_hold_after_success_the_sim_keeps_stepping_and_the_expert_keeps_commanding(tmp_path):
    """What config/record_sim.yaml records: after each SUCCESS the arm is driven at the goal for
    hold_after_success_s before the reset_delay_s pause (import-bag --hold-after-success keeps that)."""
    from warpd_ros.msg import EpisodeEvent

    hold, pause = 0.5, 0.3
    expert_log, sim_log = tmp_path / "expert.log", tmp_path / "sim.log"
    expert = start_module("warpd_ros.nodes.expert", {"task": "reach_around", "after_success": "hold"},
                          log_path=expert_log, unbuffered=True)
    sim = start_module("warpd_ros.nodes.sim", {"hold_after_success_s": hold, "reset_delay_s": pause,
                                               "tf_rate_hz": 0.0, "markers_rate_hz": 0.0},
                       log_path=sim_log, unbuffered=True)
    try:
        with running(Watcher) as watcher:
            received = {}  # event -> monotonic receive time, per episode

            def note(msg):
                received.setdefault((msg.episode, msg.event), time.monotonic())
            watcher.node.create_subscription(EpisodeEvent, "warpd/episode_events", note, 50)
            ok = watcher.spin_until(lambda: (2, EpisodeEvent.RESET) in received, 40)
            assert ok, (sim_log.read_text(), expert_log.read_text())
    finally:
        stop_process(expert), stop_process(sim)
    success, reset = received[(1, EpisodeEvent.SUCCESS)], received[(2, EpisodeEvent.RESET)]
    assert reset - success >= 0.9 * (hold + pause), (reset - success, sim_log.read_text())
    held = [t for t, _ in watcher.commands if success < t < success + 0.9 * hold]
    assert len(held) >= 0.5 * 50 * hold, len(held)  # ~50 Hz of commands while the sim holds
    assert "episode 1 (seed 1): SUCCESS" in sim_log.read_text()


@pytest.mark.parametrize("args, message", [
    (["-p", "mode:=sideways"], "mode='sideways': one of near, far"),
    (["-p", "joint_names:=[a, b]"], "task 'reach_around' needs 3 distinct joints"),
    (["-p", "task:=reach_arund"], "unknown task 'reach_arund'"),
])
def test_bad_setups_are_clear_startup_errors(args, message):
    proc = subprocess.run([sys.executable, "-m", "warpd_ros.nodes.expert", "--ros-args", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
