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
reads. Repeats are absorbed. A node that hangs is still ended by launch's SIGKILL escalation.

This module imports only the standard library at module level, so an entry point can call
:func:`catch_stop_signals` before it imports a node module.
"""
from __future__ import annotations

import importlib
import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
NODE_ENTRY = "warpd_ros.nodes"  # `python -m warpd_ros.nodes NODE`: run_node_executable(NODE)

_requests: list[int] = []
_installed = False


def _record(signum, _frame) -> None:
    _requests.append(signum)


def catch_stop_signals() -> None:
    """From now on SIGINT/SIGTERM only record a stop request (idempotent; never undone)."""
    global _installed
    if not _installed:
        for sig in STOP_SIGNALS:
            signal.signal(sig, _record)
        _installed = True


def stop_requested() -> bool:
    return bool(_requests)


def stop_signals() -> list[int]:
    """The stop signals received so far, in order (for logs and tests)."""
    return list(_requests)


def run_node_executable(node: str, args=None) -> int:
    """Entry point of a node executable (scripts/warpd_*, `python -m warpd_ros.nodes NODE`): catch stop
    signals first, then import the node's module (seconds, for torch) and run its main()."""
    catch_stop_signals()
    from warpd_ros.graph import NODES  # light (yaml, names): the node's heavy imports come after

    if node not in NODES:
        raise SystemExit(f"unknown node {node!r}; one of {', '.join(NODES)}")
    return importlib.import_module(NODES[node].module).main(args)
