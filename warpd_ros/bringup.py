"""`warpd bringup sim|hil`: start a whole node graph from the pip venv, where `ros2 launch` is
not available, from the same description (warpd_ros.graph) and config the launch files use.

Every node runs as its own child process, ``python -m warpd_ros.nodes <name> --ros-args -r
__node:=<name> --params-file <config> [-p param:=value ...] [-r topic:=new ...]`` (the node's
executable entry: stop signals are caught before torch or rclpy is imported), with its output relayed line by
line behind its node name. Discovery is kept on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=
LOCALHOST) unless --network is given. The graph is stopped — SIGINT to every node, SIGTERM to
those still running after --stop-timeout, SIGKILL two seconds later — on Ctrl-C (or SIGTERM),
when --duration expires, or when any node exits on its own; the last case is an error that names
the node and shows its last lines.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import importlib.util
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from warpd_core.errors import WarpdError
from warpd_ros.graph import KINDS, check_namespace, default_config, load_graph, namespaced_config, remapping_args
from warpd_ros.keygen import provide_graph_keys
from warpd_ros.node_process import NODE_ENTRY, block_stop_signals
from warpd_ros.ros_env import loopback_environment, parse_domain_id, require_ros

HELP = "start a whole node graph (sim or hil) as child processes, like `ros2 launch` does"
EPILOG = """\
Each node runs as a child process (`python -m warpd_ros.nodes.<name> --ros-args ...`) whose output
lines are shown behind its node name. DDS discovery stays on this machine unless --network is
given. The graph stops - SIGINT to every node, SIGTERM after --stop-timeout, SIGKILL 2 s later -
on Ctrl-C, when --duration is over, or as soon as any node exits on its own (an error: bringup
names the node and prints its last lines).

The graph (which nodes, their parameters, topic remappings) comes from the config file, a ROS 2
params file: config/sim.yaml or config/hil.yaml by default; launch/sim.launch.py and
launch/hil.launch.py start the same graph from the same file on a full ROS 2 install.

examples:
  warpd bringup sim                                   run until Ctrl-C
  warpd bringup sim --duration 30                     run for 30 s, then stop cleanly
  warpd bringup sim --set warpd_sim.perturbation_level=0.5 --set warpd_planner.diffusion_steps=5
  warpd bringup hil --set warpd_driver_emulator.latency_s=0.01
  warpd bringup hil --config my_robot.yaml --network  talk to drivers on other machines
  warpd bringup sim --namespace r1 --set warpd_sim.seed=100   a second robot beside one in /r2
  warpd bringup sim --dry-run                         print the node commands only

exit status: 0 after a clean stop; 1 when a node had to be terminated or killed; 2 when a node
died (its last lines are printed) or the config is bad."""
TAIL_LINES = 15
TERM_GRACE_S = 2.0
POLL_S = 0.1


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    reader: threading.Thread | None = None


class _Stop(Exception):
    """SIGTERM to bringup: stop the graph like Ctrl-C does."""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def parse_override(text: str) -> tuple[str, str, str]:
    target, sep, value = text.partition("=")
    node, dot, param = target.partition(".")
    if not sep or not dot or not node or not param or not value:
        raise argparse.ArgumentTypeError(f"expected node.param=value (e.g. warpd_sim.task=reach_around), got {text!r}")
    return node, param, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("kind", choices=KINDS, help="which graph: sim (MuJoCo) or hil (real or emulated drivers)")
    parser.add_argument("--config", type=Path, default=None,
                        help="ROS params file of the graph (default: config/<kind>.yaml)")
    parser.add_argument("--duration", type=_positive_float, default=None,
                        help="stop the graph after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--set", dest="overrides", type=parse_override, action="append", default=[],
                        metavar="NODE.PARAM=VALUE",
                        help="override one parameter of one node (YAML value syntax, as `-p` takes); repeatable")
    parser.add_argument("--namespace", default="", metavar="NS",
                        help="run every node in namespace NS (e.g. r1): topics become /NS/joint_states, "
                             "/NS/warpd/policy_weights, ..., so several robots share one domain (default: none)")
    parser.add_argument("--domain-id", type=parse_domain_id, default=None,
                        help="ROS_DOMAIN_ID for every node (default: inherit)")
    parser.add_argument("--network", action="store_true",
                        help="let DDS discovery leave this machine (default: LOCALHOST only)")
    parser.add_argument("--stop-timeout", type=_positive_float, default=5.0,
                        help="seconds the nodes get to exit after SIGINT before SIGTERM (default 5)")
    parser.add_argument("--dry-run", action="store_true", help="print each node's command and exit")


def plan(kind: str, config: Path | None = None, overrides=(), python: str = sys.executable,
         namespace: str = "") -> list[Child]:
    """The command line of every node of the graph (no process is started). With a `namespace` every
    node runs in it, reading a copy of the config keyed by the nodes' full names (namespaced_config)."""
    config = Path(config if config is not None else default_config(kind)).resolve()
    specs = load_graph(kind, config)
    namespace = check_namespace(namespace)
    params_file = namespaced_config(config, namespace) if namespace else config
    ns_args = ["-r", f"__ns:={namespace}"] if namespace else []
    names = [s.name for s in specs]
    per_node: dict[str, list[str]] = {name: [] for name in names}
    for node, param, value in overrides:
        if node not in per_node:
            raise WarpdError(f"--set {node}.{param}: the {kind} graph has no node {node!r}",
                             f"its nodes: {', '.join(names)}")
        per_node[node] += ["-p", f"{param}:={value}"]
    return [Child(spec.name, [python, "-m", NODE_ENTRY, spec.name, "--ros-args", "-r", f"__node:={spec.name}",
                              *ns_args, "--params-file", str(params_file), *per_node[spec.name],
                              *remapping_args(spec)])
            for spec in specs]


def _environment(args: argparse.Namespace) -> dict:
    return graph_environment(args.domain_id, args.network)


def graph_environment(domain_id: int | None = None, network: bool = False) -> dict:
    """The nodes' environment: discovery on this machine only unless `network`, output unbuffered.

    Shared with `warpd hil-check`, which starts the same graph the same way."""
    if network:
        env = dict(os.environ)
        if domain_id is not None:
            env["ROS_DOMAIN_ID"] = str(domain_id)
    else:
        env = loopback_environment(domain_id)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("RCUTILS_LOGGING_BUFFERED_STREAM", "1")  # line-buffered ROS logging through the pipe
    return env


def _child_preexec():
    """A preexec function: the node starts with SIGINT/SIGTERM blocked, as its executable's shebang does on a
    ROS install (node_process.catch_stop_signals unblocks them once it records them, so a stop during the
    interpreter's own start-up waits instead of raising inside it); and it gets SIGTERM if bringup dies
    without stopping it (Linux: PR_SET_PDEATHSIG)."""
    prctl = None
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            prctl = None

    def preexec():
        block_stop_signals()
        if prctl is not None:
            prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    return preexec


class Bringup:
    def __init__(self, children: list[Child], env: dict, show=lambda line: True):
        """`show(line)` decides which lines of the nodes' output are relayed (all by default)."""
        self.children = children
        self.env = env
        self.show = show
        self.width = max(len(c.name) for c in children)
        self._lock = threading.Lock()

    def say(self, text: str) -> None:
        self._emit(f"[{'bringup':<{self.width}}] {text}")

    def _emit(self, line: str) -> None:
        with self._lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def start(self) -> None:
        preexec = _child_preexec()
        for child in self.children:  # start every process before any reader thread (preexec_fn + threads)
            child.proc = subprocess.Popen(child.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=preexec)
        for child in self.children:
            child.reader = threading.Thread(target=self._relay, args=(child,), daemon=True)
            child.reader.start()
            self.say(f"started {child.name} (pid {child.proc.pid})")

    def _relay(self, child: Child) -> None:
        prefix = f"[{child.name:<{self.width}}] "
        for raw in child.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            child.tail.append(line)
            if self.show(line):
                self._emit(prefix + line)
        child.proc.stdout.close()

    @contextlib.contextmanager
    def running(self, grace: float):
        """Start the graph for the `with` block; whatever of it was started is stopped however the
        block ends (an error, Ctrl-C, a start that failed part way). For tools that run a graph
        beside their own work, like `warpd hil-check`."""
        try:
            self.start()
            yield self
        finally:
            self.stop_started(grace)

    def stop_started(self, grace: float) -> list[str]:
        """`stop` the children that were started ([] when none was)."""
        started = [c for c in self.children if c.proc is not None]
        if not started:
            return []
        self.children = started
        return self.stop(grace)

    def first_dead(self) -> Child | None:
        return next((c for c in self.children if c.proc.poll() is not None), None)

    def watch(self, duration: float | None) -> Child | None:
        """Wait for the duration to pass (None: forever); returns a node that died first, if any."""
        deadline = None if duration is None else time.monotonic() + duration
        while deadline is None or time.monotonic() < deadline:
            dead = self.first_dead()
            if dead is not None:
                return dead
            time.sleep(POLL_S)
        return None

    def _signal(self, child: Child, sig: signal.Signals) -> None:
        if child.proc.poll() is None:
            try:
                os.killpg(child.proc.pid, sig)  # its own process group: anything it started goes too
            except ProcessLookupError:
                pass

    def _wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while any(c.proc.poll() is None for c in self.children):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self, grace: float) -> list[str]:
        """SIGINT, then SIGTERM, then SIGKILL; returns the nodes that needed more than SIGINT."""
        escalated = []
        try:
            for child in self.children:
                self._signal(child, signal.SIGINT)
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, TERM_GRACE_S)):
                if self._wait(wait):
                    break
                for child in self.children:
                    if child.proc.poll() is None:
                        self.say(f"{child.name} still running {wait:g} s after "
                                 f"{'SIGINT' if sig == signal.SIGTERM else 'SIGTERM'}: sending {sig.name}")
                        escalated.append(child.name)
                        self._signal(child, sig)
        except KeyboardInterrupt:  # a second Ctrl-C: no more patience
            for child in self.children:
                self._signal(child, signal.SIGKILL)
            escalated += [c.name for c in self.children if c.proc.poll() is None]
        for child in self.children:
            child.proc.wait()
            if child.reader is not None:
                child.reader.join(timeout=2.0)
        return list(dict.fromkeys(escalated))


def _raise_stop(signum, frame):
    raise _Stop()


def run(args: argparse.Namespace) -> int:
    children = plan(args.kind, args.config, args.overrides, namespace=args.namespace)
    env = _environment(args)
    config = Path(args.config if args.config is not None else default_config(args.kind)).resolve()
    namespace = check_namespace(args.namespace)
    discovery = "discovery beyond this machine" if args.network else "discovery LOCALHOST"
    header = (f"{args.kind} graph from {config}: {', '.join(c.name for c in children)}"
              f"{f' in namespace {namespace}' if namespace else ''}; "
              f"ROS_DOMAIN_ID={env.get('ROS_DOMAIN_ID', '0 (default)')}, {discovery}")
    if args.dry_run:
        print(header)
        for child in children:
            print(f"{child.name}: {shlex.join(child.argv)}")
        return 0
    require_ros()  # fail once, clearly, instead of in every child
    for spec in load_graph(args.kind, config):
        if importlib.util.find_spec(spec.module) is None:
            raise WarpdError(f"node {spec.name}: module {spec.module} is not installed in this Python")

    graph = Bringup(children, env)
    provide_graph_keys(load_graph(args.kind, config), args.overrides, graph.say)
    graph.say(header + (f", for {args.duration:g} s" if args.duration else ", until Ctrl-C"))
    # Ctrl-C must stop the graph however bringup was started: a shell starts background jobs with
    # SIGINT ignored, and Python then never installs its KeyboardInterrupt handler.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    dead, reason, escalated = None, "duration over", []
    try:
        graph.start()
        dead = graph.watch(args.duration)
        reason = f"{dead.name} exited" if dead else reason
    except (KeyboardInterrupt, _Stop) as exc:
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else "SIGTERM"
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        if any(c.proc is not None for c in children):
            started = [c for c in children if c.proc is not None]
            graph.children = started
            graph.say(f"{reason}: stopping {', '.join(c.name for c in started if c.proc.poll() is None) or 'nothing'}")
            escalated = graph.stop(args.stop_timeout)
    if dead is not None:
        lines = "\n".join(f"    {line}" for line in dead.tail) or "    (no output)"
        graph.say(f"{dead.name} died (exit code {dead.proc.returncode}); its last lines:\n{lines}")
        raise WarpdError(f"node {dead.name} died with exit code {dead.proc.returncode}; the graph was stopped",
                         f"see {dead.name}'s last lines above")
    codes = ", ".join(f"{c.name} {c.proc.returncode}" for c in children)
    if escalated:
        graph.say(f"stopped, but {', '.join(escalated)} ignored SIGINT (exit codes: {codes})")
        return 1
    graph.say(f"stopped cleanly (exit codes: {codes})")
    return 0
