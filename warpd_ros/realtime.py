"""Opt-in real-time scheduling for a node process: SCHED_FIFO, CPU affinity, locked memory.

Why: on a stock kernel a 1 kHz loop shares the CPU with everything else; a planner sampling
diffusion or a sim stepping MuJoCo on the same core delays ticks by milliseconds. SCHED_FIFO makes
the control process preempt every normal (SCHED_OTHER) process, pinning keeps its caches warm and
away from noisy cores, and mlockall keeps page faults out of the loop.

It is applied to every thread of the process (Linux schedules threads, and rclpy's executor and
the DDS transport run on threads of their own), so call it once the node and executor exist.
It needs CAP_SYS_NICE (root, or `ulimit -r` / limits.conf rtprio for the user) and, for locking
memory, a large enough RLIMIT_MEMLOCK; when the OS refuses, the node keeps running without it
and says why (the caller logs it and reports it in diagnostics).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from dataclasses import dataclass, field

MCL_CURRENT, MCL_FUTURE = 1, 2


@dataclass
class RealtimeReport:
    """What was asked for and what the OS granted, for logs and diagnostics."""

    applied: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = self.applied + [f"FAILED {f}" for f in self.failed]
        return "; ".join(parts) if parts else "off"


def _thread_ids() -> list[int]:
    try:
        return sorted(int(t) for t in os.listdir("/proc/self/task"))
    except OSError:  # not Linux: only the calling thread
        return [0]


def apply_realtime(priority: int = 0, cpus: list[int] | tuple[int, ...] = (), lock_memory: bool = False,
                   ) -> RealtimeReport:
    """Apply SCHED_FIFO `priority` (1..98; 0 = leave the scheduler alone), pin to `cpus` (empty =
    leave alone) and mlockall when `lock_memory`, to every thread of this process. Never raises for
    what the OS refuses; the report says what happened."""
    report = RealtimeReport()
    if not 0 <= int(priority) <= 98:
        raise ValueError(f"realtime priority must be 0 (off) or 1..98, got {priority}")
    available = os.sched_getaffinity(0)
    bad = [c for c in cpus if c not in available]
    if bad:
        raise ValueError(f"cpu_affinity {list(cpus)}: CPUs {bad} are not available to this process "
                         f"(available: {sorted(available)})")
    tids = _thread_ids()
    if priority:
        refused = []
        for tid in tids:
            try:
                os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(int(priority)))
            except ProcessLookupError:  # the thread ended meanwhile
                continue
            except OSError as exc:
                refused.append(f"{tid}: {exc.strerror}")
        if refused:
            report.failed.append(f"SCHED_FIFO {priority} on {len(refused)}/{len(tids)} threads ({refused[0]}; "
                                 "needs CAP_SYS_NICE or an rtprio limit)")
        else:
            report.applied.append(f"SCHED_FIFO {priority} on {len(tids)} threads")
    if cpus:
        try:
            for tid in tids:
                try:
                    os.sched_setaffinity(tid, set(cpus))
                except ProcessLookupError:
                    continue
            report.applied.append(f"pinned to CPUs {sorted(set(cpus))}")
        except OSError as exc:
            report.failed.append(f"CPU affinity {sorted(set(cpus))} ({exc.strerror})")
    if lock_memory:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.mlockall(MCL_CURRENT | MCL_FUTURE) == 0:
            report.applied.append("memory locked (mlockall)")
        else:
            err = ctypes.get_errno()
            report.failed.append(f"mlockall ({errno.errorcode.get(err, err)}: raise RLIMIT_MEMLOCK / memlock in "
                                 "limits.conf)")
    return report
