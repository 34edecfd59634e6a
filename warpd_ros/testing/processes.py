"""Node processes for tests and benchmarks: started with the loopback environment, and stopped so that
none is ever left behind (a stray controller would publish into the next test's graph)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from warpd_ros.ros_env import loopback_environment

REPO = Path(__file__).resolve().parents[2]


def ros_params(params: dict) -> list[str]:
    """``--ros-args`` parameter overrides, ``["-p", "name:=value", ...]`` (booleans as YAML's true/false)."""
    out = []
    for name, value in params.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        out += ["-p", f"{name}:={text}"]
    return out


def module_argv(module: str, params: dict | None = None, *ros_args: str) -> list[str]:
    """``python -m module --ros-args -p ...`` with this interpreter."""
    argv = [sys.executable, "-m", module]
    if params or ros_args:
        argv += ["--ros-args", *ros_args, *ros_params(params or {})]
    return argv


def start_node(argv, log_path=None, *, env: dict | None = None, unbuffered: bool = False, new_session: bool = True,
               **popen) -> subprocess.Popen:
    """Start `argv` (as bringup.plan or :func:`module_argv` gives it) in the repository root, its DDS
    traffic on loopback (`env`, default this process's environment, through loopback_environment).

    Output is appended to `log_path` when given (the child keeps its own descriptor), else goes where
    `popen`'s stdout/stderr say; `unbuffered`: line by line, for a test that reads the log while the
    node runs. A new session by default, so :func:`stop_process` can reach anything the node starts,
    and a Ctrl-C of the test run does not kill it before its fixture stops it."""
    env = loopback_environment(base=env)
    if unbuffered:
        env.update(RCUTILS_LOGGING_BUFFERED_STREAM="0", PYTHONUNBUFFERED="1")
    if log_path is None:
        return subprocess.Popen(argv, cwd=REPO, env=env, start_new_session=new_session, **popen)
    with open(log_path, "a") as log:
        return subprocess.Popen(argv, cwd=REPO, env=env, start_new_session=new_session, stdout=log,
                                stderr=subprocess.STDOUT, **popen)


def start_module(module: str, params: dict | None = None, *ros_args: str, log_path=None, **kwargs) -> subprocess.Popen:
    """:func:`start_node` for ``python -m module`` with parameter overrides."""
    return start_node(module_argv(module, params, *ros_args), log_path, **kwargs)


def stop_process(proc: subprocess.Popen, sig=signal.SIGINT, timeout: float = 10.0, group: bool = False):
    """Stop a node process and never leave it behind: `sig` (default SIGINT, a node's clean shutdown),
    then SIGKILL after `timeout` seconds. `group`: signal its whole process group (it was started in a
    session of its own and may have children). Its return code, or None if it had to be killed."""
    if proc.poll() is not None:
        return proc.returncode

    def send(s):
        if group:
            try:
                os.killpg(proc.pid, s)
            except ProcessLookupError:
                pass
        else:
            proc.send_signal(s)

    send(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait()
        return None


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def use_private_domain(domain_id: int | None = None) -> dict:
    """Keep this process's DDS traffic (and its children's) on loopback in a private ROS domain: `domain_id`,
    else the inherited ROS_DOMAIN_ID unless it is unset or 0, else one derived from the process id (as
    test/conftest.py picks). Sets os.environ before rclpy starts; returns the environment for children."""
    if domain_id is None:
        inherited = os.environ.get("ROS_DOMAIN_ID", "")
        domain_id = int(inherited) if inherited not in ("", "0") else 10 + os.getpid() % 90
    env = loopback_environment(domain_id)
    os.environ.update({k: env[k] for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID")})
    os.environ.pop("ROS_STATIC_PEERS", None)
    return env
