"""Finding ROS 2 from a pip venv, and keeping DDS traffic on this machine.

Every command and node that needs rclpy or the warpd_ros messages gets them through
``require_ros()``, so a missing venv or a broken library path is reported once, clearly, with
the fix, instead of as an ImportError deep in a traceback.
"""
from __future__ import annotations

import os
import sys

from warpd_core.errors import WarpdError

SETUP_HINT = "run scripts/setup.sh from the repository root, then use .venv/bin/warpd"
DOMAIN_ID_MAX = 232  # ROS 2 accepts 0..101 and 215..232 on Linux with default ports


def diagnose_import_error(exc: BaseException) -> str:
    text = str(exc)
    if sys.prefix == sys.base_prefix:
        return ("this Python is not a venv, and the ROS 2 wheels only work inside one; " + SETUP_HINT)
    if "cannot open shared object" in text and os.environ.get("_ROS_WHEELS_BOOTSTRAP_COMPLETE"):
        return ("the ROS library path of another venv was inherited: `unset _ROS_WHEELS_BOOTSTRAP_COMPLETE`"
                " and start this venv's python again")
    return SETUP_HINT


def require_ros():
    """Import rclpy and the warpd_ros messages, or raise WarpdError that says how to fix it."""
    try:
        import rclpy  # noqa: F401
    except ImportError as exc:
        raise WarpdError(f"ROS 2 (rclpy) cannot be imported: {exc}", diagnose_import_error(exc)) from None
    try:
        import warpd_ros.msg  # noqa: F401
    except ImportError as exc:
        raise WarpdError(f"the warpd_ros messages cannot be imported: {exc}",
                         "they are built by scripts/setup.sh (msg/ -> rosidl); " + SETUP_HINT) from None
    return rclpy


def parse_domain_id(value: str | int) -> int:
    try:
        domain = int(value)
    except (TypeError, ValueError):
        raise WarpdError(f"ROS_DOMAIN_ID must be an integer, got {value!r}") from None
    if not 0 <= domain <= DOMAIN_ID_MAX:
        raise WarpdError(f"ROS_DOMAIN_ID {domain} is outside 0..{DOMAIN_ID_MAX}")
    return domain


def loopback_environment(domain_id: int | None = None, base: dict | None = None) -> dict:
    """Environment for child processes whose DDS traffic must stay on loopback.

    Forces ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (no multicast leaves the machine) and sets
    ``ROS_DOMAIN_ID`` when one is given; the rest of ``base`` (default: os.environ) is kept.
    """
    env = dict(os.environ if base is None else base)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.pop("ROS_STATIC_PEERS", None)
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(parse_domain_id(domain_id))
    return env


def resolve_package_file(path, package: str = "warpd_ros"):
    """Find a package-relative file such as ``config/perturbations.yaml`` or a checkpoint.

    An absolute path is returned as is. A relative one is looked up, in order, in the current
    directory, in the installed package's share directory (``<prefix>/share/<package>/``, found
    with ament_index_python on a colcon/ament install, where AMENT_PREFIX_PATH is set), and in
    the source checkout this module runs from (the pip-editable venv route). The first existing
    candidate wins; if none exists the path is returned relative to the current directory, so the
    caller's "does not exist" error names what the user asked for.
    """
    from pathlib import Path

    wanted = Path(path).expanduser()
    if wanted.is_absolute():
        return wanted
    candidates = [Path.cwd() / wanted]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(package, print_warning=False)) / wanted)
    except (ImportError, LookupError, OSError, ValueError):  # not installed the ament way, or no AMENT_PREFIX_PATH
        pass
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "package.xml").is_file():
        candidates.append(checkout / wanted)
    return next((c for c in candidates if c.exists()), candidates[0])


def limit_math_threads(default: int = 1) -> int:
    """Give BLAS and torch one thread in a node process, unless OMP_NUM_THREADS says otherwise.

    On a busy 2-core machine, multi-threaded BLAS stalls the small matmuls of a generated policy by
    milliseconds (threads spin up and wait on each other), and two torch threads slow a plan from
    ~8 ms to 30-440 ms while the sim and the controller run; one thread is faster and predictable
    at these sizes. Done at run time (threadpoolctl), so it holds whatever was imported first.
    """
    try:
        threads = max(1, int(os.environ.get("OMP_NUM_THREADS") or default))
    except ValueError:
        threads = default
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    return threads


def run_node(make_node, name: str, args=None) -> int:
    """Run one node process: init rclpy, build the node, spin until SIGINT/SIGTERM, shut down.

    Returns 0 after a clean shutdown (also when stopped while starting) and 1 when the node could
    not be built because of its set-up (WarpdError, a bad parameter): the message (and hint) go
    to stderr, no traceback.

    Math libraries get one thread each first (:func:`limit_math_threads`).

    Signals are never rclpy's: with rclpy's own handlers, rclpy 9.1's EventsExecutor either keeps
    spinning after the context is shut down or aborts the process when the KeyboardInterrupt that
    rclpy chains to is raised inside a callback called from C++. Here a signal only records a
    stop request (warpd_ros/node_process.py, installed for the life of the process, also before
    this is called when the node runs from its executable), and a ``spin_once`` loop sees it
    within 0.1 s. While the node is still being imported or built (it has sent nothing yet) a stop
    ends the process at once with 0. Before the node is destroyed, its ``on_stop()`` (if any) runs while the
    context is still up: the controller sends its hold command there.
    """
    from warpd_ros.node_process import catch_stop_signals, launch_gone, started, stop_requested

    catch_stop_signals()
    rclpy = require_ros()
    from rclpy.exceptions import ParameterException
    from rclpy.signals import SignalHandlerOptions

    limit_math_threads()
    if stop_requested() or launch_gone():  # stopped, or its launch gone, while importing: nothing was started
        return 0
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = executor = None
    try:
        try:
            node = make_node()
        except (WarpdError, ValueError, ParameterException) as exc:
            hint = getattr(exc, "hint", None)
            print(f"{name}: error: {exc}" + (f"\n{name}: hint: {hint}" if hint else ""), file=sys.stderr)
            return 1
        executor = _executor(rclpy)
        executor.add_node(node)
        started()  # from here a stop is recorded and torn down properly (on_stop: the controller's hold)
        while not stop_requested() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
            if launch_gone():
                node.get_logger().warning("the ros2 launch that started this node is gone (SIGTERM to launch "
                                          "does not reach its nodes): stopping")
                break
        return 0
    finally:
        if node is not None and hasattr(node, "on_stop") and node.context.ok():
            node.on_stop()
        if executor is not None:
            executor.shutdown(timeout_sec=1.0)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        catch_stop_signals()  # rclpy's shutdown resets SIGINT/SIGTERM to their defaults; a late repeat must not kill us


def _executor(rclpy):
    """The EventsExecutor (~0.1 core at 1 kHz vs ~0.3), or the SingleThreadedExecutor where it is
    missing or WARPD_EXECUTOR=single asks for it."""
    if os.environ.get("WARPD_EXECUTOR", "events") != "single":
        try:
            from rclpy.experimental import EventsExecutor

            return EventsExecutor()
        except ImportError:
            pass
    return rclpy.executors.SingleThreadedExecutor()
