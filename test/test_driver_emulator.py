"""warpd_driver_emulator in its own process, observed from this one over loopback DDS (no mocks):
state rate, the joint model, latency, drops, bad commands, task features, live parameters."""
import signal
import subprocess
import time

import numpy as np
import pytest

from warpd_ros.testing.processes import start_module, stop_process
from warpd_ros.testing.standin import TestNode

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.once]  # the emulator's joint model over plain pub/sub and parameters: distro-independent

WARM_UP_S = 2.0  # multi-process start-ups sometimes stall a subscriber once in the first seconds


@pytest.fixture
def emulator():
    """start(name, *ros_args) -> Popen of the emulator, its topics remapped under /test/<name>/."""
    procs = []

    def start(name, *ros_args):
        topics = {"/joint_states": f"/test/{name}/joint_states",
                  "/forward_velocity_controller/commands": f"/test/{name}/commands",
                  "/warpd/task_features": f"/test/{name}/task_features"}
        remaps = [a for src, dst in topics.items() for a in ("-r", f"{src}:={dst}")]
        proc = start_module("warpd_ros.nodes.driver_emulator", None, "-r", f"__node:=emu_{name}", *remaps, *ros_args,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(proc)
        return proc, topics

    yield start
    for proc in procs:
        stop_process(proc, timeout=5)


class Probe(TestNode):
    """A real rclpy node in the test process: records joint states, sends commands, sets parameters."""

    def __init__(self, context, topics, emulator_name):
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray

        from warpd_ros.qos import COMMAND_QOS, SENSOR_QOS, TASK_FEATURES_QOS

        super().__init__(context, "test_emulator_probe")
        self.emulator_name = emulator_name
        self.states = []  # (receive ns, stamp ns, q, qd, names)
        self.features = []
        self.node.create_subscription(JointState, topics["/joint_states"], self._on_state, SENSOR_QOS)
        self.node.create_subscription(Float64MultiArray, topics["/warpd/task_features"],
                                      lambda m: self.features.append(list(m.data)), TASK_FEATURES_QOS)
        self.commands = self.node.create_publisher(Float64MultiArray, topics["/forward_velocity_controller/commands"],
                                                   COMMAND_QOS)

    def _on_state(self, msg):
        from warpd_ros.conversions import stamp_to_ns

        self.states.append((time.time_ns(), stamp_to_ns(msg.header.stamp), np.array(msg.position),
                            np.array(msg.velocity), list(msg.name)))

    def spin(self, seconds, until=None):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.01)
            if until is not None and until():
                return True
        return False

    def wait_for_states(self, timeout=20.0):
        assert self.spin(timeout, until=lambda: len(self.states) > 10), "no joint states arrived"

    def window(self, seconds):
        """Joint states received during the next `seconds`."""
        start = len(self.states)
        self.spin(seconds)
        return self.states[start:]

    def send(self, values):
        from std_msgs.msg import Float64MultiArray

        self.commands.publish(Float64MultiArray(data=[float(v) for v in values]))

    def set(self, **values):
        results = [self.set_parameter(self.emulator_name, k, v) for k, v in values.items()]
        assert all(r.successful for r in results), [r.reason for r in results]


@pytest.fixture
def probe(rclpy_context):
    probes = []

    def make(topics, emulator_name):
        probes.append(Probe(rclpy_context, topics, emulator_name))
        return probes[-1]

    yield make
    for p in probes:
        p.close()


def test_states_at_rate_hz_and_drop_rate_half_drops_about_half(emulator, probe):
    proc, topics = emulator("rate", "-p", "rate_hz:=200.0")
    p = probe(topics, "emu_rate")
    p.wait_for_states()
    p.spin(WARM_UP_S)
    full = p.window(3.0)
    names = full[-1][4]
    assert names == ["shoulder", "elbow", "wrist"]
    rate = len(full) / 3.0
    assert 170 <= rate <= 215, f"{rate:.0f} Hz received for rate_hz 200"
    stamps = np.array([s[1] for s in full])
    assert np.all(np.diff(stamps) > 0), "states must leave in order"

    p.set(drop_rate=0.5)  # live
    p.spin(0.2)
    halved = p.window(3.0)
    ratio = len(halved) / len(full)
    assert 0.4 <= ratio <= 0.6, f"drop_rate 0.5 kept {ratio:.2f} of the messages"
    assert proc.poll() is None


def test_latency_delays_states_and_jitter_spreads_them(emulator, probe):
    proc, topics = emulator("latency", "-p", "rate_hz:=100.0")
    p = probe(topics, "emu_latency")
    p.wait_for_states()
    p.spin(WARM_UP_S)

    def ages_ms(states):
        return np.array([(recv - stamp) / 1e6 for recv, stamp, *_ in states])

    base = ages_ms(p.window(2.0))
    p.set(latency_s=0.05)  # live
    p.spin(0.3)
    late = ages_ms(p.window(2.0))
    assert np.median(base) < 15, f"no latency set, yet states are {np.median(base):.1f} ms old"
    assert 48 <= np.median(late) <= 70, f"latency_s 0.05 gave a median age of {np.median(late):.1f} ms"
    assert np.percentile(late, 2) >= 48, "no state may leave before latency_s"
    shift = np.median(late) - np.median(base)
    assert 42 <= shift <= 62, f"latency_s 0.05 added {shift:.1f} ms"

    p.set(jitter_s=0.02)
    p.spin(0.3)
    jittered = ages_ms(p.window(2.0))
    assert np.percentile(jittered, 2) >= 48
    assert np.percentile(jittered, 90) - np.percentile(jittered, 10) > 8, "jitter_s 0.02 should spread ages"
    assert proc.poll() is None


def test_commanded_velocity_integrates_into_position_and_bad_commands_are_ignored(emulator, probe):
    proc, topics = emulator("model", "-p", "velocity_tau_s:=0.05", "-p", "initial_positions:=[0.1, 0.2, 0.3]")
    p = probe(topics, "emu_model")
    p.wait_for_states()
    assert p.spin(5.0, until=lambda: p.features), "no task features arrived"
    assert p.features[-1] == pytest.approx([0.40, 0.22])
    p.spin(WARM_UP_S)
    at_rest = p.window(0.5)
    assert np.allclose(at_rest[-1][2], [0.1, 0.2, 0.3]) and np.allclose(at_rest[-1][3], 0.0)

    command = np.array([0.5, -0.25, 0.0])
    p.send(command)
    p.spin(0.5)  # 10 time constants: settled
    moving = p.window(1.0)
    t = np.array([s[1] for s in moving]) / 1e9
    q = np.array([s[2] for s in moving])
    qd = np.array([s[3] for s in moving])
    assert np.allclose(qd, command, atol=1e-3)
    slope = np.polyfit(t - t[0], q, 1)[0]
    assert np.allclose(slope, command, atol=0.02), slope

    p.send([1.0, 1.0])  # wrong length
    p.send([float("nan"), 0.0, 0.0])  # non-finite
    p.send([5.0, -5.0, 0.0])  # beyond velocity_limit 1.5: clipped
    p.spin(0.5)
    assert np.allclose(p.states[-1][3], [1.5, -1.5, 0.0], atol=1e-3)

    p.set(task_features=[0.3, 0.25])  # live: republished
    assert p.spin(3.0, until=lambda: p.features[-1] == pytest.approx([0.3, 0.25]))

    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, out
    assert "ignoring a command with 2 values for 3 joints" in out
    assert "ignoring a command with NaN/Inf" in out
    assert "Traceback" not in out


def test_a_position_interface_holds_its_start_and_tracks_targets(emulator, probe):
    proc, topics = emulator("position", "-p", "command_interface:=position", "-p", "velocity_tau_s:=0.0",
                            "-p", "initial_positions:=[0.1, 0.2, 0.3]", "-p", "velocity_limit:=1.0")
    p = probe(topics, "emu_position")
    p.wait_for_states()
    p.spin(WARM_UP_S)
    assert np.allclose(p.window(0.3)[-1][2], [0.1, 0.2, 0.3], atol=1e-9)  # no command yet: holds where it started
    p.send([0.5, 0.2, -0.3])
    p.spin(2.0)  # 0.6 rad at <= 1 rad/s, then the proportional loop settles
    assert np.allclose(p.states[-1][2], [0.5, 0.2, -0.3], atol=1e-3)
    assert np.abs(np.array([s[3] for s in p.states])).max() <= 1.0 + 1e-9
    # an operator puts the arm back for the next episode: ~/reset, at the (live) initial positions, at rest
    from std_srvs.srv import Trigger

    p.set(initial_positions=[0.0, -0.1, 0.2])
    client = p.node.create_client(Trigger, "/emu_position/reset")
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(Trigger.Request())
    assert p.spin(5.0, until=future.done) and future.result().success
    p.spin(0.5)
    assert np.allclose(p.states[-1][2], [0.0, -0.1, 0.2], atol=1e-9) and np.allclose(p.states[-1][3], 0.0)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "position commands on" in out, out


def test_bad_parameters_are_a_clear_error(emulator):
    proc, _ = emulator("bad", "-p", "initial_positions:=[0.0]")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "initial_positions has 1 values for 3 joints" in out and "Traceback" not in out
    proc, _ = emulator("bad2", "-p", "drop_rate:=1.5")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "drop_rate" in out and "Traceback" not in out
