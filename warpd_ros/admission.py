"""Policy admission: a received PolicyWeights message -> a policy the controller may run, or a reason.

Outside the node module so the fuzz tests, the fuzz benchmark and hil-check call exactly what the
controller calls without importing (and starting the set-up of) a node.
"""
from __future__ import annotations

from warpd_core.errors import PolicyValidationError
from warpd_core.runtime.compute_budget import REASON_COMPUTE, ComputeBudget
from warpd_core.runtime.signing import PolicyVerifier
from warpd_core.runtime.swap import ActivePolicy, ControllerSpec, check_policy
from warpd_ros.conversions import msg_to_policy


def admit_policy(msg, spec: ControllerSpec, now_ns: int, last_accepted: dict,
                 verifier: PolicyVerifier, budget: ComputeBudget | None = None) -> ActivePolicy:
    """A received PolicyWeights as a policy ready to run, or PolicyValidationError with a reason code.

    First the `budget`, from the layer sizes alone: a policy whose forward would not fit the control
    period is refused (over_compute_budget) before its weights are converted or checked, so an
    oversized one costs the loop as little as possible (the sizes are only read to refuse, never to
    run). Then the conversion, without validation: check_policy authenticates first, then validates,
    so nothing of an unauthenticated message is interpreted for running it.
    """
    if budget is not None:
        sizes = [int(n) for n in msg.layer_sizes]
        why = budget.refusal(sizes) if len(sizes) >= 2 and min(sizes) > 0 else None  # malformed: check_policy says
        if why is not None:
            raise PolicyValidationError(REASON_COMPUTE, why, "plan smaller policies, lower control_rate_hz, or "
                                                             "raise compute_budget if this host has the headroom")
    policy = msg_to_policy(msg, validate=False)
    check_policy(policy, spec, now_ns, last_accepted, verifier)
    return ActivePolicy.from_policy(policy)
