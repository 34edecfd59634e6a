"""The node graphs of warpd_ros, described once: `launch/*.launch.py` and `warpd bringup` both
build from `load_graph`, so the two ways of starting a graph cannot drift apart.

Two graphs:

- ``sim``: warpd_sim (MuJoCo) + warpd_controller + warpd_planner, all defaults from
  ``config/sim.yaml``.
- ``hil``: warpd_controller + warpd_planner against a robot's ros2_control drivers, with
  warpd_driver_emulator standing in for the drivers by default; ``config/hil.yaml``.

Config format (decided here, documented in the YAML files too): ``config/<kind>.yaml`` is a
standard ROS 2 params file and nothing else — ``node_name: {ros__parameters: {...}}`` — so the
same file is passed unchanged as ``--params-file`` to every node (each node picks its own entry).
The graph's own settings live in one more entry of that same shape, under a name no node has::

    warpd_graph:
      ros__parameters:
        nodes: [warpd_driver_emulator, warpd_controller, warpd_planner]  # which nodes to start
        remappings:                                                      # topic -> new name
          joint_states: /my_robot/joint_states

rcl's params parser accepts it (it is just parameters of a node called ``warpd_graph``) and every
real node ignores it; a bare top-level key would make rcl refuse the whole file. ``nodes`` picks
from the nodes known below (default: all of the graph's nodes, in the order below); the keys of
``remappings`` are the names of the topic constants in `warpd_ros.topics`, lower-case
(``joint_states``, ``joint_commands``, ``task_features``, ...), and each remapping applies to every
node of the graph (a node that does not use the topic is unaffected). Remapping a topic to its
own default name is allowed and dropped. Which module/executable runs a node is code, not config:
it is fixed in ``NODES`` below.
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from warpd_core.errors import WarpdError
from warpd_ros import topics

KINDS = ("sim", "hil")
GRAPH_KEY = "warpd_graph"  # the params-file entry that holds the graph's own settings
HIL_CHECK_KEY = "warpd_hil_check"  # the entry with `warpd hil-check`'s thresholds (config/hil.yaml)
TOOL_KEYS = (GRAPH_KEY, HIL_CHECK_KEY)  # entries for warpd's own tools, not for nodes
PACKAGE = "warpd_ros"


@dataclass(frozen=True)
class NodeInfo:
    module: str  # `python -m <module>` runs it
    executable: str  # installed to lib/warpd_ros by CMakeLists.txt (scripts/<executable>)


# Every node the graphs can contain, in start order (state sources first, then consumers).
NODES = {
    "warpd_sim": NodeInfo("warpd_ros.nodes.sim", "warpd_sim"),
    "warpd_driver_emulator": NodeInfo("warpd_ros.nodes.driver_emulator", "warpd_driver_emulator"),
    "warpd_controller": NodeInfo("warpd_ros.nodes.controller", "warpd_controller"),
    "warpd_planner": NodeInfo("warpd_ros.nodes.planner", "warpd_planner"),
    "warpd_episodes": NodeInfo("warpd_ros.nodes.episodes", "warpd_episodes"),
    "warpd_expert": NodeInfo("warpd_ros.nodes.expert", "warpd_expert"),
}
DEFAULT_NODES = {
    "sim": ("warpd_sim", "warpd_controller", "warpd_planner"),
    "hil": ("warpd_driver_emulator", "warpd_controller", "warpd_planner"),
}
ALLOWED_NODES = {
    # warpd_expert instead of controller + planner: demonstrations to record (README, "Your own robot")
    "sim": ("warpd_sim", "warpd_controller", "warpd_planner", "warpd_expert"),
    # a real robot: drop warpd_driver_emulator from `nodes` and remap to the robot's topics
    "hil": ("warpd_driver_emulator", "warpd_controller", "warpd_planner", "warpd_episodes", "warpd_expert"),
}
# remapping keys in the YAML -> the default topic name they remap
TOPICS = {name.lower(): value for name, value in vars(topics).items()
          if name.isupper() and isinstance(value, str)}


@dataclass(frozen=True)
class NodeSpec:
    name: str
    module: str
    executable: str
    parameters: dict = field(default_factory=dict)  # this node's ros__parameters from the config
    remappings: dict = field(default_factory=dict)  # default topic name -> new name


def config_dir() -> Path:
    """The config/ directory: the source tree's (pip/editable installs), else share/warpd_ros/config."""
    source = Path(__file__).resolve().parents[1] / "config"
    if source.is_dir():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE)) / "config"
    except Exception:  # ament_index_python missing or warpd_ros not installed the ament way
        return source


def default_config(kind: str) -> Path:
    _check_kind(kind)
    return config_dir() / f"{kind}.yaml"


# The shipped sim graph of each task that has a checkpoint (the planner's checkpoint, the controller's
# limits and the sim's task belong together, so a task picks a whole file, not one parameter).
SIM_CONFIGS = {"reach_around": "sim.yaml", "panda_reach_around": "sim_panda.yaml"}


def sim_config_for_task(task: str) -> Path:
    """The shipped sim-graph config of `task` (`warpd demo --task`)."""
    if task not in SIM_CONFIGS:
        raise WarpdError(f"no shipped sim graph for task {task!r}",
                         f"tasks with one: {', '.join(SIM_CONFIGS)}; for another task write a params file "
                         "like config/sim.yaml and pass --config")
    return config_dir() / SIM_CONFIGS[task]


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise WarpdError(f"unknown graph {kind!r}; known graphs: {', '.join(KINDS)}")


def read_params_file(path: str | Path) -> dict:
    """Parse a ROS 2 params file into {node_name: ros__parameters}, or WarpdError saying what is wrong."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise WarpdError(f"config file {path} does not exist",
                         "pass --config with the path of a params file such as config/sim.yaml") from None
    except OSError as exc:
        raise WarpdError(f"cannot read config file {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WarpdError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise WarpdError(f"config file {path} must be a ROS 2 params file: a mapping "
                         "`node_name: {ros__parameters: {...}}`")
    params = {}
    for node, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("ros__parameters"), dict):
            raise WarpdError(f"config file {path}: entry {node!r} must be `{node}: {{ros__parameters: {{...}}}}`",
                             f"ROS params files allow only node entries; graph settings go under "
                             f"`{GRAPH_KEY}: {{ros__parameters: ...}}`")
        if set(entry) != {"ros__parameters"}:
            extra = sorted(set(entry) - {"ros__parameters"})
            raise WarpdError(f"config file {path}: entry {node!r} has keys {extra} beside ros__parameters")
        params[str(node)] = entry["ros__parameters"]
    return params


def load_graph(kind: str, config_path: str | Path | None = None) -> list[NodeSpec]:
    """The nodes of graph `kind` ("sim" or "hil") with their parameters and remappings.

    `config_path` defaults to config/<kind>.yaml; any problem with it is a WarpdError.
    """
    _check_kind(kind)
    path = Path(config_path) if config_path is not None else default_config(kind)
    params = read_params_file(path)
    settings = params.get(GRAPH_KEY, {})
    unknown = sorted(set(settings) - {"nodes", "remappings"})
    if unknown:
        raise WarpdError(f"config file {path}: unknown {GRAPH_KEY} settings {unknown}; known: nodes, remappings")
    names = _node_names(kind, settings.get("nodes", list(DEFAULT_NODES[kind])), path)
    remappings = _remappings(settings.get("remappings") or {}, path)
    for entry in params:
        if entry not in TOOL_KEYS and entry not in NODES and not entry.startswith("/"):
            raise WarpdError(f"config file {path}: entry {entry!r} is not a warpd_ros node",
                             f"known nodes: {', '.join(NODES)}")
    return [NodeSpec(name=name, module=NODES[name].module, executable=NODES[name].executable,
                     parameters=dict(params.get(name, {})), remappings=dict(remappings))
            for name in names]


def _node_names(kind: str, names, path: Path) -> list[str]:
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise WarpdError(f"config file {path}: {GRAPH_KEY}.nodes must be a non-empty list of node names")
    bad = [n for n in names if n not in ALLOWED_NODES[kind]]
    if bad:
        raise WarpdError(f"config file {path}: {GRAPH_KEY}.nodes has {bad}, which the {kind} graph does not "
                         f"have; choose from {', '.join(ALLOWED_NODES[kind])}")
    if len(set(names)) != len(names):
        raise WarpdError(f"config file {path}: {GRAPH_KEY}.nodes lists a node twice: {names}")
    return [n for n in NODES if n in names]  # start order is fixed: state sources first


def _remappings(entries, path: Path) -> dict:
    if not isinstance(entries, dict):
        raise WarpdError(f"config file {path}: {GRAPH_KEY}.remappings must map topic keys to names")
    remappings = {}
    for key, target in entries.items():
        if key not in TOPICS:
            raise WarpdError(f"config file {path}: cannot remap {key!r}; remappable topics: {', '.join(TOPICS)}")
        if not isinstance(target, str) or not target.strip() or any(c.isspace() for c in target) \
                or ":=" in target:
            raise WarpdError(f"config file {path}: remapping of {key} must be a topic name, got {target!r}")
        if target != TOPICS[key]:
            remappings[TOPICS[key]] = target
    return remappings


_NAMESPACE_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_namespace(text: str) -> str:
    """A graph's namespace in its absolute form ("r1" -> "/r1", "" -> ""), or WarpdError saying why not.

    The nodes' relative topic names then resolve under it (/r1/joint_states, /r1/warpd/policy_weights),
    so several robots share one ROS domain; ROS name rules: tokens of letters, digits and _,
    not starting with a digit, separated by /."""
    stripped = text.strip().strip("/")
    if not stripped:
        return ""
    bad = [t for t in stripped.split("/") if not _NAMESPACE_TOKEN.fullmatch(t)]
    if bad:
        raise WarpdError(f"namespace {text!r} is not a valid ROS namespace (bad part {bad[0]!r})",
                         "use letters, digits and _ separated by /, not starting with a digit, e.g. r1 or fleet/r1")
    return "/" + stripped


def namespaced_config(config: str | Path, namespace: str, directory: str | Path | None = None) -> Path:
    """A copy of params file `config` whose node entries are keyed by the nodes' full names.

    rcl applies an entry `warpd_controller:` only to /warpd_controller: in namespace /r1 the node is
    /r1/warpd_controller and would silently run on its defaults. The copy (written to `directory`,
    default the temp directory) keys every node entry as /r1/<node>; the graph's own entries stay."""
    namespace = check_namespace(namespace)
    params = read_params_file(config)
    entries = {(name if not namespace or name in TOOL_KEYS or name.startswith("/") else f"{namespace}/{name}"):
               {"ros__parameters": values} for name, values in params.items()}
    directory = Path(directory) if directory is not None else Path(tempfile.gettempdir())
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"warpd_ros{namespace.replace('/', '_')}_{Path(config).stem}_{os.getpid()}.yaml"
    out.write_text(f"# {Path(config).resolve()} with node entries for namespace {namespace or '/'}"
                   f" (written by warpd_ros.graph.namespaced_config)\n" + yaml.safe_dump(entries, sort_keys=False))
    return out


def remapping_args(spec: NodeSpec) -> list[str]:
    """`--ros-args` remapping arguments (-r from:=to) for a node."""
    args = []
    for source, target in spec.remappings.items():
        args += ["-r", f"{source}:={target}"]
    return args
