"""`warpd import-bag` on real rosbag2 files written with rosbags: the dataset holds exactly the
recorded values, paired by the latest-joint-state rule, split at the command gap; bad bags and
bad options fail with errors that say what is there."""
import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin
from rosbags.typesys import Stores, get_typestore

from warpd_core.data import Dataset
from warpd_ros.cli import main as warpd_main
from warpd_ros.testing import bags

pytestmark = [pytest.mark.once]  # distro-independent (torch, data, rosbags): run in the first pass only

JOINTS = ("shoulder", "elbow", "wrist")
T0 = 1_700_000_000 * 10**9  # bag time of "t = 0", ns
MS = 1_000_000
STATE_NS = [T0 + 10 * MS * k for k in range(1, 300)]  # 100 Hz from t = 0.01 s to 2.99 s, also during the pause
EPISODE_1_NS = sorted([T0 - 15 * MS] + [T0 + 5 * MS + 20 * MS * k for k in range(40)] + [T0 + 500 * MS])
EPISODE_2_NS = [T0 + 2003 * MS + 20 * MS * k for k in range(30)]  # after a 1.2 s pause in the commands
COMMAND_NS = EPISODE_1_NS + EPISODE_2_NS
SKIPPED = 2  # the commands at -0.015 s and 0.005 s come before the first joint state
TYPESTORE = get_typestore(Stores.ROS2_KILTED)


def float32_exact(rng, shape):
    """Float64 values that survive the dataset's float32 storage unchanged."""
    return rng.standard_normal(shape).astype(np.float32).astype(np.float64)


class Recording:
    """The values a bag is written from, kept in canonical joint order for the expectations."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.positions = float32_exact(rng, (len(STATE_NS), 3))
        self.velocities = float32_exact(rng, (len(STATE_NS), 3))
        self.commands = float32_exact(rng, (len(COMMAND_NS), 3))
        self.name_orders = [tuple(rng.permutation(JOINTS)) for _ in STATE_NS]  # shuffled, per message

    def expected(self, joints=JOINTS):
        """(observations, actions) per episode, by the rule: latest joint state at or before the command."""
        columns = [JOINTS.index(j) for j in joints]
        episodes = []
        for times in (EPISODE_1_NS, EPISODE_2_NS):
            obs, act = [], []
            for t in times:
                earlier = [k for k, ts in enumerate(STATE_NS) if ts <= t]
                if earlier:
                    k = earlier[-1]
                    obs.append(np.concatenate([self.positions[k, columns], self.velocities[k, columns]]))
                    act.append(self.commands[COMMAND_NS.index(t)])
            episodes.append((np.array(obs, np.float32), np.array(act, np.float32)))
        return episodes


def write_bag(path, recording, storage=StoragePlugin.SQLITE3, bad_state_at=None, short_command_at=None,
              extra_topic=False, state_lag_ns=0):
    """Joint states stamped at STATE_NS and logged `state_lag_ns` later (their trip to the recorder)."""
    joint_state = TYPESTORE.types["sensor_msgs/msg/JointState"]
    command = TYPESTORE.types["std_msgs/msg/Float64MultiArray"]
    header, stamp = TYPESTORE.types["std_msgs/msg/Header"], TYPESTORE.types["builtin_interfaces/msg/Time"]
    layout = TYPESTORE.types["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
    messages = []
    for k, t in enumerate(STATE_NS):
        order = [JOINTS.index(j) for j in recording.name_orders[k]]
        velocity = recording.velocities[k, order][: 2 if k == bad_state_at else 3]
        msg = joint_state(header=header(stamp=stamp(sec=t // 10**9, nanosec=t % 10**9), frame_id=""),
                          name=list(recording.name_orders[k]), position=recording.positions[k, order],
                          velocity=velocity, effort=np.zeros(0))
        messages.append((t + state_lag_ns, "/joint_states", msg))
    for k, t in enumerate(COMMAND_NS):
        data = recording.commands[k][: 2 if k == short_command_at else 3]
        messages.append((t, "/forward_velocity_controller/commands", command(layout=layout, data=data)))
    if extra_topic:
        messages.append((T0, "/chatter", TYPESTORE.types["std_msgs/msg/String"](data="hello")))
    return bags.write_bag(path, messages, TYPESTORE, storage)


def warpd(capsys, *args):
    """Run the CLI in this process (fast); returns (exit status, stdout, stderr)."""
    status = warpd_main(["import-bag", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP], ids=["sqlite3", "mcap"])
def test_import_holds_exactly_the_recorded_values(tmp_path, run_warpd, storage):
    recording = Recording()
    bag = write_bag(tmp_path / "bag", recording, storage)
    proc = run_warpd("import-bag", str(bag), "--out", str(tmp_path / "ds"), "--joints", ",".join(JOINTS))
    assert proc.returncode == 0, proc.stderr
    assert "imported 2 episodes (70 steps)" in proc.stdout
    assert f"skipped {SKIPPED} commands received before the first joint state" in proc.stdout
    dataset = Dataset.open(tmp_path / "ds")
    assert dataset.info.obs_names == ("q_shoulder", "q_elbow", "q_wrist", "qd_shoulder", "qd_elbow", "qd_wrist")
    assert dataset.info.action_names == ("shoulder_vel", "elbow_vel", "wrist_vel")
    assert dataset.info.tasks == ("rosbag",) and dataset.info.control_dt == 0.02
    assert dataset.num_episodes == 2
    for (obs, act, record), (want_obs, want_act) in zip(dataset, recording.expected()):
        assert np.array_equal(obs, want_obs) and np.array_equal(act, want_act)
        assert record.task == "rosbag" and record.mode is None and record.success is None
        assert record.metadata["commands_topic"] == "/forward_velocity_controller/commands"
    assert dataset.episodes[1].metadata["start_ns"] == EPISODE_2_NS[0]


def test_commands_pair_with_the_state_stamped_before_them_even_when_it_reached_the_recorder_after(tmp_path, capsys):
    """Each joint state reaches the recorder 8 ms after its stamp, and each command 5 ms after the state it
    answers: by receive order a command would pair with the state before; by header stamps, with its own."""
    recording = Recording(seed=2)
    bag = write_bag(tmp_path / "bag", recording, StoragePlugin.MCAP, state_lag_ns=8 * MS)
    status, out, err = warpd(capsys, bag, "--out", tmp_path / "ds", "--joints", ",".join(JOINTS))
    assert status == 0, err
    assert "joint states placed at their header stamps (they reached the recorder 8.0 ms later" in out
    for (obs, act, _), (want_obs, want_act) in zip(Dataset.open(tmp_path / "ds"), recording.expected()):
        assert np.array_equal(obs, want_obs) and np.array_equal(act, want_act)


def test_default_joint_order_is_the_first_message_and_imports_append(tmp_path, capsys):
    recording = Recording(seed=1)
    bag = write_bag(tmp_path / "bag", recording)
    for _ in range(2):
        status, _, err = warpd(capsys, bag, "--out", tmp_path / "ds", "--task-name", "teleop")
        assert status == 0, err
    dataset = Dataset.open(tmp_path / "ds")
    first = recording.name_orders[0]
    assert dataset.info.obs_names[:3] == tuple(f"q_{j}" for j in first)
    assert [r.episode_index for r in dataset.episodes] == [0, 1, 2, 3]
    assert {r.task for r in dataset.episodes} == {"teleop"}
    want_obs, want_act = recording.expected(joints=first)[0]
    assert np.array_equal(dataset.episode(2)[0], want_obs) and np.array_equal(dataset.episode(2)[1], want_act)


def test_max_episode_seconds_cuts_long_episodes(tmp_path, capsys):
    bag = write_bag(tmp_path / "bag", Recording())
    status, out, err = warpd(capsys, bag, "--out", tmp_path / "ds", "--max-episode-seconds", "0.3")
    assert status == 0, err
    records = Dataset.open(tmp_path / "ds").episodes
    assert len(records) == 5 and sum(r.length for r in records) == 70  # 0.76 s of commands: 3 pieces, 0.58 s: 2
    assert all(r.metadata["end_ns"] - r.metadata["start_ns"] < 0.3e9 for r in records)


# ---- errors --------------------------------------------------------------------------------------

def test_missing_path_and_not_a_bag(tmp_path, capsys):
    status, _, err = warpd(capsys, tmp_path / "nope", "--out", tmp_path / "ds")
    assert status == 2 and "error: bag " in err and "nope does not exist" in err
    status, _, err = warpd(capsys, tmp_path, "--out", tmp_path / "ds")
    assert status == 2 and "is not a rosbag2 recording (no metadata.yaml in it)" in err
    assert "hint: pass the bag directory" in err


@pytest.fixture(scope="module")
def bag_with_chatter(tmp_path_factory):
    return write_bag(tmp_path_factory.mktemp("bags") / "bag", Recording(), extra_topic=True)


def test_topic_not_in_bag_lists_the_topics_there(tmp_path, capsys, bag_with_chatter):
    status, _, err = warpd(capsys, bag_with_chatter, "--out", tmp_path / "ds", "--commands", "/cmd_vel")
    assert status == 2 and "topic /cmd_vel (--commands) is not in the bag" in err
    assert ("hint: topics in the bag: /chatter [std_msgs/msg/String], /forward_velocity_controller/commands "
            "[std_msgs/msg/Float64MultiArray], /joint_states [sensor_msgs/msg/JointState]") in err


def test_topic_of_unsupported_type(tmp_path, capsys, bag_with_chatter):
    status, _, err = warpd(capsys, bag_with_chatter, "--out", tmp_path / "ds", "--commands", "/chatter")
    assert status == 2 and "topic /chatter (--commands) has type std_msgs/msg/String, which cannot be imported" in err
    assert "std_msgs/msg/Float64MultiArray or std_msgs/msg/Float32MultiArray" in err
    status, _, err = warpd(capsys, bag_with_chatter, "--out", tmp_path / "ds", "--joint-states", "/chatter")
    assert status == 2 and "--joint-states needs a topic of type sensor_msgs/msg/JointState" in err


def test_unknown_joints_say_which_are_missing_and_which_exist(tmp_path, capsys, bag_with_chatter):
    status, _, err = warpd(capsys, bag_with_chatter, "--out", tmp_path / "ds", "--joints", "shoulder,knee,ankle")
    assert status == 2 and "joint(s) knee, ankle not in the JointState messages on /joint_states" in err
    names = Recording().name_orders[0]
    assert f"joints there: {', '.join(names)}" in err
    assert not (tmp_path / "ds").exists()


def test_command_length_changing_mid_bag(tmp_path, capsys):
    bag = write_bag(tmp_path / "bag", Recording(), short_command_at=10)
    status, _, err = warpd(capsys, bag, "--out", tmp_path / "ds")
    assert status == 2 and "has 2 values; the earlier ones had 3" in err
    assert f"t={(COMMAND_NS[10] - COMMAND_NS[0]) / 1e9:.3f}s" in err


def test_joint_state_lengths_not_matching_names(tmp_path, capsys):
    bag = write_bag(tmp_path / "bag", Recording(), bad_state_at=5)
    status, _, err = warpd(capsys, bag, "--out", tmp_path / "ds")
    assert status == 2 and "has 3 names but 3 positions and 2 velocities" in err


def test_bad_options_are_usage_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        warpd(capsys, tmp_path, "--out", tmp_path / "ds", "--split-gap", "-1")
    assert "--split-gap: must be a finite number > 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        warpd(capsys, tmp_path, "--out", tmp_path / "ds", "--joints", "a,,b")
    assert "expected distinct comma-separated names" in capsys.readouterr().err


def test_the_command_period_is_measured_over_whole_episodes_and_snapped_to_a_nominal_rate():
    """Receive times jitter: a median of single intervals gave 19.9 ms for a 50 Hz sender on a loaded machine."""
    from warpd_core.data.rosbag_import import command_period

    rng = np.random.default_rng(0)

    def received(period_s, n, jitter_s=0.004):
        return (np.arange(n) * period_s + rng.uniform(0, jitter_s, n)) * 1e9

    assert command_period([received(0.02, 120), received(0.02, 110)]) == 0.02
    assert command_period([received(0.02 * 1.004, 400)]) == 0.02  # a sim a little slower than real time
    assert command_period([received(0.001, 2000, 0.0005)]) == 0.001
    steady = received(0.02, 200, 0.0)
    stray, dropped = np.sort(np.append(steady, steady[50] + 3e6)), np.delete(steady, [70, 120])
    assert command_period([stray]) == 0.02 and command_period([dropped]) == 0.02  # neither is a period
    assert command_period([received(1 / 7.3, 50, 0.0)]) == pytest.approx(1 / 7.3, abs=1e-6)  # 4% from 7 Hz: as is
    assert command_period([np.array([5.0])]) is None and command_period([]) is None
