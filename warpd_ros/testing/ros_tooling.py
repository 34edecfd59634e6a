"""The real ROS 2 tooling around the package, for tests and benchmarks: a colcon workspace, a sourced
environment, `ros2 launch`, and what a launch log says about how each node ended.

A user on a full ROS 2 install runs `colcon build`, `source install/setup.bash` and `ros2 launch
warpd_ros sim.launch.py`; these helpers do exactly that (colcon, launch, launch_ros and ros2cli from
the venv stand in for /opt/ros), so the tests exercise the path users take rather than a model of it.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from warpd_ros.testing.processes import REPO

# What a colcon build of the package needs from the checkout (the venv inside the repository must not be
# in the source tree: CMake refuses to export include paths from a source tree into an install prefix).
PACKAGE_SOURCES = ("CMakeLists.txt", "cmake", "package.xml", "msg", "srv", "launch", "config", "warpd_ros",
                   "warpd_core", "scripts", "checkpoints")
TOOLING_MODULES = ("launch", "launch_ros", "launch_testing", "ros2cli", "ros2launch", "ros2param")


def tooling_missing() -> str | None:
    """Why `colcon build` + `ros2 launch` cannot run in this Python, or None when they can."""
    missing = [m for m in TOOLING_MODULES if importlib.util.find_spec(m) is None]
    bindir = Path(sys.executable).parent
    for tool in ("colcon", "ros2"):
        if not (bindir / tool).exists() and shutil.which(tool) is None:
            missing.append(f"the `{tool}` command")
    if not missing:
        return None
    return (f"ROS 2 launch tooling is not installed here (missing {', '.join(missing)}); scripts/setup.sh "
            "installs it from ../shared/ros-launch-wheels when that folder exists, a full ROS 2 install has it")


def tool_env(base: dict | None = None) -> dict:
    """The environment the venv's tools run in: its bin/ first on PATH (colcon-installed executables start
    with `#!/usr/bin/env python3`), its prefix on AMENT_PREFIX_PATH/CMAKE_PREFIX_PATH (the ROS wheels)."""
    env = dict(os.environ if base is None else base)
    prefix = sys.prefix
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for var in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH"):
        parts = [p for p in env.get(var, "").split(os.pathsep) if p]
        env[var] = os.pathsep.join([prefix, *[p for p in parts if p != prefix]])
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)  # see shared notes: a child must set its own library path
    return env


def build_workspace(root: Path, timeout: float = 900) -> Path:
    """`colcon build` of this package in workspace `root` (sources copied to root/src/warpd_ros); returns
    root/install. AssertionError with the end of colcon's output when it fails."""
    src = root / "src" / "warpd_ros"
    src.mkdir(parents=True, exist_ok=True)
    for item in PACKAGE_SOURCES:
        source, target = REPO / item, src / item
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, target)
    cmd = ["colcon", "build", "--event-handlers", "console_direct+",
           "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF"]
    proc = subprocess.run(cmd, cwd=root, env=tool_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"colcon build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    return root / "install"


def sourced_env(install: Path, base: dict | None = None) -> dict:
    """The environment after `source <install>/setup.bash`, as a user's shell would have it."""
    proc = subprocess.run(["bash", "-c", f'source "{install}/setup.bash" && env -0'], env=tool_env(base),
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    pairs = (item.split("=", 1) for item in proc.stdout.decode().split("\0") if "=" in item)
    return dict(pairs)


def start_launch(env: dict, launch_file: str = "sim.launch.py", *args: str, log_path: Path,
                 cwd: Path | None = None) -> subprocess.Popen:
    """`ros2 launch warpd_ros <launch_file> [args]` in a session of its own (so a signal sent to it reaches
    only the launch process, as from a supervisor), output to `log_path`."""
    with open(log_path, "w") as log:
        return subprocess.Popen(["ros2", "launch", "warpd_ros", launch_file, *args], cwd=cwd or log_path.parent,
                                env=dict(env, PYTHONUNBUFFERED="1", RCUTILS_LOGGING_BUFFERED_STREAM="0"),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_launch(launch: subprocess.Popen, sig: int, timeout: float = 40.0) -> int | None:
    """Signal the launch process alone, as a supervisor does, and wait; if launch has not exited after
    `timeout` s, SIGKILL its whole process group (it and any node it left behind). Its exit code, or None."""
    launch.send_signal(sig)
    try:
        return launch.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(launch.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        launch.wait()
        return None


def become_subreaper() -> bool:
    """Make this process adopt orphaned descendants (Linux PR_SET_CHILD_SUBREAPER), so the nodes of a
    launch that exited without stopping them (SIGTERM to launch) become its children and their exit codes
    can be read with :func:`reap`."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap(pids, timeout: float = 20.0) -> dict[int, int | None]:
    """Exit codes of adopted processes (see :func:`become_subreaper`) as they end; a pid that is not our
    child (launch already reaped it) is left out; one still running after `timeout` is SIGKILLed (None)."""
    import time

    codes: dict[int, int | None] = {}
    waiting = set(pids)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped by launch, or gone before we adopted it
                waiting.discard(pid)
                continue
            if done:
                codes[pid] = os.waitstatus_to_exitcode(status)
                waiting.discard(pid)
        time.sleep(0.05)
    for pid in waiting:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        codes[pid] = None
    return codes


def stop_and_read(launch: subprocess.Popen, sig: int, log_path: Path, timeout: float = 40.0) -> "LaunchOutcome":
    """Stop a launch by `sig` to it alone and account for every node: by launch's own log where launch stopped
    them (SIGINT), and by their exit codes where launch left them behind (SIGTERM: upstream launch cancels
    itself; the nodes notice and stop on their own). Call :func:`become_subreaper` before starting launch."""
    stop_launch(launch, sig, timeout)
    outcome = read_launch_log(log_path.read_text(errors="replace"))
    pids = {int(pid): name for name, pid in _STARTED_PID.findall(log_path.read_text(errors="replace"))}
    accounted = set(outcome.finished_cleanly) | set(outcome.died)
    for pid, code in reap([p for p, name in pids.items() if name not in accounted]).items():
        if code == 0:
            outcome.finished_cleanly.append(pids[pid])
        else:
            outcome.died[pids[pid]] = -9 if code is None else code
    return outcome


_FINISHED = re.compile(r"\[INFO\] \[(?P<proc>[\w.-]+)\]: process has finished cleanly")
_DIED = re.compile(r"\[ERROR\] \[(?P<proc>[\w.-]+)\]: process has died \[pid \d+, exit code (?P<code>-?\d+)")
_STARTED = re.compile(r"\[INFO\] \[(?P<proc>[\w.-]+)\]: process started with pid")
_STARTED_PID = re.compile(r"\[INFO\] \[([\w.-]+)\]: process started with pid \[(\d+)\]")


@dataclass
class LaunchOutcome:
    """How the processes of one `ros2 launch` ended, read from its log."""

    started: list[str] = field(default_factory=list)
    finished_cleanly: list[str] = field(default_factory=list)
    died: dict[str, int] = field(default_factory=dict)  # process -> exit code
    aborts: int = 0  # 'terminate called' (a C++ abort, e.g. a KeyboardInterrupt inside rclpy)
    escalations: int = 0  # launch had to escalate SIGINT -> SIGTERM -> SIGKILL
    successes: int = 0  # sim episodes that ended in SUCCESS
    timeouts: int = 0  # sim episodes that ended in TIMEOUT
    hold_sent: bool = False  # the controller logged its final hold command

    @property
    def clean(self) -> bool:
        return (bool(self.started) and not self.died and not self.aborts
                and sorted(self.finished_cleanly) == sorted(self.started))


def read_launch_log(text: str) -> LaunchOutcome:
    out = LaunchOutcome()
    out.started = _STARTED.findall(text)
    out.finished_cleanly = _FINISHED.findall(text)
    out.died = {m.group("proc"): int(m.group("code")) for m in _DIED.finditer(text)}
    out.aborts = text.count("terminate called")
    out.escalations = len(re.findall(r"escalating to '(SIGTERM|SIGKILL)'", text))
    out.successes = len(re.findall(r"\): SUCCESS after", text))
    out.timeouts = len(re.findall(r"\): TIMEOUT after", text))
    out.hold_sent = "stopping: sent the hold command" in text
    return out


class CommandTap:
    """Listens to a launched graph from outside: the last joint command and the episode events it saw.

    Built on :class:`warpd_ros.testing.standin.TestNode` (spinning on its own thread), so a test or a
    benchmark can check what the controller sent last after the graph was stopped.
    """

    def __init__(self, context, name: str = "warpd_command_tap"):
        from std_msgs.msg import Float64MultiArray

        from warpd_ros import topics
        from warpd_ros.qos import COMMAND_QOS
        from warpd_ros.testing.standin import TestNode

        self.test_node = TestNode(context, name)
        self.commands = 0
        self.last_command: tuple[float, ...] | None = None
        self.test_node.node.create_subscription(Float64MultiArray, topics.JOINT_COMMANDS, self._on_command,
                                                COMMAND_QOS)
        self.test_node.spin_in_background()

    def _on_command(self, msg) -> None:
        self.commands += 1
        self.last_command = tuple(msg.data)

    def close(self) -> None:
        self.test_node.close()


# --- A stand-in for a full ROS 2 install (/opt/ros/<distro>) built from this venv ------------------------------

# What a user's venv must provide on a full install: never part of the stand-in's ROS or "system" layer.
NOT_ROS = ("torch", "diffusers", "mujoco", "gymnasium", "metaworld", "safetensors", "pyarrow", "matplotlib",
           "warpd-ros", "warpd_ros", "warpd")
# Pure-Python packages ROS and colcon need at run time but do not all declare (apt installs them as python3-*).
# What apt's python3-colcon-common-extensions has beyond the colcon in requirements/tooling.txt (a user's
# `colcon build --packages-select` needs it); the stand-in installs these into its dist-packages.
COLCON_APT_EXTRAS = ("colcon-package-selection==0.2.10",)
ROS_PYTHON_DEPS = ("catkin-pkg", "empy", "lark", "lark-parser", "pyyaml", "numpy", "packaging", "psutil",
                   "argcomplete", "osrf-pycommon", "typing-extensions", "setuptools", "distlib")


@dataclass
class RosStandIn:
    """A fake filesystem root that behaves like a machine with ROS 2 from apt:

    - ``opt/ros/<distro>/``: the ROS packages of this venv (per-file symlinks of the ros-* wheels and of the
      launch/ros2cli wheels: lib/ with the shared libraries and lib/python3.X/site-packages, share/ with the
      ament index and CMake configs, include/), ``bin/ros2`` etc. as ``#!<system python>`` scripts, and the
      real ament_package prefix-level ``setup.bash``/``local_setup.bash`` (so sourcing it sets PATH,
      PYTHONPATH, LD_LIBRARY_PATH, AMENT_PREFIX_PATH from each package's hooks, as on a real install) plus a
      ``ros_environment`` hook for ROS_DISTRO, ROS_VERSION and CMAKE_PREFIX_PATH;
    - ``usr/bin/``: ``python3`` (the interpreter this venv was made from: the "system" Python) and colcon;
    - ``usr/lib/python3/dist-packages``: what apt's python3-* packages give ROS and colcon, minus what the
      system Python already has. It goes on PYTHONPATH from the start (the one difference from apt, whose
      dist-packages come after a venv's own site-packages).
    """

    root: Path
    distro: str
    prefix: Path
    system_bin: Path
    system_site: Path
    ros_dists: list[str]
    system_dists: list[str]

    def shell_env(self, home: Path, base: dict | None = None) -> dict:
        """A login shell's environment on that machine, before anything is sourced: HOME, the system PATH with
        usr/bin first, the apt dist-packages stand-in; DDS, locale, certificate and pip settings kept from
        `base`; nothing of this venv, of ROS or of a previous bootstrap."""
        base = dict(os.environ if base is None else base)
        keep = ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID", "LANG", "TERM", "USER", "LOGNAME", "TMPDIR")
        env = {k: v for k, v in base.items()
               if k in keep or k.startswith(("LC_", "PIP_")) or "CERT" in k or "CA_BUNDLE" in k or "PROXY" in k.upper()}
        env.update(HOME=str(home), PYTHONNOUSERSITE="1", PYTHONPATH=str(self.system_site),
                   PATH=os.pathsep.join([str(self.system_bin), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                                         "/usr/bin", "/sbin", "/bin"]))
        return env


def _dist_name(dist) -> str:
    return re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()


def _requirement_names(dist) -> list[str]:
    """Names of `dist`'s unconditional requirements (extras and non-matching markers left out)."""
    from packaging.requirements import Requirement

    names = []
    for text in dist.requires or ():
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        names.append(re.sub(r"[-_.]+", "-", req.name).lower())
    return names


def _link_dist_files(dist, venv: Path, target_of, skip_dist_info: bool = False) -> None:
    """Symlink each existing file of `dist` (byte code left out, and its .dist-info with `skip_dist_info`)
    to `target_of(path relative to venv)`."""
    for file in dist.files or ():
        source = Path(os.path.normpath(dist.locate_file(file)))
        if "__pycache__" in source.parts or not source.is_file():
            continue
        if skip_dist_info and any(part.endswith(".dist-info") for part in source.parts):
            continue
        try:
            rel = source.relative_to(venv)
        except ValueError:
            continue
        target = target_of(rel)
        if target is None or target.exists() or target.is_symlink():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source)


def _write_console_scripts(dist, bindir: Path, python: Path) -> None:
    """`dist`'s console scripts as `#!<python>` files, as apt installs them (`#!/usr/bin/python3`)."""
    for ep in dist.entry_points:
        if ep.group != "console_scripts":
            continue
        module, _, attr = ep.value.partition(":")
        script = bindir / ep.name
        bindir.mkdir(parents=True, exist_ok=True)
        script.write_text(f"#!{python}\nimport sys\nfrom {module} import {attr.split('.')[0]}\n"
                          f"sys.exit({attr.strip()}())\n")
        script.chmod(0o755)


def build_ros_standin(root: Path, distro: str = "kilted") -> RosStandIn:
    """Build :class:`RosStandIn` under `root` from this venv; see there for what it holds and why."""
    from importlib import metadata

    venv = Path(sys.prefix)
    site = Path(sysconfig_purelib())
    pyver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    dists = {}
    for dist in metadata.distributions(path=[str(site)]):
        dists.setdefault(_dist_name(dist), dist)

    def registers_in_ament_index(dist) -> bool:
        return any("share/ament_index/resource_index/packages/" in str(f) for f in dist.files or ())

    ros = {n for n, d in dists.items()
           if (n.startswith("ros-") and n != "ros-wheels-bootstrapper") or registers_in_ament_index(d)}
    # what scripts/setup.sh installed from the launch wheels folder (some, like composition_interfaces, are not
    # in the ament index but launch_ros imports them)
    launch_wheels = REPO.parent / "shared" / "ros-launch-wheels" / distro
    ros |= {n for n in (re.sub(r"[-_.]+", "-", w.name.split("-")[0]).lower() for w in launch_wheels.glob("*.whl"))
            if n in dists}
    ros -= {n for n in ros if n in NOT_ROS}
    tooling = [re.split(r"[=<>~! ;\[]", line.strip())[0] for line in
               (REPO / "requirements" / "tooling.txt").read_text().splitlines() if line.strip()
               and not line.startswith("#")]
    wanted = [*ros, *(re.sub(r"[-_.]+", "-", n).lower() for n in tooling), *ROS_PYTHON_DEPS]
    closure: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in closure or name not in dists or name == "ros-wheels-bootstrapper":
            continue
        closure.add(name)
        wanted.extend(_requirement_names(dists[name]))
    leaked = sorted(closure & set(NOT_ROS))
    assert not leaked, f"the ROS stand-in would carry what a user's venv must provide: {leaked}"
    base_python = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    probe = subprocess.run([str(base_python), "-I", "-c",
                            "import sys, importlib.metadata as m; print('\\n'.join(d.metadata['Name'] for d in "
                            "m.distributions()))"], capture_output=True, text=True, check=True)
    in_system_python = {re.sub(r"[-_.]+", "-", n).lower() for n in probe.stdout.split()}
    system = sorted((closure - ros) - in_system_python)

    prefix = root / "opt" / "ros" / distro
    system_bin, system_site = root / "usr" / "bin", root / "usr" / "lib" / "python3" / "dist-packages"
    system_bin.mkdir(parents=True)
    system_site.mkdir(parents=True)
    python = system_bin / "python3"
    python.symlink_to(base_python)
    (system_bin / pyver).symlink_to(base_python)
    site_rel = site.relative_to(venv)

    def into_prefix(rel: Path):
        return None if rel.parts[0] == "bin" else prefix / rel

    def into_system(rel: Path):
        return system_site / rel.relative_to(site_rel) if rel.is_relative_to(site_rel) else None

    for name in sorted(ros):
        # A ros-* wheel's .dist-info is a pip artefact that apt's packages do not have (their egg-info stays).
        _link_dist_files(dists[name], venv, into_prefix, skip_dist_info=name.startswith("ros-"))
        _write_console_scripts(dists[name], prefix / "bin", python)
    for name in system:
        _link_dist_files(dists[name], venv, into_system)
        _write_console_scripts(dists[name], system_bin, python)

    # tf2_msgs has no wheel: scripts/setup.sh builds interfaces/tf2_msgs into the venv; a ROS install has it from
    # apt (ros-<distro>-tf2-msgs), so the stand-in carries the built files where that package would put them.
    for manifest in sorted((REPO / "build").glob(f"tf2_msgs-{distro}/install_manifest.txt")):
        for line in manifest.read_text().split():
            built = Path(line)
            target = into_prefix(built.relative_to(venv)) if built.is_relative_to(venv) and built.exists() else None
            if target is not None and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(built)
    extras = [req for req in COLCON_APT_EXTRAS if re.split(r"[=<>~!]", req)[0] not in dists]
    if extras:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                        str(system_site), *extras], check=True, capture_output=True, timeout=300,
                       env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    # The wheels keep the libraries they vendor (auditwheel) in site-packages/ros_*.libs, found through the
    # bootstrapper's LD_LIBRARY_PATH; a ROS install has its libraries in <prefix>/lib, and so does the stand-in.
    for libs in sorted((prefix / site_rel).glob("ros_*.libs")):
        for lib in libs.iterdir():
            if not (prefix / "lib" / lib.name).exists():
                (prefix / "lib" / lib.name).symlink_to(lib.resolve())
    # the prefix-level setup files a ROS install gets from ament_package (what ros_workspace installs)
    import ament_package

    templates = Path(ament_package.__file__).parent / "template" / "prefix_level"
    subst = {"@CMAKE_INSTALL_PREFIX@": str(prefix), "@ament_package_PYTHON_EXECUTABLE@": str(python),
             "@SKIP_PARENT_PREFIX_PATH@": ""}
    for template in ("setup.bash", "setup.sh.in", "local_setup.bash", "local_setup.sh.in", "_local_setup_util.py"):
        text = (templates / template).read_text()
        for key, value in subst.items():
            text = text.replace(key, value)
        (prefix / template.removesuffix(".in")).write_text(text)
    # ros_environment's hook: ROS_DISTRO etc. (CMAKE_PREFIX_PATH too, so plain CMake finds the prefix)
    env_pkg = prefix / "share" / "ros_environment"
    env_pkg.mkdir(parents=True, exist_ok=True)
    (env_pkg / "package.dsv").write_text(f"set;ROS_DISTRO;{distro}\nset;ROS_VERSION;2\nset;ROS_PYTHON_VERSION;3\n"
                                         "prepend-non-duplicate;CMAKE_PREFIX_PATH;\n")
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    (index / "ros_environment").write_text("")
    return RosStandIn(root, distro, prefix, system_bin, system_site, sorted(ros), system)


def sysconfig_purelib() -> str:
    import sysconfig

    return sysconfig.get_paths()["purelib"]


def launch_runs(text: str) -> list[str]:
    """The output of several `ros2 launch` runs in one text, one part per run (each starts by naming its log
    directory: "[INFO] [launch]: All log files can be found below ...")."""
    marker = "[INFO] [launch]: All log files can be found below"
    starts = [m.start() for m in re.finditer(re.escape(marker), text)]
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)])]


def launch_file_test_description(launch_file: str):
    """What a launch_testing file's generate_test_description() returns: the installed
    share/warpd_ros/launch/<launch_file>, found through ament as on a ROS install, then ReadyToTest."""
    import launch
    import launch_testing.actions
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    path = Path(get_package_share_directory("warpd_ros")) / "launch" / launch_file
    return launch.LaunchDescription([IncludeLaunchDescription(PythonLaunchDescriptionSource(str(path))),
                                     launch_testing.actions.ReadyToTest()])


def controller_statuses_until_run(timeout_s: float = 60.0) -> list:
    """Every ControllerStatus received (in a context of its own) until one reports RUN or `timeout_s`
    passes, for a test that watches a launched graph from outside."""
    import time

    from warpd_core.runtime.command_pipeline import Mode
    from warpd_ros import topics
    from warpd_ros.modes import status_mode
    from warpd_ros.msg import ControllerStatus
    from warpd_ros.testing.standin import TestNode, ros_context

    seen: list = []
    with ros_context() as context:
        listener = TestNode(context, "warpd_launch_test_listener")
        try:
            listener.node.create_subscription(ControllerStatus, topics.CONTROLLER_STATUS, seen.append, 10)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and not any(status_mode(s) == Mode.RUN for s in seen):
                listener.executor.spin_once(timeout_sec=0.1)
        finally:
            listener.close()
    return seen
