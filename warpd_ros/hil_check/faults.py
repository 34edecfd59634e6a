"""The fault test: cut the driver emulator's joint states for a second and restore them, so the
analysis can time the controller's HOLD. Only the emulator is ever cut (a real driver is not).

It talks to the graph through a recorder `Session` (parameter calls) and returns plain ns times.
"""
from __future__ import annotations

import time

from warpd_core.errors import WarpdError

FAULT_S = 1.0  # how long the emulator sends no joint states in the fault test
RECOVER_S = 0.5  # after the fault: states must come back


def find_emulator(session) -> str | None:
    """The node publishing joint states, if it is warpd_driver_emulator (it has a drop_rate parameter)."""
    for node_name in session.publisher_nodes("joint_states"):
        values = session.get_parameters(node_name, ["drop_rate", "latency_s"])
        if isinstance(values.get("drop_rate"), float) and isinstance(values.get("latency_s"), float):
            return node_name
    return None


def not_tested(why: str) -> dict:
    return {"tested": False, "why": why}


def fault_test(session, emulator: str) -> dict:
    """Cut the emulator's joint states (drop_rate 1) for FAULT_S, then restore them.

    Returns {"tested", "why"} and, when tested, the times (ns) of the cut request and its answer,
    the restore request and its answer, and the end of the recovery.
    """
    original = session.get_parameters(emulator, ["drop_rate"]).get("drop_rate")
    if original is None:
        return not_tested(f"not tested ({emulator} did not report its drop_rate)")
    print(f"warpd hil-check: fault test: no joint states from {emulator} for {FAULT_S:g} s")
    cut = time.time_ns()
    error = session.set_parameter(emulator, "drop_rate", 1.0)
    if error:
        return not_tested(f"not tested ({error})")
    cut_done = time.time_ns()
    restore = None
    try:
        session.spin_for(FAULT_S)
    finally:
        restore = time.time_ns()
        error = session.set_parameter(emulator, "drop_rate", float(original))
    if error:
        raise WarpdError(f"could not restore {emulator}'s drop_rate to {original}: {error}")
    restored = time.time_ns()
    session.spin_for(RECOVER_S)
    return {"tested": True, "why": "", "cut_ns": cut, "cut_done_ns": cut_done, "restore_ns": restore,
            "restored_ns": restored, "end_ns": time.time_ns()}
