"""Errors meant for people: a message that says what is wrong and a hint that says what to do.

The `warpd` CLI prints these as two short lines instead of a traceback; everything else that
escapes is a bug and keeps its traceback.
"""
from __future__ import annotations

import sys


class WarpdError(Exception):
    """A problem the user can fix (bad input, missing set-up), with an optional hint."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class PolicyValidationError(WarpdError, ValueError):
    """A generated policy that must not be run. `reason` is a short stable code for counting."""

    def __init__(self, reason: str, message: str, hint: str | None = None):
        super().__init__(message, hint)
        self.reason = reason


def print_error(prog: str, exc: WarpdError, file=None) -> None:
    """`PROG: error: ...` and, with a hint, `PROG: hint: ...`: how every warpd entry point reports
    a WarpdError (the `warpd` CLI, commands run on their own, the benchmarks)."""
    file = file or sys.stderr
    print(f"{prog}: error: {exc}", file=file)
    if exc.hint:
        print(f"{prog}: hint: {exc.hint}", file=file)
