"""One measurement, in order: wait for the graph to drive, learn the controller's settings, find
the emulator, warm up, record the window, run the fault test, then analyse what was recorded.

Every step that talks to the graph goes through the recorder (its `Session`); the numbers come
from the pure analysis over the recording converted to plain samples.
"""
from __future__ import annotations

import argparse
import time

from warpd_ros.hil_check.analysis import analyse
from warpd_ros.hil_check.faults import fault_test, find_emulator, not_tested
from warpd_ros.hil_check.recorder import controller_settings, driving, to_samples

READY_TIMEOUT_S = 60.0  # the planner loads torch and a checkpoint: seconds, more on a busy machine
WARM_UP_S = 1.0  # after the controller drives: multi-process start-ups may stall a subscriber once
MIN_SINCE_START_S = 2.0  # ... in the first 2 s after this process's node appeared


def measure(session, args: argparse.Namespace, config_params: dict) -> dict:
    """Wait for the graph to drive, measure the window, run the fault test; the analysed numbers."""
    rec = session.rec
    print(f"warpd hil-check: waiting for joint states, commands and a driving controller (up to {READY_TIMEOUT_S:g} s)")
    ready = session.spin_for(READY_TIMEOUT_S, until=lambda: bool(
        rec.states and rec.commands and rec.statuses and driving(rec.statuses[-1][1])))
    notes = []
    if not ready:
        missing = [what for what, got in (("joint states", rec.states), ("commands", rec.commands),
                                          ("controller status", rec.statuses)) if not got]
        notes.append(f"not ready after {READY_TIMEOUT_S:g} s (" + (f"no {', '.join(missing)}" if missing else
                                                                  "the controller never drove") + "); measured anyway")
        print(f"warpd hil-check: {notes[-1]}")
    # asking the nodes for parameters creates service clients: discovery traffic, done before the warm-up
    controller = controller_settings(session, config_params)
    emulator = find_emulator(session)
    warm = max(WARM_UP_S, MIN_SINCE_START_S - (time.time_ns() - session.started_ns) * 1e-9)
    session.spin_for(warm)

    print(f"warpd hil-check: measuring for {args.duration:g} s")
    t0, cpu0 = time.time_ns(), time.process_time()
    session.spin_for(args.duration)
    t1, cpu1 = time.time_ns(), time.process_time()

    if not args.fault_test:
        fault = not_tested("not tested (--no-fault-test)")
    elif emulator is None:
        fault = not_tested("not tested (needs the emulator)")
    else:
        fault = fault_test(session, emulator)
    measured = analyse(to_samples(rec, controller["joint_names"]), t0, t1, controller, fault)
    measured["notes"] = notes + measured.get("notes", [])
    measured["emulator"] = emulator
    measured["hil_check_cpu_share"] = (cpu1 - cpu0) / ((t1 - t0) * 1e-9)  # of one core: what watching costs
    return measured
