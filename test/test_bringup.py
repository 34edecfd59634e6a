"""The graph description, its config files, and `warpd bringup` starting and stopping real node
processes over loopback (no mocks)."""
import importlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import REPO
from warpd_core.errors import WarpdError
from warpd_ros.bringup import plan
from warpd_ros.graph import GRAPH_KEY, NODES, load_graph
from warpd_ros.testing.processes import stop_process

# ----------------------------------------------------------------------------- (a) graph and configs


def test_both_graphs_load_with_the_contract_defaults():
    sim = {s.name: s for s in load_graph("sim")}
    hil = {s.name: s for s in load_graph("hil")}
    assert list(sim) == ["warpd_sim", "warpd_controller", "warpd_planner"]
    assert list(hil) == ["warpd_driver_emulator", "warpd_controller", "warpd_planner"]
    for graph in (sim, hil):
        ctrl = graph["warpd_controller"].parameters
        assert (ctrl["control_rate_hz"], ctrl["stale_timeout_s"], ctrl["hold_mode"], ctrl["action_limit"]) == \
            (1000.0, 0.1, "zero_velocity", 1.5)
        plan_ = graph["warpd_planner"].parameters
        assert (plan_["checkpoint"], plan_["replan_period_s"], plan_["diffusion_steps"], plan_["valid_for_s"]) == \
            ("checkpoints/reach_around/checkpoint.safetensors", 0.32, 0, 1.0)
        assert all(s.remappings == {} for s in graph.values())  # the defaults are the ros2_control names
        assert all(s.module == NODES[s.name].module for s in graph.values())
    s = sim["warpd_sim"].parameters
    assert (s["task"], s["perturbation_spec"], s["perturbation_level"], s["real_time_factor"]) == \
        ("reach_around", "config/perturbations.yaml", 0.0, 1.0)
    emu = hil["warpd_driver_emulator"].parameters
    assert emu["rate_hz"] == 500.0 and emu["task_features"] == [0.40, 0.22]


@pytest.mark.parametrize("kind", ["sim", "hil"])
def test_config_parameters_are_declared_by_their_nodes(kind):
    """ROS silently ignores a value for an undeclared parameter: a typo in a config would go unnoticed."""
    missing = []
    for spec in load_graph(kind):
        if importlib.util.find_spec(spec.module) is None:  # a node module not written yet
            missing.append(spec.module)
            continue
        declared = {p.name for p in importlib.import_module(spec.module).PARAMS}
        assert set(spec.parameters) <= declared, f"{spec.name}: {sorted(set(spec.parameters) - declared)} undeclared"
    if missing:
        pytest.skip(f"not written yet: {missing}")


def test_unknown_kind_and_missing_config_are_clear_errors(tmp_path):
    with pytest.raises(WarpdError, match="unknown graph 'lab'.*sim, hil"):
        load_graph("lab")
    with pytest.raises(WarpdError, match="does not exist"):
        load_graph("sim", tmp_path / "nope.yaml")


@pytest.mark.parametrize("text, message", [
    ("warpd_sim: [unclosed\n", "not valid YAML"),
    ("", "must be a ROS 2 params file"),
    ("- a\n- b\n", "must be a ROS 2 params file"),
    ("warpd_graph:\n  nodes: [warpd_sim]\n", "ros__parameters"),  # rcl would refuse this file too
    ("warpd_sim:\n  ros__parameters: 3\n", "ros__parameters"),
    ("warpd_sim:\n  ros__parameters: {}\n  extra: 1\n", "beside ros__parameters"),
    ("warpd_simm:\n  ros__parameters: {task: x}\n", "'warpd_simm' is not a warpd_ros node"),
    (f"{GRAPH_KEY}:\n  ros__parameters: {{nodes: [warpd_driver_emulator]}}\n", "does not have"),
    (f"{GRAPH_KEY}:\n  ros__parameters: {{nodes: []}}\n", "non-empty list"),
    (f"{GRAPH_KEY}:\n  ros__parameters: {{nodes: [warpd_sim, warpd_sim]}}\n", "twice"),
    (f"{GRAPH_KEY}:\n  ros__parameters: {{remappings: {{joint_state: /x}}}}\n", "cannot remap 'joint_state'"),
    (f"{GRAPH_KEY}:\n  ros__parameters: {{remappings: {{joint_states: 'a b'}}}}\n", "must be a topic name"),
    (f"{GRAPH_KEY}:\n  ros__parameters: {{launch: 1}}\n", "unknown warpd_graph settings"),
])
def test_malformed_config_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "sim.yaml"
    path.write_text(text)
    with pytest.raises(WarpdError, match=re.escape(message)):
        load_graph("sim", path)


def test_remappings_and_node_choice_come_from_the_graph_entry(tmp_path):
    data = yaml.safe_load((REPO / "config" / "hil.yaml").read_text())
    data[GRAPH_KEY]["ros__parameters"] = {"nodes": ["warpd_planner", "warpd_controller"],
                                          "remappings": {"joint_states": "/arm/joint_states"}}
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(data))
    specs = load_graph("hil", path)
    assert [s.name for s in specs] == ["warpd_controller", "warpd_planner"]  # start order is fixed
    assert all(s.remappings == {"joint_states": "/arm/joint_states"} for s in specs)
    argv = plan("hil", path, [("warpd_planner", "diffusion_steps", "5")])[1].argv
    assert argv[:4] == [sys.executable, "-m", "warpd_ros.nodes", "warpd_planner"]
    assert argv[4:] == ["--ros-args", "-r", "__node:=warpd_planner", "--params-file", str(path.resolve()),
                        "-p", "diffusion_steps:=5", "-r", "joint_states:=/arm/joint_states"]


@pytest.mark.ros
@pytest.mark.parametrize("kind", ["sim", "hil"])
def test_rcl_accepts_the_config_files(kind):
    """The warpd_graph entry must not make rcl's params-file parser refuse the file."""
    script = ("import sys, rclpy\nrclpy.init(args=sys.argv)\n"
              "node = rclpy.create_node('warpd_controller', automatically_declare_parameters_from_overrides=True)\n"
              "print(node.get_parameter('control_rate_hz').value, node.get_parameter('hold_mode').value)\n")
    config = REPO / "config" / f"{kind}.yaml"
    proc = subprocess.run([sys.executable, "-c", script, "--ros-args", "--params-file", str(config)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1000.0", "zero_velocity"]


def test_cli_errors_and_dry_run(run_warpd, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("warpd_sim: {ros__parameters: [1]}\n")
    proc = run_warpd("bringup", "sim", "--config", str(bad), "--dry-run")
    assert proc.returncode == 2 and "warpd bringup: error: config file" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_warpd("bringup", "sim", "--set", "warpd_sim.task", "--dry-run")
    assert proc.returncode == 2 and "expected node.param=value" in proc.stderr
    proc = run_warpd("bringup", "sim", "--set", "warpd_driver_emulator.latency_s=0.1", "--dry-run")
    assert proc.returncode == 2 and "has no node 'warpd_driver_emulator'" in proc.stderr
    proc = run_warpd("bringup", "sim", "--dry-run", "--domain-id", "17", "--set", "warpd_sim.task=reach_around")
    assert proc.returncode == 0, proc.stderr
    assert "ROS_DOMAIN_ID=17, discovery LOCALHOST" in proc.stdout
    assert "-m warpd_ros.nodes warpd_sim --ros-args -r __node:=warpd_sim --params-file" in proc.stdout
    assert "-p task:=reach_around" in proc.stdout
    help_ = run_warpd("bringup", "--help")
    assert help_.returncode == 0 and "SIGINT" in help_.stdout and "--duration" in help_.stdout


# ----------------------------------------------------------------------------- (b) real processes


class BringupRun:
    """`warpd bringup ...` in its own session; every process it started is killed at the end."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, "-m", "warpd_ros.cli", "bringup", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"), start_new_session=True)
        self.output = ""

    def wait(self, timeout):
        self.output, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode

    def read_until(self, pattern, timeout):
        """Read output lines until one matches `pattern` (for signalling bringup mid-run)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output += line
            if re.search(pattern, line):
                return True
        return False

    def child_pids(self):
        return [int(p) for p in re.findall(r"started \w+ \(pid (\d+)\)", self.output)]

    def cleanup(self):
        pids = self.child_pids()
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        stop_process(self.proc, signal.SIGKILL, group=True)


@pytest.fixture
def bringup():
    runs = []

    def start(*args):
        runs.append(BringupRun(*args))
        return runs[-1]

    yield start
    for run in runs:
        run.cleanup()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead too (its parent has not reaped it yet)
        return f.read().split(") ")[-1][0] != "Z"


def _emulator_only(tmp_path):
    data = yaml.safe_load((REPO / "config" / "hil.yaml").read_text())
    data[GRAPH_KEY]["ros__parameters"]["nodes"] = ["warpd_driver_emulator"]
    path = tmp_path / "emulator.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.ros
@pytest.mark.slow
def test_bringup_runs_for_duration_and_stops_every_node(bringup, tmp_path):
    run = bringup("hil", "--config", str(_emulator_only(tmp_path)), "--duration", "3")
    assert run.wait(timeout=60) == 0, run.output
    assert re.search(r"^\[warpd_driver_emulator\] \[INFO\].*emulating 3 joints", run.output, re.M), run.output
    assert "duration over: stopping warpd_driver_emulator" in run.output
    assert "stopped cleanly (exit codes: warpd_driver_emulator 0)" in run.output
    pids = run.child_pids()
    assert len(pids) == 1 and not any(_alive(p) for p in pids)


@pytest.mark.ros
@pytest.mark.slow
def test_ctrl_c_and_sigterm_stop_the_graph_cleanly(bringup, tmp_path):
    for sig in (signal.SIGINT, signal.SIGTERM):
        run = bringup("hil", "--config", str(_emulator_only(tmp_path)))
        assert run.read_until(r"\[warpd_driver_emulator\] .*emulating", timeout=60), run.output
        run.proc.send_signal(sig)
        assert run.wait(timeout=30) == 0, run.output
        assert ("interrupted" if sig == signal.SIGINT else "SIGTERM") + ": stopping" in run.output
        assert not any(_alive(p) for p in run.child_pids())


@pytest.mark.ros
@pytest.mark.slow
def test_a_node_that_dies_stops_the_graph_and_is_named(bringup, tmp_path):
    run = bringup("hil", "--config", str(_emulator_only(tmp_path)), "--duration", "30",
                  "--set", "warpd_driver_emulator.initial_positions=[0.0]")
    assert run.wait(timeout=60) == 2, run.output
    assert "warpd_driver_emulator died (exit code 1); its last lines:" in run.output
    assert "initial_positions has 1 values for 3 joints" in run.output
    assert "error: node warpd_driver_emulator died with exit code 1" in run.output
    assert not any(_alive(p) for p in run.child_pids())


def _needs_node_modules():
    missing = [s.module for s in load_graph("sim") if importlib.util.find_spec(s.module) is None]
    if missing:
        pytest.skip(f"node modules not written yet: {missing}")
    if not (REPO / "checkpoints" / "reach_around" / "checkpoint.safetensors").exists():
        pytest.skip("no reach_around checkpoint yet")


@pytest.mark.ros
@pytest.mark.slow
def test_bringup_sim_runs_all_three_nodes_and_exits_cleanly(bringup):
    _needs_node_modules()
    run = bringup("sim", "--duration", "8")
    code = run.wait(timeout=90)
    assert code == 0, run.output
    for name in ("warpd_sim", "warpd_controller", "warpd_planner"):
        assert re.search(rf"^\[{name}\s*\] ", run.output, re.M), f"no output from {name}:\n{run.output}"
    assert "stopped cleanly" in run.output
    pids = run.child_pids()
    assert len(pids) == 3 and not any(_alive(p) for p in pids)


@pytest.mark.ros
@pytest.mark.slow
def test_bringup_sim_with_a_bad_task_names_the_node_that_died(bringup):
    _needs_node_modules()
    run = bringup("sim", "--duration", "30", "--set", "warpd_sim.task=nope")
    assert run.wait(timeout=90) == 2, run.output
    assert "warpd_sim died (exit code" in run.output
    assert "error: node warpd_sim died" in run.output
    assert not any(_alive(p) for p in run.child_pids())
