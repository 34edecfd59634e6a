"""`warpd record-bag` (and BagRecorder) record a live graph into a rosbag2 in MCAP storage that reads back with
rosbags' AnyReader alone: the scripted expert (warpd_expert) drives warpd_sim while a real `warpd record-bag`
process records JointState, commands, the goal PoseStamped, the latched task features and EpisodeEvents;
after SIGINT the bag is complete and every message decodes to what the graph sent."""
import signal
import sys
import time

import numpy as np
import pytest
import yaml

from warpd_ros.testing.processes import start_module, start_node, stop_process
from warpd_ros.testing.standin import TestNode, running

pytestmark = [pytest.mark.ros, pytest.mark.slow]

TOPICS = {"/joint_states": "sensor_msgs/msg/JointState",
          "/forward_velocity_controller/commands": "std_msgs/msg/Float64MultiArray",
          "/warpd/goal_pose": "geometry_msgs/msg/PoseStamped",
          "/warpd/task_features": "std_msgs/msg/Float64MultiArray",
          "/warpd/episode_events": "warpd_ros/msg/EpisodeEvent"}
SIM_SEED = 40


class Events(TestNode):
    def __init__(self, context):
        from warpd_ros import topics
        from warpd_ros.msg import EpisodeEvent
        from warpd_ros.qos import EVENTS_QOS

        super().__init__(context, "test_bag_events")
        self.events = []
        self.node.create_subscription(EpisodeEvent, topics.EPISODE_EVENTS, self.events.append, EVENTS_QOS)


def read_bag(path):
    """{topic: [(log time ns, decoded message)]}, decoded from the definitions embedded in the bag only."""
    from rosbags.highlevel import AnyReader

    out = {}
    with AnyReader([path]) as reader:  # no typestore given: custom types must come from the bag itself
        types = {c.topic: c.msgtype for c in reader.connections}
        for connection, t, raw in reader.messages():
            out.setdefault(connection.topic, []).append((t, reader.deserialize(raw, connection.msgtype)))
    return types, out


def test_record_bag_records_the_expert_driving_the_sim(tmp_path):
    from warpd_core.tasks import make_task
    from warpd_ros.msg import EpisodeEvent

    logs = {name: tmp_path / f"{name}.log" for name in ("sim", "expert", "recorder")}
    bag = tmp_path / "bag"
    sim = start_module("warpd_ros.nodes.sim", {"seed": SIM_SEED, "perturbation_level": 0.0, "reset_delay_s": 0.3,
                                               "tf_rate_hz": 0.0, "markers_rate_hz": 0.0},
                       log_path=logs["sim"], unbuffered=True)
    expert = start_module("warpd_ros.nodes.expert", {"seed": 1}, log_path=logs["expert"], unbuffered=True)
    deadline = time.monotonic() + 30  # the sim runs (its first task features are latched) before the recorder starts
    while "simulating reach_around" not in logs["sim"].read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    recorder = start_node([sys.executable, "-m", "warpd_ros.cli", "record-bag", "--out", str(bag), "--wait", "30",
                           *[t.lstrip("/") for t in TOPICS]], logs["recorder"], unbuffered=True)
    procs = [recorder, expert, sim]
    try:
        deadline = time.monotonic() + 30
        while logs["recorder"].read_text().count("recording /") < len(TOPICS) and time.monotonic() < deadline:
            assert recorder.poll() is None, logs["recorder"].read_text()
            time.sleep(0.1)
        assert logs["recorder"].read_text().count("recording /") == len(TOPICS), logs["recorder"].read_text()
        with running(Events) as watcher:  # two whole episodes, reset to success, while the recorder records
            def successes_after_a_reset():
                resets = [e.episode for e in watcher.events if e.event == EpisodeEvent.RESET]
                return [e for e in watcher.events if e.event == EpisodeEvent.SUCCESS and e.episode in resets]

            assert watcher.spin_until(lambda: len(successes_after_a_reset()) >= 2, 40), \
                (logs["sim"].read_text(), logs["expert"].read_text())
            last = successes_after_a_reset()[-1].episode
            assert watcher.spin_until(lambda: any(e.event == EpisodeEvent.RESET and e.episode == last + 1
                                                  for e in watcher.events), 5)
            watcher.spin_for(0.5)  # the stop falls mid-episode, not on a reset
        assert stop_process(recorder, signal.SIGINT, timeout=20) == 0, logs["recorder"].read_text()
    finally:
        for proc in procs:
            stop_process(proc)
    output = logs["recorder"].read_text()
    assert "stopped by SIGINT" in output and "Traceback" not in output, output

    # a complete rosbag2: metadata with the MCAP storage, the offered QoS of each topic
    metadata = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert metadata["storage_identifier"] == "mcap" and metadata["version"] == 9
    qos = {t["topic_metadata"]["name"]: t["topic_metadata"]["offered_qos_profiles"]
           for t in metadata["topics_with_message_count"]}
    assert qos["/warpd/task_features"][0]["durability"] == "transient_local"
    assert qos["/joint_states"][0]["reliability"] == "best_effort"

    types, messages = read_bag(bag)
    assert types == TOPICS
    counts = {topic: len(messages.get(topic, [])) for topic in TOPICS}
    for topic, count in counts.items():  # the printed summary agrees with the bag
        assert any(line.split()[:2] == [topic, str(count)] for line in output.splitlines()), (topic, count, output)
    for topic, entries in messages.items():
        times = [t for t, _ in entries]
        assert times == sorted(times), topic

    # episode events: in order, RESET .. SUCCESS for whole episodes, with the sim's seeds
    events = [m for _, m in messages["/warpd/episode_events"]]
    assert all(e.task == "reach_around" for e in events)
    episodes = {}
    for e in events:
        episodes.setdefault(e.episode, []).append(e.event)
    whole = [k for k, kinds in episodes.items() if kinds[0] == EpisodeEvent.RESET and EpisodeEvent.SUCCESS in kinds]
    assert len(whole) >= 2, episodes
    for k in whole:
        assert episodes[k] == [EpisodeEvent.RESET, EpisodeEvent.SUCCESS], (k, episodes[k])
    assert [e.episode for e in events] == sorted(e.episode for e in events)

    # the goal pose logged with each RESET is the task's goal for that episode's seed
    task = make_task("reach_around")
    def stamp(msg):
        return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec

    goals = [g for _, g in messages["/warpd/goal_pose"]]
    features = messages["/warpd/task_features"]
    resets = [(t, e) for t, e in messages["/warpd/episode_events"] if e.event == EpisodeEvent.RESET]
    for t_reset, reset in resets:
        # published in the same sim step, right after the event (stamped just after it); the log times of
        # different topics may come in either order
        goal = min((g for g in goals if stamp(g) >= stamp(reset)), key=stamp)
        assert stamp(goal) - stamp(reset) < 0.1e9
        task.reset(int(reset.seed))
        p = goal.pose.position
        assert goal.header.frame_id == "world"
        assert np.allclose([p.x, p.y, p.z], task.goal_position(), atol=1e-6), (reset.seed, p)
        t_features, feature = min(features, key=lambda f: abs(f[0] - t_reset))
        assert abs(t_features - t_reset) < 0.2e9 and np.allclose(feature.data, task.goal_position()[:2], atol=1e-6)
    assert len(goals) >= len(resets) >= 2

    # the latched task features: the recorder also got the one the sim published before it subscribed
    assert len(features) == len(resets) + 1 and features[0][0] < resets[0][0], ([t for t, _ in features], resets)
    assert features[0][1].data.shape == (2,)

    # joint states at ~50 Hz with the task's joints; commands from the expert, 3 finite values each
    states = messages["/joint_states"]
    assert all(list(m.name) == ["shoulder", "elbow", "wrist"] and m.position.shape == (3,) for _, m in states)
    span = (states[-1][0] - states[0][0]) * 1e-9
    assert 35 <= len(states) / span <= 65, (len(states), span)
    commands = messages["/forward_velocity_controller/commands"]
    assert len(commands) >= 100 and all(m.data.shape == (3,) and np.isfinite(m.data).all() for _, m in commands)
    assert max(np.abs(m.data).max() for _, m in commands) > 0.1  # the expert moved the arm


class Publishers(TestNode):
    def __init__(self, context):
        from std_msgs.msg import String

        from warpd_ros.msg import EpisodeEvent
        from warpd_ros.qos import EVENTS_QOS, ROBOT_DESCRIPTION_QOS

        super().__init__(context, "test_bag_publishers")
        self.latched = self.node.create_publisher(String, "test_bag/latched", ROBOT_DESCRIPTION_QOS)
        self.events = self.node.create_publisher(EpisodeEvent, "test_bag/events", EVENTS_QOS)
        self.latched.publish(String(data="before the recorder"))


def test_bag_recorder_api_catches_latched_topics_and_gives_up_on_missing_ones(tmp_path):
    from warpd_ros.bag_recorder import BagRecorder
    from warpd_ros.msg import EpisodeEvent

    bag = tmp_path / "bag"
    with running(Publishers) as pubs:
        recorder = BagRecorder(pubs.node, bag, ["test_bag/latched", "/test_bag/events", "test_bag/never"],
                               log=lambda text: None)
        recorder.start()
        assert pubs.spin_until(lambda: len(recorder.topics) == 2, 10), recorder.missing
        for k in range(5):
            pubs.events.publish(EpisodeEvent(event=EpisodeEvent.SUCCESS, episode=k, task="t", detail=f"#{k}"))
        assert pubs.spin_until(lambda: recorder.counts()["/test_bag/events"] == 5
                               and recorder.counts()["/test_bag/latched"] == 1, 10), recorder.counts()
        assert recorder.give_up("not there") == ["/test_bag/never"]
        assert recorder.close() == {"/test_bag/latched": 1, "/test_bag/events": 5, "/test_bag/never": 0}
    assert "not recorded: not there" in recorder.summary()
    types, messages = read_bag(bag)
    assert types == {"/test_bag/latched": "std_msgs/msg/String", "/test_bag/events": "warpd_ros/msg/EpisodeEvent"}
    assert messages["/test_bag/latched"][0][1].data == "before the recorder"
    assert [m.detail for _, m in messages["/test_bag/events"]] == [f"#{k}" for k in range(5)]
    with running(Publishers) as pubs:
        from warpd_core.errors import WarpdError

        with pytest.raises(WarpdError, match="exists already"):
            BagRecorder(pubs.node, bag, ["x"]).start()


class TwoTopics(TestNode):
    def __init__(self, context):
        from std_msgs.msg import String

        super().__init__(context, "test_bag_two_topics")
        self.first = self.node.create_publisher(String, "test_bag/first", 10)
        self.second = self.node.create_publisher(String, "test_bag/second", 10)


def test_messages_are_logged_when_they_arrived_not_when_a_busy_recorder_got_to_them(tmp_path):
    """Sent 50 ms apart while the recorder's executor is busy: logged 50 ms apart, in the order sent. Logged
    when handled, both would get nearly the same time, in the executor's order of topics."""
    from std_msgs.msg import String

    from warpd_ros.bag_recorder import BagRecorder

    bag = tmp_path / "bag"
    with running(TwoTopics) as pubs:
        recorder = BagRecorder(pubs.node, bag, ["test_bag/second", "test_bag/first"], log=lambda text: None)
        recorder.start()
        pubs.first.publish(String(data="discovery"))
        pubs.second.publish(String(data="discovery"))
        assert pubs.spin_until(lambda: len(recorder.topics) == 2, 10), recorder.missing
        pubs.spin_for(0.3)
        before = recorder.counts()
        pubs.second.publish(String(data="sent first"))  # nothing spins the recorder's node until both are sent
        time.sleep(0.05)
        pubs.first.publish(String(data="sent 50 ms later"))
        time.sleep(0.05)
        assert pubs.spin_until(lambda: sum(recorder.counts().values()) == sum(before.values()) + 2, 10)
        recorder.close()
    _, messages = read_bag(bag)
    (t_first, first), (t_second, second) = messages["/test_bag/second"][-1], messages["/test_bag/first"][-1]
    assert (first.data, second.data) == ("sent first", "sent 50 ms later")
    assert 0.04e9 <= t_second - t_first <= 0.07e9, (t_second - t_first) / 1e6


def test_record_bag_fails_clearly_when_no_topic_appears(tmp_path, run_warpd):
    proc = run_warpd("record-bag", "--out", str(tmp_path / "bag"), "--wait", "1", "no_such_topic", timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "none of the topics /no_such_topic appeared within 1 s" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("stop", ["--duration", "SIGTERM"])
def test_record_bag_stops_at_its_duration_or_sigterm_with_the_bag_complete(tmp_path, stop):
    bag, log = tmp_path / "bag", tmp_path / "recorder.log"
    argv = [sys.executable, "-m", "warpd_ros.cli", "record-bag", "--out", str(bag), "test_bag/latched", "test_bag/events"]
    with running(Publishers) as pubs:
        pubs.spin_in_background()
        recorder = start_node(argv + (["--duration", "3"] if stop == "--duration" else []), log, unbuffered=True)
        try:
            deadline = time.monotonic() + 30
            while log.read_text().count("recording /") < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            if stop == "SIGTERM":
                time.sleep(0.3)
                code = stop_process(recorder, signal.SIGTERM, timeout=20)
            else:
                code = recorder.wait(timeout=30)
        finally:
            stop_process(recorder)
    output = log.read_text()
    assert code == 0 and ("stopped by SIGTERM" in output) == (stop == "SIGTERM"), output
    assert "Traceback" not in output
    types, messages = read_bag(bag)  # closed complete: metadata.yaml written, both connections, the latched message
    assert set(types) == {"/test_bag/latched", "/test_bag/events"} and len(messages["/test_bag/latched"]) == 1
    assert any(line.split()[:2] == ["/test_bag/events", "0"] for line in output.splitlines()), output
