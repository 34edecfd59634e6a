"""`warpd hil-check`: measure a running HIL graph against thresholds before a policy goes on a robot.

A real rclpy node (``warpd_hil_check``) in this process listens to the graph — joint states,
commands, ControllerStatus, PolicyWeights, task features — over a window of ``--duration``
seconds, and judges, side by side:

1. the joint-state rate and the largest gap between joint states;
2. state -> command latency: for each joint state, from when the driver sampled it (its header
   stamp) to the first command received after the state arrived here; with the state's age
   (stamp -> received) shown beside it, so a slow link and a slow controller are told apart;
3. loop timing: the controller's own period error (worst ControllerStatus window) and missed
   ticks over the window; as a cross-check, the intervals between commands as received here;
4. the share of status reports in which the controller drove the robot (RUN/SHADOW);
5. swap latency: for every PolicyWeights the planner published in the window, the time from its
   stamp to the first received command equal to what the new policy computes for the state the
   controller saw (its predecessor computing something else) — behaviour-neutral, it only
   watches the planner's own policies;
6. HOLD reaction (the driver emulator only): its ``drop_rate`` is set to 1 for ~1 s through the
   parameter service and the time from the last joint state to the first HOLD command (zeros; a position
   interface: the last measured position) is
   measured; the controller must then keep the robot still until states return.

Times come from the middleware (``received_timestamp`` of each sample, system clock) rather than
from when a Python callback ran, so this process's own scheduling hardly enters the numbers.
State and command streams are subscribed best effort and raw (no deserialisation while
measuring) so that watching does not load the graph.

Thresholds come from the ``warpd_hil_check`` entry of the config (config/hil.yaml), a ROS params
entry like the nodes' own. Exit status: 0 when every check passes (or is skipped), 1 when one
fails, 2 for usage or config errors, or when a node of a graph started here dies.

The package, one concern per module: ``thresholds`` (the checks and their limits), ``recorder``
(the rclpy node, its subscriptions, and the conversion of what it received into plain samples;
the only module that touches ROS), ``stats`` and ``analysis`` (pure numpy over those samples),
``faults`` (the fault test), ``measure`` (one measurement, in order), ``report`` (the verdict)
and ``cli`` (arguments, the emulated graph started through bringup, the exit status).
"""
from warpd_ros.hil_check.cli import HELP, add_arguments, run

__all__ = ["HELP", "add_arguments", "run"]
