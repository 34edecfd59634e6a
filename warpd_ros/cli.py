"""The `warpd` command: one entry point for every warpd_ros tool.

Each subcommand lives in its own module with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; this file only wires them up and turns user-facing errors (WarpdError)
into two readable lines instead of a traceback. Modules import rclpy lazily, so `--help` and the
commands that need no ROS work in any Python.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from warpd_core.errors import WarpdError, print_error
from warpd_ros.ros_env import SETUP_HINT

# name -> module; order is the order in `warpd --help`.
COMMANDS = {
    "demo": "warpd_ros.demo",
    "doctor": "warpd_ros.doctor",
    "roundtrip": "warpd_ros.roundtrip",
    "bringup": "warpd_ros.bringup",
    "hil-check": "warpd_ros.hil_check",
    "lifecycle": "warpd_ros.lifecycle",
    "keygen": "warpd_ros.keygen",
    "collect": "warpd_core.commands.collect",
    "import-bag": "warpd_core.commands.import_bag",
    "record-bag": "warpd_ros.record_bag",
    "plot-demos": "warpd_core.commands.plot_demos",
    "train": "warpd_core.commands.train",
    "sample": "warpd_core.commands.sample",
    "rollout": "warpd_core.commands.rollout",
    "eval": "warpd_core.commands.eval",
    "eval-bag": "warpd_core.commands.eval_bag",
    "bench": "warpd_core.commands.bench",
}

DESCRIPTION = """\
warpd_ros: WARPD (World model Assisted Reactive Policy Diffusion) on ROS 2.

A diffusion planner samples a latent, a hypernetwork turns it into the weights of a small MLP
policy, and a high-rate controller runs that MLP in closed loop, swapping in new policies
atomically as they arrive on the PolicyWeights topic."""

EPILOG = """\
examples:
  warpd doctor                 is everything installed, and is DDS kept on this machine?
  warpd roundtrip --count 10   send 10 policies between two processes and time them

`warpd COMMAND --help` explains each command."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="warpd", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # e.g. numpy missing outside the venv: say so when it is used
            cmd = sub.add_parser(name, help="(unavailable in this Python: run `warpd doctor`)")
            cmd.set_defaults(_run=_unavailable(name, exc), _accepts_any=True)
            continue
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP[0].upper() + module.HELP[1:] + ".")
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def _unavailable(name: str, exc: ImportError):
    def run(_args):
        raise WarpdError(f"`warpd {name}` cannot run in this Python ({sys.executable}): {exc}", SETUP_HINT)
    return run


def main(argv=None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "_accepts_any", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except WarpdError as exc:
        print_error(f"warpd {args.command}", exc)
        return 2
    except KeyboardInterrupt:
        print(f"warpd {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
