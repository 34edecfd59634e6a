"""The launch files, checked without `launch`/`launch_ros` (they have no PyPI wheels): they are
valid Python, start only executables CMakeLists.txt installs, and build the same nodes,
parameters and remappings as `warpd bringup` — by running each launch file in a subprocess where a
small stand-in for the launch API records what it is asked to start."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from warpd_ros.bringup import plan
from warpd_core.errors import WarpdError
from warpd_ros.graph import KINDS, NODES

LAUNCH_FILES = {kind: REPO / "launch" / f"{kind}.launch.py" for kind in KINDS}

# Stand-ins for the parts of the launch API the launch files use; the script prints what the
# launch description would start, as JSON.
FAKE_LAUNCH = r'''
import json, sys, types

def module(name, **attrs):
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod

class LaunchDescription:
    def __init__(self, entities=()):
        self.entities = list(entities)

class DeclareLaunchArgument:
    def __init__(self, name, default_value=None, description=""):
        self.name, self.default_value, self.description = name, default_value, description

class OpaqueFunction:
    def __init__(self, function, args=None, kwargs=None):
        self.function, self.args, self.kwargs = function, args or [], kwargs or {}

class LaunchConfiguration:
    def __init__(self, variable_name, default=None):
        self.variable_name = variable_name
    def perform(self, context):
        return context.launch_configurations[self.variable_name]

class Node:
    def __init__(self, **kwargs):
        self.kwargs = kwargs

class Context:
    def __init__(self, configurations):
        self.launch_configurations = configurations

share = sys.argv[2]
module("launch", LaunchDescription=LaunchDescription)
module("launch.actions", DeclareLaunchArgument=DeclareLaunchArgument, OpaqueFunction=OpaqueFunction)
module("launch.substitutions", LaunchConfiguration=LaunchConfiguration)
module("launch_ros")
module("launch_ros.actions", Node=Node)
module("ament_index_python")
module("ament_index_python.packages", get_package_share_directory=lambda package: share + "/" + package)

namespace = {"__name__": "launch_file", "__file__": sys.argv[1]}
exec(compile(open(sys.argv[1]).read(), sys.argv[1], "exec"), namespace)
description = namespace["generate_launch_description"]()
arguments = {e.name: e.default_value for e in description.entities if isinstance(e, DeclareLaunchArgument)}
configurations = dict(arguments)
if len(sys.argv) > 3 and sys.argv[3]:
    configurations["config"] = sys.argv[3]
if len(sys.argv) > 4:
    configurations["namespace"] = sys.argv[4]
for extra in sys.argv[5:]:
    name, _, value = extra.partition("=")
    configurations[name] = value
context = Context(configurations)
nodes = []
for entity in description.entities:
    if isinstance(entity, OpaqueFunction):
        produced = entity.function(context, *entity.args, **entity.kwargs)
    else:
        produced = [entity]
    nodes += [e.kwargs for e in produced or [] if isinstance(e, Node)]
print(json.dumps({"arguments": arguments, "nodes": nodes}))
'''


def _launch(kind, share, config=None, namespace=None, **arguments):
    argv = [sys.executable, "-c", FAKE_LAUNCH, str(LAUNCH_FILES[kind]), str(share), str(config or ""),
            namespace or "", *(f"{k}={v}" for k, v in arguments.items())]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _installed_programs():
    text = (REPO / "CMakeLists.txt").read_text()
    programs = set()
    for match in re.finditer(r"install\(PROGRAMS\s+([^)]*?)\s+DESTINATION\s+lib/\$\{PROJECT_NAME\}\)", text):
        programs |= {os.path.basename(p) for p in match.group(1).split()}
    return programs


def _script_module(executable):
    """The node module a script runs: scripts call run_node_executable(NODE), which runs NODES[NODE].module."""
    match = re.search(r'^raise SystemExit\(run_node_executable\("(\w+)"\)\)$',
                      (REPO / "scripts" / executable).read_text(), re.M)
    assert match, f"scripts/{executable} does not run a warpd_ros node"
    return NODES[match.group(1)].module


def _bringup_view(kind, config):
    view = []
    for child in plan(kind, config):
        argv = child.argv
        remaps = [argv[i + 1] for i, a in enumerate(argv) if a == "-r" and not argv[i + 1].startswith("__node:=")]
        assert argv[1:3] == ["-m", "warpd_ros.nodes"], argv  # the node entry: stop signals caught first
        view.append({"name": child.name, "module": NODES[argv[3]].module,
                     "node_name": next(argv[i + 1] for i, a in enumerate(argv) if a == "-r")[len("__node:="):],
                     "params_file": argv[argv.index("--params-file") + 1],
                     "remappings": [r.split(":=") for r in remaps]})
    return view


def _launch_view(nodes):
    return [{"name": n["name"], "module": _script_module(n["executable"]), "node_name": n["name"],
             "params_file": n["parameters"][0], "remappings": [list(r) for r in n["remappings"]]} for n in nodes]


@pytest.mark.parametrize("kind", KINDS)
def test_launch_file_is_valid_python(kind):
    source = LAUNCH_FILES[kind].read_text()
    compile(source, str(LAUNCH_FILES[kind]), "exec")
    assert "def generate_launch_description" in source and "load_graph" in source


def test_node_executables_are_installed_scripts_of_the_right_module():
    installed = _installed_programs()
    assert "warpd" in installed
    for name, info in NODES.items():
        assert info.executable in installed, f"CMakeLists.txt does not install scripts/{info.executable}"
        script = REPO / "scripts" / info.executable
        assert os.access(script, os.X_OK), f"{script} is not executable"
        # python3 from PATH (a venv on a ROS install), stop signals blocked until the node records them
        assert script.read_text().startswith("#!/usr/bin/env -S --block-signal=INT,TERM python3\n")
        assert _script_module(info.executable) == info.module


@pytest.mark.parametrize("kind", KINDS)
def test_launch_file_starts_what_bringup_starts(kind, tmp_path):
    share = tmp_path / "share"
    (share / "warpd_ros" / "config").mkdir(parents=True)
    installed_config = share / "warpd_ros" / "config" / f"{kind}.yaml"
    installed_config.write_text((REPO / "config" / f"{kind}.yaml").read_text())
    result = _launch(kind, share)  # the default: the installed share/warpd_ros/config file
    assert result["arguments"] == {"config": str(installed_config), "namespace": "", "autostart": ""}
    nodes = result["nodes"]
    installed = _installed_programs()
    assert all(n["package"] == "warpd_ros" and n["executable"] in installed for n in nodes)
    assert all(n["parameters"] == [str(installed_config)] for n in nodes)
    assert _launch_view(nodes) == _bringup_view(kind, installed_config)
    assert [n["name"] for n in nodes] == {"sim": ["warpd_sim", "warpd_controller", "warpd_planner"],
                                          "hil": ["warpd_driver_emulator", "warpd_controller", "warpd_planner"]}[kind]


def test_launch_and_bringup_agree_on_a_custom_config_with_remappings(tmp_path):
    data = yaml.safe_load((REPO / "config" / "hil.yaml").read_text())
    data["warpd_graph"]["ros__parameters"] = {
        "nodes": ["warpd_planner", "warpd_controller"],  # a real robot: no emulator
        "remappings": {"joint_states": "/arm/joint_states", "joint_commands": "/arm_velocity_controller/commands",
                       "task_features": "warpd/task_features"},  # the default name: no remapping
    }
    config = tmp_path / "robot.yaml"
    config.write_text(yaml.safe_dump(data))
    nodes = _launch("hil", tmp_path / "share", config)["nodes"]
    assert [n["name"] for n in nodes] == ["warpd_controller", "warpd_planner"]
    expected = [["joint_states", "/arm/joint_states"],
                ["forward_velocity_controller/commands", "/arm_velocity_controller/commands"]]
    assert all(sorted(map(list, n["remappings"])) == sorted(expected) for n in nodes)
    assert _launch_view(nodes) == _bringup_view("hil", config)


def test_namespace_argument_puts_every_node_under_it_with_its_parameters(tmp_path):
    """`namespace:=r1` and `warpd bringup --namespace r1` start the same nodes in /r1, each reading a params
    file whose entries are keyed /r1/<node>: rcl would not apply a bare `warpd_controller:` entry there."""
    config = REPO / "config" / "sim.yaml"
    nodes = _launch("sim", tmp_path / "share", config, "r1")["nodes"]
    children = plan("sim", config, namespace="r1")
    assert [n["namespace"] for n in nodes] == ["/r1"] * 3
    assert all(c.argv[c.argv.index("__ns:=/r1") - 1] == "-r" for c in children)
    original = yaml.safe_load(config.read_text())
    for params_file in [n["parameters"][0] for n in nodes] + [c.argv[c.argv.index("--params-file") + 1]
                                                              for c in children]:
        rekeyed = yaml.safe_load(Path(params_file).read_text())
        for name in ("warpd_sim", "warpd_controller", "warpd_planner"):
            assert rekeyed[f"/r1/{name}"] == original[name]
    assert plan("sim", config, namespace="")[0].argv == plan("sim", config)[0].argv  # none: unchanged


def test_autostart_argument_reaches_the_controller_only(tmp_path):
    config = REPO / "config" / "hil.yaml"
    default = {n["name"]: n["parameters"] for n in _launch("hil", tmp_path / "share", config)["nodes"]}
    assert all(p == [str(config)] for p in default.values())  # unset: the config decides
    off = {n["name"]: n["parameters"] for n in _launch("hil", tmp_path / "share", config, autostart="false")["nodes"]}
    assert off["warpd_controller"] == [str(config), {"autostart": False}]
    assert off["warpd_planner"] == [str(config)] and off["warpd_driver_emulator"] == [str(config)]


@pytest.mark.parametrize("bad", ["1robot", "r 1", "r1/../x", "r-1"])
def test_a_bad_namespace_is_refused_with_the_rule(bad):
    with pytest.raises(WarpdError, match="not a valid ROS namespace"):
        plan("sim", REPO / "config" / "sim.yaml", namespace=bad)


def test_launch_file_reports_a_bad_config(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("warpd_graph:\n  nodes: [warpd_sim]\n")
    argv = [sys.executable, "-c", FAKE_LAUNCH, str(LAUNCH_FILES["sim"]), str(tmp_path), str(config)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode != 0
    assert "WarpdError" in proc.stderr and "ros__parameters" in proc.stderr
