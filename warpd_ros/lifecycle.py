"""`warpd lifecycle`: drive a managed node's lifecycle (the controller's) where `ros2 lifecycle` is missing.

The pip venv has no ros2lifecycle wheel; this calls the same standard services (`<node>/get_state`,
`<node>/change_state`, lifecycle_msgs) that `ros2 lifecycle get/set` call. The request building
lives here once: the test kit drives the controller through it too.
"""
from __future__ import annotations

import argparse
import time

from warpd_core.errors import WarpdError
from warpd_ros.ros_env import parse_domain_id, require_ros

HELP = "get a managed node's lifecycle state or change it (configure, activate, deactivate, cleanup, shutdown)"
EPILOG = """\
examples:
  warpd lifecycle get /warpd_controller
  warpd lifecycle set /warpd_controller configure
  warpd lifecycle set /warpd_controller activate      refused while the controller's joint states are stale
  warpd lifecycle set /r1/warpd_controller deactivate the hold command, then silence

exit status: 0 when the transition succeeded (or the state was read), 1 when the node refused it
(the node's log and its ControllerStatus.mode_reason say why), 2 when the node did not answer."""
TRANSITIONS = ("configure", "activate", "deactivate", "cleanup", "shutdown")


def transition_id(transition: str, current_state: str) -> int:
    """The lifecycle_msgs Transition id of `transition` from the state labelled `current_state` (shutdown
    has one id per state it can leave)."""
    from lifecycle_msgs.msg import Transition

    if transition == "shutdown":
        ids = {"unconfigured": Transition.TRANSITION_UNCONFIGURED_SHUTDOWN,
               "inactive": Transition.TRANSITION_INACTIVE_SHUTDOWN, "active": Transition.TRANSITION_ACTIVE_SHUTDOWN}
    else:
        ids = {"configure": Transition.TRANSITION_CONFIGURE, "activate": Transition.TRANSITION_ACTIVATE,
               "deactivate": Transition.TRANSITION_DEACTIVATE, "cleanup": Transition.TRANSITION_CLEANUP}
        if transition not in ids:
            raise WarpdError(f"unknown transition {transition!r}; known: {', '.join(TRANSITIONS)}")
        return ids[transition]
    if current_state not in ids:
        raise WarpdError(f"no shutdown transition from state {current_state!r}")
    return ids[current_state]


class LifecycleClient:
    """Clients of one managed node's get_state/change_state, on `node`; `wait(future, timeout)` must
    return once the future is done (spinning or, with a node spun elsewhere, polling)."""

    def __init__(self, node, target: str, wait):
        from lifecycle_msgs.srv import ChangeState, GetState

        self.target = target.rstrip("/")
        self._wait = wait
        self._get = node.create_client(GetState, f"{self.target}/get_state")
        self._change = node.create_client(ChangeState, f"{self.target}/change_state")

    def _call(self, client, request, timeout: float):
        if not client.wait_for_service(timeout_sec=timeout):
            raise WarpdError(f"{client.srv_name} is not available: is {self.target} running, and a lifecycle node?",
                             "check the name with `ros2 node list`, and ROS_DOMAIN_ID")
        future = client.call_async(request)
        if not self._wait(future, timeout) or future.result() is None:
            raise WarpdError(f"{client.srv_name} did not answer within {timeout:g} s")
        return future.result()

    def state(self, timeout: float = 10.0) -> str:
        from lifecycle_msgs.srv import GetState

        return self._call(self._get, GetState.Request(), timeout).current_state.label

    def change(self, transition: str, timeout: float = 10.0) -> bool:
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        current = self.state(timeout) if transition == "shutdown" else ""
        request = ChangeState.Request(transition=Transition(id=transition_id(transition, current)))
        return bool(self._call(self._change, request, timeout).success)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("action", choices=("get", "set"), help="get: print the state; set: request a transition")
    parser.add_argument("node", help="the managed node's full name, e.g. /warpd_controller or /r1/warpd_controller")
    parser.add_argument("transition", nargs="?", choices=TRANSITIONS, help="with set: the transition to request")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the node (default 10)")
    parser.add_argument("--domain-id", type=parse_domain_id, default=None, help="ROS_DOMAIN_ID (default: inherit)")


def run(args: argparse.Namespace) -> int:
    if (args.action == "set") != (args.transition is not None):
        raise WarpdError("`set` needs a transition and `get` takes none",
                         f"e.g. warpd lifecycle set {args.node} activate")
    rclpy = require_ros()
    import os

    if args.domain_id is not None:
        os.environ["ROS_DOMAIN_ID"] = str(args.domain_id)
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node(f"warpd_lifecycle_{os.getpid()}", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)

    def wait(future, timeout):
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        return future.done()

    try:
        client = LifecycleClient(node, args.node if args.node.startswith("/") else "/" + args.node, wait)
        try:
            if args.action == "get":
                print(client.state(args.timeout))
                return 0
            before = client.state(args.timeout)
            ok = client.change(args.transition, args.timeout)
            after = client.state(args.timeout)
        except WarpdError as exc:
            print(f"warpd lifecycle: error: {exc}" + (f"\nwarpd lifecycle: hint: {exc.hint}" if exc.hint else ""))
            return 2
        print(f"{args.node}: {args.transition} {'succeeded' if ok else 'REFUSED'}: {before} -> {after}")
        if not ok:
            print("the node's log (and, for warpd_controller, ControllerStatus.mode_reason) says why")
        return 0 if ok else 1
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
