"""The joint-limit parameters, declared the same way wherever a node limits joint commands.

warpd_controller limits every command it publishes; warpd_sim can limit the commands it executes, as a
robot's own rate limiter does (libfranka's, a ros2_control joint_limits interface), so demonstrations
recorded through the sim obey the same envelope the controller enforces at deployment. Both nodes read
the same five parameters with the same meaning, checks and defaults (inf = no limit): one home here.
They are read-only: the safety envelope is fixed at start, so nobody on the graph can widen it through the
(unauthenticated, without SROS2) parameter services; the controller's action_limit stays live inside it.
"""
from __future__ import annotations

from warpd_core.runtime.command_limits import JointLimits
from warpd_ros.params import Param

INF = float("inf")

LIMIT_PARAMS = [
    Param("position_lower", [-INF], "Lowest joint position per joint (one value = every joint; -inf = "
          "none). Commands never drive a joint below it.", read_only=True),
    Param("position_upper", [INF], "Highest joint position per joint (one value = every joint; inf = "
          "none).", read_only=True),
    Param("velocity_limit", [INF], "|joint velocity| limit per joint, > 0 (one value = every joint; "
          "inf = none). Position interface: how fast a target may move.", read_only=True),
    Param("acceleration_limit", [INF], "|change of the commanded velocity| per second, per joint, > 0 "
          "(one value = every joint; inf = none). Not applied to HOLD: stopping is immediate.", read_only=True),
    Param("effort_limit", [INF], "Effort limit per joint, > 0; reported only: commands are velocities or "
          "positions, set it in the robot's driver.", read_only=True),
]
LIMIT_NAMES = tuple(p.name for p in LIMIT_PARAMS)


def validate_limit(name: str, value) -> str | None:
    """Why a limit parameter's value is refused, or None (also None for parameters that are not limits)."""
    if name not in LIMIT_NAMES:
        return None
    values = list(value)
    if not values or any(v != v for v in values):  # NaN != NaN
        return "needs at least one value and no NaN"
    if name not in ("position_lower", "position_upper") and not all(v > 0 for v in values):
        return "every value must be > 0 (inf = no limit)"
    return None


def limits_from_params(joint_names, values: dict) -> JointLimits:
    """JointLimits from the five parameters' values (ValueError says what does not fit the joints)."""
    return JointLimits.create(joint_names, **{k: values[k] for k in LIMIT_NAMES})
