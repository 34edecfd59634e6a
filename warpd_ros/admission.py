"""Policy admission: a received PolicyWeights message -> a policy the controller may run, or a reason.

Outside the node module so the fuzz tests, the fuzz benchmark and hil-check call exactly what the
controller calls without importing (and starting the set-up of) a node.
"""
from __future__ import annotations

from warpd_core.runtime.signing import PolicyVerifier
from warpd_core.runtime.swap import ActivePolicy, ControllerSpec, check_policy
from warpd_ros.conversions import msg_to_policy


def admit_policy(msg, spec: ControllerSpec, now_ns: int, last_accepted: dict,
                 verifier: PolicyVerifier) -> ActivePolicy:
    """A received PolicyWeights as a policy ready to run, or PolicyValidationError with a reason code.

    The conversion is done without validation: check_policy authenticates first, then validates, so
    nothing of an unauthenticated message is interpreted.
    """
    policy = msg_to_policy(msg, validate=False)
    check_policy(policy, spec, now_ns, last_accepted, verifier)
    return ActivePolicy.from_policy(policy)
