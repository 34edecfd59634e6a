"""`warpd import-bag` beyond joint states and velocity arrays, on bags written with rosbags: goals
(with a fixed transform and through /tf_static), extra features, episode events, the kinematic
success rule, labels files, JointTrajectory position commands, resampling, derived velocities and
idle splitting; every value checked against what was written, every bad input against its error.
Ends with the shipped config/train_from_bag.yaml training on an imported dataset."""
import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin

from warpd_core.data import Dataset
from warpd_core.data.rosbag_import import episode_event_typestore
from warpd_ros.cli import main as warpd_main
from warpd_ros.testing import bags
from warpd_ros.testing.from_bag import TINY_TRAINING

pytestmark = [pytest.mark.once]  # distro-independent (torch, data, rosbags): run in the first pass only

JOINTS = ("shoulder", "elbow", "wrist")
T0 = 1_700_000_000 * 10**9
MS = 1_000_000
TS = episode_event_typestore()
SLOPE = np.array([0.5, -0.25, 1.0])  # rad/s: joint positions are OFFSET + SLOPE * t
OFFSET = np.array([0.1, 0.2, -0.3])
STATE_T = [10 * k for k in range(1, 201)]  # ms: 100 Hz, 0.01 .. 2.00 s
COMMAND_T = [5 + 20 * k for k in range(99)]  # ms: 50 Hz, 0.005 .. 1.965 s
EPISODE_EVENT, BOOL = "warpd_ros/msg/EpisodeEvent", "std_msgs/msg/Bool"


def m(msgtype, **fields):
    return TS.types[msgtype](**fields)


def header(t_ms, frame=""):
    t = T0 + t_ms * MS
    return m("std_msgs/msg/Header", stamp=m("builtin_interfaces/msg/Time", sec=t // 10**9, nanosec=t % 10**9),
             frame_id=frame)


def q_at(t_ms):
    return OFFSET + SLOPE * t_ms / 1000


def joint_states(velocity="given", times=STATE_T):
    """(t_ms, topic, msg): positions on the line q_at, velocities its slope (or empty, or NaN)."""
    out = []
    for t in times:
        v = {"given": SLOPE, "empty": np.zeros(0), "nan": np.full(3, np.nan)}[velocity]
        out.append((t, "/joint_states", m("sensor_msgs/msg/JointState", header=header(t), name=list(JOINTS),
                                          position=q_at(t), velocity=np.array(v, float), effort=np.zeros(0))))
    return out


def command_value(k):
    return np.array([k, -k, 0.5 * k], float) / 64  # float32-exact


def commands(times=COMMAND_T, value=command_value, topic="/forward_velocity_controller/commands"):
    layout = m("std_msgs/msg/MultiArrayLayout", dim=[], data_offset=0)
    return [(t, topic, m("std_msgs/msg/Float64MultiArray", layout=layout, data=value(k)))
            for k, t in enumerate(times)]


def pose(t, xyz, frame):
    p = m("geometry_msgs/msg/Point", x=xyz[0], y=xyz[1], z=xyz[2])
    q = m("geometry_msgs/msg/Quaternion", x=0.0, y=0.0, z=0.0, w=1.0)
    return (t, "/goal_pose", m("geometry_msgs/msg/PoseStamped", header=header(t, frame),
                               pose=m("geometry_msgs/msg/Pose", position=p, orientation=q)))


def point(t, xyz, frame="world"):
    p = m("geometry_msgs/msg/Point", x=xyz[0], y=xyz[1], z=xyz[2])
    return (t, "/goal_point", m("geometry_msgs/msg/PointStamped", header=header(t, frame), point=p))


def tf_static(*transforms):
    """transforms: (parent, child, xyz, quaternion xyzw), all in one TFMessage at t = 0."""
    out = []
    for parent, child, xyz, q in transforms:
        tr = m("geometry_msgs/msg/Transform", translation=m("geometry_msgs/msg/Vector3", x=xyz[0], y=xyz[1], z=xyz[2]),
               rotation=m("geometry_msgs/msg/Quaternion", x=q[0], y=q[1], z=q[2], w=q[3]))
        out.append(m("geometry_msgs/msg/TransformStamped", header=header(0, parent), child_frame_id=child,
                     transform=tr))
    return [(0, "/tf_static", m("tf2_msgs/msg/TFMessage", transforms=out))]


def event(t, kind, episode=0, mode="", seed=0):
    return (t, "/warpd/episode_events", m(EPISODE_EVENT, header=header(t), event=kind, episode=episode, seed=seed,
                                          task="reach_around", mode=mode, episode_time=t / 1000, distance=0.0,
                                          detail=""))


def write(path, messages, storage=StoragePlugin.SQLITE3):
    """`messages` at bag time T0 + t ms."""
    return bags.write_bag(path, [(T0 + t * MS, topic, msg) for t, topic, msg in messages], TS, storage)


def warpd(capsys, *args):
    status = warpd_main([*map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err


def imported(capsys, tmp_path, messages, *options, storage=StoragePlugin.SQLITE3):
    """(dataset, stdout) of importing a bag of `messages` with `options`; the import must succeed."""
    bag = write(tmp_path / "bag", messages, storage)
    status, out, err = warpd(capsys, "import-bag", bag, "--out", tmp_path / "ds", *options)
    assert status == 0, err
    return Dataset.open(tmp_path / "ds"), out


def latest_state_obs(t_ms):
    k = max(s for s in STATE_T if s <= t_ms)
    return np.concatenate([q_at(k), SLOPE])


# ---- goal ----------------------------------------------------------------------------------------

QUARTER_TURN_Z = (0.0, 0.0, np.sqrt(0.5), np.sqrt(0.5))  # 90 degrees about z: (x, y, z) -> (-y, x, z)


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP], ids=["sqlite3", "mcap"])
def test_goal_with_a_fixed_transform_is_latest_per_step(tmp_path, capsys, storage):
    goals = [pose(0, (0.1, 0.2, 0.3), "camera"), pose(1000, (0.4, 0.0, 0.0), "camera"), pose(1500, (5, 6, 7), "")]
    dataset, out = imported(capsys, tmp_path, joint_states() + commands() + goals, "--goal", "/goal_pose",
                            "--goal-transform", "1 2 3 " + " ".join(map(str, QUARTER_TURN_Z)), storage=storage)
    info = dataset.info
    assert info.obs_names[6:] == ("goal_x", "goal_y", "goal_z") and info.task_frame == "world"
    contract = info.robot_contract()
    assert contract.task_feature_names == ("goal_x", "goal_y", "goal_z") and contract.command_interface == "velocity"
    assert contract.joint_names == JOINTS and contract.control_rate_hz == 50.0
    assert "task features: goal_x, goal_y, goal_z (frame world)" in out
    obs, act, _ = dataset.episode(0)
    assert len(obs) == 98  # the command at 0.005 s precedes the first joint state
    for row, t in zip(obs, COMMAND_T[1:]):
        want_goal = (0.8, 2.1, 3.3) if t < 1000 else ((1.0, 2.4, 3.0) if t < 1500 else (5, 6, 7))
        assert np.allclose(row[6:], want_goal, atol=1e-6)
        assert np.allclose(row[:6], latest_state_obs(t), atol=1e-6)
    assert np.array_equal(act, np.array([command_value(k) for k in range(1, 99)], np.float32))


def test_goal_through_tf_static_chains_transforms_and_picks_features(tmp_path, capsys):
    static = tf_static(("world", "base", (1.0, 0.0, 0.5), (0, 0, 0, 1)), ("base", "camera", (0.0, 2.0, 0.0), QUARTER_TURN_Z),
                       ("world", "table", (9.0, 9.0, 9.0), (0, 0, 0, 1)))
    goals = [point(0, (0.1, 0.2, 0.3), "camera"), point(1000, (0.5, 0.5, 0.5), "world")]
    dataset, _ = imported(capsys, tmp_path, joint_states() + commands() + goals + static, "--goal", "/goal_point",
                          "--goal-features", "goal_y,goal_x")
    assert dataset.info.obs_names[6:] == ("goal_y", "goal_x")
    obs = dataset.episode(0)[0]
    # camera -> base: (-0.2, 0.1, 0.3) + (0, 2, 0); base -> world: + (1, 0, 0.5)
    assert np.allclose(obs[0, 6:], [2.1, 0.8], atol=1e-6) and np.allclose(obs[-1, 6:], [0.5, 0.5])
    # and into a frame below the root: goals in world seen from base
    dataset, _ = imported(capsys, tmp_path / "b", joint_states() + commands() + goals + static, "--goal",
                          "/goal_point", "--frame", "base")
    assert dataset.info.task_frame == "base"
    assert np.allclose(dataset.episode(0)[0][-1, 6:], [-0.5, 0.5, 0.0], atol=1e-6)
    status, _, err = warpd(capsys, "import-bag", tmp_path / "b" / "bag", "--out", tmp_path / "b" / "ds", "--goal",
                           "/goal_point")
    assert status == 2 and "its goals are in frame 'base', this import's in 'world'" in err


def test_features_topic_and_names(tmp_path, capsys):
    layout = m("std_msgs/msg/MultiArrayLayout", dim=[], data_offset=0)
    features = [(t, "/task", m("std_msgs/msg/Float64MultiArray", layout=layout, data=np.array([t / 4, 1.5])))
                for t in (0, 600)]
    dataset, _ = imported(capsys, tmp_path, joint_states() + commands() + features + [point(0, (1, 2, 3))],
                          "--goal", "/goal_point", "--goal-features", "goal_x", "--features", "/task",
                          "--feature-names", "phase,width")
    assert dataset.info.obs_names[6:] == ("goal_x", "phase", "width")
    obs = dataset.episode(0)[0]
    assert np.array_equal(obs[0, 6:], [1, 0, 1.5]) and np.array_equal(obs[-1, 6:], [1, 150, 1.5])
    status, _, err = warpd(capsys, "import-bag", tmp_path / "bag", "--out", tmp_path / "ds2", "--features", "/task",
                           "--feature-names", "a,b,c")
    assert status == 2 and "features on /task at t=0.000s have 2 values, expected 3 (a, b, c)" in err


# ---- episodes and success ------------------------------------------------------------------------

def test_episode_events_give_episodes_success_and_modes(tmp_path, capsys):
    events = [event(110, 0, 1, seed=11), event(610, 1, 1, "left", 11), event(810, 0, 2, seed=12),
              event(900, 3, 2, seed=12), event(1310, 2, 2, "", 12), event(1510, 0, 3, seed=13),
              event(1910, 1, 3, "right", 13)]
    dataset, out = imported(capsys, tmp_path, joint_states() + commands() + events,
                            "--episode-events", "/warpd/episode_events")
    records = dataset.episodes
    assert [r.length for r in records] == [25, 25, 20]  # commands at 0.125 .. 0.605, 0.825 .. 1.305, 1.525 .. 1.905
    assert [r.success for r in records] == [True, False, True]
    assert [r.mode for r in records] == ["left", None, "right"] and [r.seed for r in records] == [11, 12, 13]
    assert [r.metadata["ended_by"] for r in records] == ["SUCCESS", "TIMEOUT", "SUCCESS"]
    assert records[1].metadata["perturbations"] == 1 and records[0].metadata["episode"] == 1
    assert records[0].metadata["success_source"] == "episode_events"
    assert records[0].metadata["start_ns"] == T0 + 125 * MS and records[0].metadata["end_ns"] == T0 + 605 * MS
    assert "episodes: 2 successful, 1 failed, 0 unknown" in out
    assert np.array_equal(dataset.episode(0)[1][0], np.float32(command_value(6)))


def test_a_goal_set_as_an_episode_starts_labels_its_first_steps(tmp_path, capsys):
    """Episode 2 starts at 1.525 s and its goal arrives at 1.56 s: its first two steps take that goal, not
    episode 1's. Episode 1's goal changes at 0.7 s, 0.575 s into it: a change, so earlier steps keep A."""
    a, b, c = (0.1, 0.2, 0.3), (0.4, 0.5, 0.6), (0.7, 0.8, 0.9)
    goals = [point(0, a), point(700, b), point(1560, c)]
    events = [event(110, 0, 1), event(1310, 2, 1), event(1510, 0, 2)]
    dataset, _ = imported(capsys, tmp_path, joint_states() + commands() + goals + events, "--goal", "/goal_point",
                          "--episode-events", "/warpd/episode_events")
    first, second = dataset.episode(0)[0], dataset.episode(1)[0]
    times = [t for t in COMMAND_T if 110 <= t <= 1310]
    for row, t in zip(first, times):
        assert np.allclose(row[6:], a if t < 700 else b), t
    assert np.allclose(second[:, 6:], c)  # 1.525 and 1.545 s included


def test_hold_after_success_keeps_the_time_at_the_goal_up_to_the_next_event(tmp_path, capsys):
    """Episode 1 ends in SUCCESS at 0.61 s; the next RESET is at 0.81 s. Held 0.1 s: commands to 0.705 s
    (five more); held 1 s: cut before the RESET (to 0.805 s). A TIMEOUT keeps no extra time."""
    events = [event(110, 0, 1), event(610, 1, 1, "left"), event(810, 0, 2), event(1310, 2, 2), event(1510, 0, 3)]
    messages = joint_states() + commands() + events
    held, _ = imported(capsys, tmp_path / "a", messages, "--episode-events", "/warpd/episode_events",
                       "--hold-after-success", "0.1")
    long, _ = imported(capsys, tmp_path / "b", messages, "--episode-events", "/warpd/episode_events",
                       "--hold-after-success", "1")
    assert [r.length for r in held.episodes] == [30, 25, 23]  # success + 0.1 s; timeout as is; end of bag
    assert [r.length for r in long.episodes] == [35, 25, 23]  # 0.125 .. 0.805: stops before the next RESET
    assert held.episodes[0].success is True and held.episodes[0].metadata["end_ns"] == T0 + 705 * MS
    status, _, err = warpd(capsys, "import-bag", write(tmp_path / "c", messages), "--out", tmp_path / "ds",
                           "--hold-after-success", "0.3")
    assert status == 2 and "--hold-after-success needs --episode-events" in err


def test_bool_events_and_a_csv_labels_file(tmp_path, capsys):
    switch = [(t, "/recording", m(BOOL, data=on)) for t, on in ((100, True), (500, False), (1000, True))]
    labels = tmp_path / "labels.csv"
    labels.write_text("episode,success,mode\n0,false,\n1,yes,left\n")
    dataset, out = imported(capsys, tmp_path, joint_states() + commands() + switch,
                            "--episode-events", "/recording", "--labels", labels)
    records = dataset.episodes
    assert [r.length for r in records] == [20, 49]  # 0.105 .. 0.485; 1.005 .. 1.965 (open at the end of the bag)
    assert [(r.success, r.mode) for r in records] == [(False, None), (True, "left")]
    assert [r.metadata["ended_by"] for r in records] == ["stop", "end of bag"]
    assert all(r.metadata["success_source"] == "labels" for r in records)
    assert "episodes: 1 successful, 1 failed, 0 unknown" in out


def finger_xyz(q):
    """reach_around's finger body, by hand: links 0.25, 0.25, 0.15 m, hinges about z, at z = 0.30."""
    a, b, c = q[0], q[0] + q[1], q[0] + q[1] + q[2]
    return np.array([0.25 * np.cos(a) + 0.25 * np.cos(b) + 0.15 * np.cos(c),
                     0.25 * np.sin(a) + 0.25 * np.sin(b) + 0.15 * np.sin(c), 0.30])


def test_success_rule_by_forward_kinematics_before_labels(tmp_path, capsys):
    first = [t for t in COMMAND_T if t < 800]
    second = [t for t in COMMAND_T if t > 1200]  # a 0.44 s pause ... split at 0.4 s
    q_end_1, q_end_2 = (q_at(max(s for s in STATE_T if s <= times[-1])) for times in (first, second))
    goals = [point(0, finger_xyz(q_end_1) + [0.03, 0, 0]), point(1000, finger_xyz(q_end_2) + [0, 0.2, 0])]
    labels = tmp_path / "labels.yaml"
    labels.write_text("0: false\n1: {success: true, mode: around}\n")
    dataset, out = imported(capsys, tmp_path, joint_states() + commands(first + second) + goals,
                            "--goal", "/goal_point", "--split-gap", "0.4", "--success-rule", "finger:0.05",
                            "--robot-model", "warpd_core/assets/reach_around.xml", "--labels", labels)
    records = dataset.episodes
    assert [r.success for r in records] == [True, False] and [r.mode for r in records] == [None, None]
    assert [r.metadata["final_distance"] for r in records] == [pytest.approx(0.03), pytest.approx(0.2)]
    assert {r.metadata["success_source"] for r in records} == {"success_rule"}
    assert "episodes: 1 successful, 1 failed, 0 unknown" in out


def test_yaml_labels_without_events_or_rule_and_no_success_warning(tmp_path, capsys):
    labels = tmp_path / "labels.yaml"
    labels.write_text("1: {success: true, mode: left}\n")
    dataset, out = imported(capsys, tmp_path, joint_states() + commands(), "--labels", labels, "--max-episode-seconds", "1")
    assert [(r.success, r.mode) for r in dataset.episodes] == [(None, None), (True, "left")]
    assert "episodes: 1 successful, 0 failed, 1 unknown" in out
    bag = tmp_path / "bag"
    status, out, err = warpd(capsys, "import-bag", bag, "--out", tmp_path / "ds2")
    assert status == 0 and "episodes: 0 successful, 0 failed, 1 unknown" in out
    assert "warning: no episode is marked successful" in err and "will refuse this data" in err


# ---- commands, resampling, velocities, idle ------------------------------------------------------

def trajectory(t, names, positions=(), velocities=()):
    p = m("trajectory_msgs/msg/JointTrajectoryPoint", positions=np.array(positions, float),
          velocities=np.array(velocities, float), accelerations=np.zeros(0), effort=np.zeros(0),
          time_from_start=m("builtin_interfaces/msg/Duration", sec=0, nanosec=0))
    return (t, "/arm_controller/joint_trajectory", m("trajectory_msgs/msg/JointTrajectory", header=header(t),
                                                      joint_names=list(names), points=[p]))


def test_joint_trajectory_position_commands_reordered_by_name(tmp_path, capsys):
    names = ("wrist", "shoulder", "elbow")
    trajectories = [trajectory(t, names, [t / 1000, t / 500, t / 250], [9, 9, 9]) for t in (20, 40, 60)]
    dataset, _ = imported(capsys, tmp_path, joint_states() + trajectories, "--commands",
                          "/arm_controller/joint_trajectory", "--command-interface", "position")
    assert dataset.info.action_names == ("shoulder_pos", "elbow_pos", "wrist_pos")
    assert dataset.info.robot_contract().command_interface == "position"
    assert np.allclose(dataset.episode(0)[1], [[t / 500, t / 250, t / 1000] for t in (20, 40, 60)])
    status, _, err = warpd(capsys, "import-bag", tmp_path / "bag", "--out", tmp_path / "ds2", "--commands",
                           "/arm_controller/joint_trajectory")  # velocity interface: reads velocities
    assert status == 0, err
    assert np.array_equal(Dataset.open(tmp_path / "ds2").episode(0)[1], np.full((3, 3), 9, np.float32))


def test_joint_trajectory_errors(tmp_path, capsys):
    for name, messages, option, want in [
            ("empty", [trajectory(20, JOINTS, [1, 2, 3])], "velocity",
             "JointTrajectory on /arm_controller/joint_trajectory at t=0.010s has no velocities in its first point"),
            ("missing", [trajectory(20, ("shoulder", "elbow"), [1, 2])], "position",
             "commands no wrist")]:
        bag = write(tmp_path / name, joint_states(times=[10]) + messages)
        status, _, err = warpd(capsys, "import-bag", bag, "--out", tmp_path / f"ds_{name}", "--commands",
                               "/arm_controller/joint_trajectory", "--command-interface", option)
        assert status == 2 and want in err, err


def test_resampling_pairs_each_state_with_the_command_that_answered_it(tmp_path, capsys):
    dataset, out = imported(capsys, tmp_path, joint_states() + commands(), "--rate", "25")
    assert dataset.info.control_dt == 0.04 and "control rate 25 Hz -> control_dt 0.04 s" in out
    obs, act, record = dataset.episode(0)
    # from the state the first kept command (0.025 s) answered, 0.020 s, to the last command (1.965 s)
    step_t = [20 + 40 * k for k in range(49)]
    assert len(obs) == 49 and record.metadata["end_ns"] == T0 + step_t[-1] * MS
    want = np.array([np.concatenate([q_at(t), SLOPE]) for t in step_t])
    assert np.allclose(obs, want, atol=1e-6)
    # the command 5 ms after each state answered it: 0.025 s is command 1, 0.065 s command 3, ...
    assert np.array_equal(act, np.array([command_value(1 + 2 * k) for k in range(49)], np.float32))
    # off the states' grid, a step is interpolated and still takes the next command
    dataset, _ = imported(capsys, tmp_path / "b", joint_states() + commands(), "--rate", "40")
    obs, act, _ = dataset.episode(0)
    assert np.allclose(obs[1], np.concatenate([q_at(45), SLOPE]), atol=1e-6)  # halfway between 0.040 and 0.050
    assert np.array_equal(act[1], command_value(3).astype(np.float32))  # 0.065 s: within 25 ms after 0.045


@pytest.mark.parametrize("velocity", ["empty", "nan"])
def test_missing_velocities_are_derived_from_positions(tmp_path, capsys, velocity):
    dataset, out = imported(capsys, tmp_path, joint_states(velocity) + commands())
    assert "velocities missing in 200 of 200 joint states: derived from positions" in out
    assert "header stamps" in out
    obs = dataset.episode(0)[0]
    assert np.allclose(obs[:, 3:], SLOPE, atol=1e-6)  # the slope of a straight line, smoothed: exact
    assert np.allclose(obs[:, :3], [q_at(max(s for s in STATE_T if s <= t)) for t in COMMAND_T[1:]], atol=1e-6)


def test_nan_position_is_refused(tmp_path, capsys):
    states = joint_states()
    states[4][2].position[1] = np.nan
    bag = write(tmp_path / "bag", states + commands())
    status, _, err = warpd(capsys, "import-bag", bag, "--out", tmp_path / "ds")
    assert status == 2 and "JointState on /joint_states at t=0.045s has no valid position for elbow" in err


def test_split_idle_drops_long_idle_stretches(tmp_path, capsys):
    def servo(k):  # zeros for commands 30 .. 64 (0.605 .. 1.285 s); a short zero at 10
        return np.zeros(3) if 30 <= k < 65 or k == 10 else command_value(k)
    messages = joint_states() + commands(value=servo)
    dataset, _ = imported(capsys, tmp_path, messages)
    assert [r.length for r in dataset.episodes] == [98]
    dataset, _ = imported(capsys, tmp_path / "b", messages, "--split-idle", "0.5")
    assert [r.length for r in dataset.episodes] == [29, 34]  # commands 1 .. 29 and 65 .. 98
    assert dataset.episodes[1].metadata["start_ns"] == T0 + COMMAND_T[65] * MS
    dataset, _ = imported(capsys, tmp_path / "c", messages, "--split-idle", "0.8")  # 0.7 s idle: kept
    assert [r.length for r in dataset.episodes] == [98]


def test_split_idle_position_targets_unchanged(tmp_path, capsys):
    def targets(k):
        return command_value(min(k, 20)) if k < 60 else command_value(k)  # unchanged from 20 to 59
    dataset, _ = imported(capsys, tmp_path, joint_states() + commands(value=targets), "--split-idle", "0.5",
                          "--command-interface", "position")
    assert dataset.info.action_names == ("shoulder_pos", "elbow_pos", "wrist_pos")
    assert [r.length for r in dataset.episodes] == [20, 39]  # 1 .. 20 (20 is the target reached), 60 .. 98


# ---- bad input -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def goal_bag(tmp_path_factory):
    return write(tmp_path_factory.mktemp("bags") / "bag", joint_states() + commands() + [point(0, (1, 2, 3), "camera")])


@pytest.mark.parametrize("options, want", [
    (("--goal", "/goal_point"), "no transform from the goal's frame 'camera' to --frame 'world'"),
    (("--goal", "/goal_point", "--goal-transform", "0 0 0 0 0 0 0"), "has a zero quaternion"),
    (("--goal", "/goal_point", "--goal-features", "goal_x,speed"), "task features ['speed'] cannot be filled in"),
    (("--goal", "/goal_point", "--goal-transform", "0 0 0 0 0 0 1", "--success-rule", "finger:0.1"),
     "--success-rule needs --robot-model"),
    (("--success-rule", "finger:0.1", "--robot-model", "task:reach_around"), "--success-rule needs --goal"),
    (("--goal-transform", "0 0 0 0 0 0 1"), "--goal-transform needs --goal"),
    (("--episode-events", "/warpd/episode_events"), "topic /warpd/episode_events (--episode-events) is not in the bag"),
    (("--goal", "/joint_states"), "one topic is given for two different roles: --joint-states /joint_states, "
     "--commands /forward_velocity_controller/commands, --goal /joint_states"),
    (("--features", "/goal_point"), "topic /goal_point (--features) has type geometry_msgs/msg/PointStamped, which"),
    (("--joints", "shoulder,elbow"), "commands on /forward_velocity_controller/commands have 3 values but 2 joints"),
    (("--labels", "nope.yaml"), "labels file nope.yaml does not exist"),
])
def test_bad_input_errors(tmp_path, capsys, goal_bag, options, want):
    status, _, err = warpd(capsys, "import-bag", goal_bag, "--out", tmp_path / "ds", *options)
    assert status == 2 and want in err, err
    assert not (tmp_path / "ds").exists()


def test_bad_labels_and_tf_hint(tmp_path, capsys, goal_bag):
    status, _, err = warpd(capsys, "import-bag", goal_bag, "--out", tmp_path / "ds", "--goal", "/goal_point")
    assert "hint: pass --goal-transform 'x y z qx qy qz qw' (camera -> world), or record /tf_static; frames in " \
           "/tf_static: none (not in the bag)" in err
    for text, want in [("5: true\n", "labels episode(s) [5] but the bag has 1 episodes (0..0)"),
                       ("0: maybe\n", "bad entry 0: {'success': 'maybe'}"), ("- 1\n", "must map episode indices")]:
        (tmp_path / "l.yaml").write_text(text)
        status, _, err = warpd(capsys, "import-bag", goal_bag, "--out", tmp_path / "ds", "--labels", tmp_path / "l.yaml")
        assert status == 2 and want in err, err


def test_bad_option_values_are_usage_errors(tmp_path, capsys):
    for option, value, want in [("--goal-transform", "1 2 3", "expected 7 numbers"),
                                ("--success-rule", "finger", "expected LINK:RADIUS"),
                                ("--success-rule", "finger:-1", "expected LINK:RADIUS"),
                                ("--command-interface", "effort", "invalid choice: 'effort'"),
                                ("--rate", "0", "must be a finite number > 0")]:
        with pytest.raises(SystemExit):
            warpd(capsys, "import-bag", tmp_path, "--out", tmp_path / "ds", option, value)
        assert want in capsys.readouterr().err


# ---- the shipped training config -----------------------------------------------------------------



def test_train_from_bag_config_trains_on_an_import_and_carries_the_contract(tmp_path, capsys):
    from pathlib import Path

    from warpd_core.robot_contract import read_checkpoint_contract

    events = [event(110, 0, 1), event(610, 1, 1, "left"), event(810, 0, 2), event(1310, 2, 2),
              event(1510, 0, 3), event(1910, 1, 3, "right")]
    goals = [point(0, (0.4, 0.2, 0.08)), point(1400, (0.3, -0.2, 0.08))]
    imported(capsys, tmp_path, joint_states("empty") + commands() + events + goals, "--goal", "/goal_point",
             "--goal-features", "goal_x,goal_y", "--episode-events", "/warpd/episode_events", "--rate", "50")
    config = Path(__file__).resolve().parents[1] / "config" / "train_from_bag.yaml"
    sets = {"data.path": tmp_path / "ds", "output": tmp_path / "run", **TINY_TRAINING}
    status, out, err = warpd(capsys, "train", "--config", config, "--quiet",
                             *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")])
    assert status == 0, err
    checkpoint = Path(out.split("checkpoint: ")[1].split("\n")[0])
    contract = read_checkpoint_contract(checkpoint)
    assert contract.joint_names == JOINTS and contract.command_interface == "velocity"
    assert contract.control_rate_hz == 50.0 and contract.task_feature_names == ("goal_x", "goal_y")
    assert contract.task_frame == "world"


def test_training_before_importing_says_to_import_first(tmp_path, capsys):
    from pathlib import Path

    config = Path(__file__).resolve().parents[1] / "config" / "train_from_bag.yaml"
    status, out, err = warpd(capsys, "train", "--config", config, "--quiet", "--set", f"data.path={tmp_path / 'none'}",
                             "--set", f"output={tmp_path / 'run'}")
    assert status != 0 and "no dataset at" in err and "warpd import-bag" in err, (out, err)
