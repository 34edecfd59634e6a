"""How a node process starts and stops: stop signals are caught from its first line and never re-raised.

Why this exists: a SIGINT or SIGTERM that reaches Python's default handler becomes a KeyboardInterrupt
wherever the interpreter happens to be. During rclpy's teardown that is often inside a C++ destructor
calling back into Python (an event handler's ``__exit__``), where pybind11 cannot propagate it, and
the process aborts (``terminate called after throwing 'pybind11::error_already_set'``, exit -6)
without its last command. ``ros2 launch`` forwards a signal to every node and ``timeout``, a terminal
or a supervisor may add one of their own, so a node sees one, two or more, at any moment: during
the seconds it takes to import torch, while building the node, while spinning, or while tearing
down. So the handler is installed before anything heavy is imported and stays installed for the
life of the process; a signal only records a stop request, which :func:`warpd_ros.ros_env.run_node`
reads. Repeats are absorbed. Before the node spins (importing, building: nothing sent yet) a stop
ends the process at once with exit 0, so launch never waits for torch to finish importing. A node
that hangs is still ended by launch's SIGKILL escalation.
Before Python runs a line of ours, the executables keep the signals blocked (pending, not lost):
see :func:`catch_stop_signals`.

This module imports only the standard library at module level, so an entry point can call
:func:`catch_stop_signals` before it imports a node module.
"""
from __future__ import annotations

import importlib
import os
import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
NODE_ENTRY = "warpd_ros.nodes"  # `python -m warpd_ros.nodes NODE`: run_node_executable(NODE)

_requests: list[int] = []
_launch_parent: int | None = None  # pid of the `ros2 launch` (or launch_test) this node belongs to; 0: none
_starting = True  # until run_node spins the built node: it has sent nothing yet that a stop must undo


def _record(signum, _frame) -> None:
    _requests.append(signum)
    if _starting:
        # Still importing (torch alone takes seconds, tens of them on a loaded machine) or building the node
        # (a checkpoint to load): nothing has been sent, so nothing to undo and no reason to make launch wait.
        os.write(2, f"stopped by {signal.Signals(signum).name} while starting; nothing to tear down\n".encode())
        os._exit(0)


def started() -> None:
    """From now on a stop signal is only recorded: run_node calls this once the node is built, right before it
    spins, so the node's on_stop (the controller's hold command) and rclpy's shutdown always run."""
    global _starting
    _starting = False


def catch_stop_signals() -> None:
    """From now on SIGINT/SIGTERM only record a stop request. Idempotent; call it again after anything that
    may have reset the handlers (rclpy's shutdown "uninstalls" signal handlers it never installed, leaving
    SIG_DFL, so a repeated signal during teardown would kill the process with -2).

    The node executables start with both signals blocked (their shebang: `env --block-signal`; bringup:
    a preexec function), so one that arrives while the interpreter itself starts up (site, the ROS
    wheels' re-exec, before any line of ours) stays pending instead of raising KeyboardInterrupt in an
    import; unblocking here delivers it to the recorder.
    """
    global _launch_parent
    for sig in STOP_SIGNALS:
        signal.signal(sig, _record)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    if _launch_parent is None:
        _launch_parent = _launcher()


def _launcher() -> int:
    """The pid of the `ros2 launch` this node belongs to, 0 if none: its parent when that is launch, else the
    leader of its process group (launch's children share its group) when that is not this process. A launch
    that was SIGTERMed while this node was still starting may already be gone: the group leader's pid
    remains the node's pgid, and the node, orphaned, has been adopted by init."""
    parent = os.getppid()
    if _started_by_launch(parent):
        return parent
    group = os.getpgid(0)
    # A dead leader means a launch that is gone only if this node was orphaned with it (adopted by init):
    # a node started by a live process in a group whose leader exited long ago (a shell that backgrounded
    # a test run, a daemonizing script) must not take that for a stop.
    if group != os.getpid() and (_started_by_launch(group) or (parent == 1 and not _alive(group))):
        return group
    return 0


def _started_by_launch(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    names = [os.path.basename(a.decode(errors="replace")) for a in argv[:3]]
    return "launch_test" in names or ("ros2" in names and b"launch" in argv[1:4])


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"  # a zombie has exited
    except (OSError, IndexError):
        return False


def launch_gone() -> bool:
    """True when the `ros2 launch` that started this node has exited: upstream launch answers SIGTERM by
    cancelling itself without signalling its processes ("using SIGTERM can result in orphaned processes"),
    so a node it started stops on its own then, the same clean way as on SIGINT."""
    return bool(_launch_parent) and not _alive(_launch_parent)


def block_stop_signals() -> None:
    """Block SIGINT/SIGTERM (for a child about to exec a node: they stay pending until it records them)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def stop_requested() -> bool:
    return bool(_requests)


def run_node_executable(node: str, args=None) -> int:
    """Entry point of a node executable (scripts/warpd_*, `python -m warpd_ros.nodes NODE`): catch stop
    signals first, then import the node's module (seconds, for torch) and run its main()."""
    catch_stop_signals()
    # Before numpy/torch load: their thread pools are sized when they load. One thread each is faster and
    # predictable for a policy's small matmuls and a plan on a busy machine (run_node's limit_math_threads
    # also caps pools at run time, for nodes run with `python -m warpd_ros.nodes.<node>`).
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    from warpd_ros.graph import NODES  # light (yaml, names): the node's heavy imports come after

    if node not in NODES:
        raise SystemExit(f"unknown node {node!r}; one of {', '.join(NODES)}")
    try:
        return importlib.import_module(NODES[node].module).main(args)
    finally:
        # The node is done. Python's finalisation resets every handler it installed to SIG_DFL, so a late
        # repeat of the stop signal would kill the process with -2 on its way out; ignore them instead.
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
