"""`warpd bench`: run the project's benchmarks and regenerate BENCHMARKS.md.

The benchmarks and their runner live in the checkout's bench/ folder, not in the installed
packages; this command runs that runner (`python -m bench`, from the repository root) in a child
process with the same arguments. See bench/__main__.py for what it does.

    warpd bench --list
    warpd bench --only conversion,policy_forward
    warpd bench --quick --only training_time --out /tmp/B.md
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from warpd_core.commands.argtypes import name_list
from warpd_core.errors import WarpdError

HELP = "run every benchmark of the project (or --only some) and regenerate BENCHMARKS.md with plots"
QUICK_OUT = "runs/bench_quick.md"


def add_arguments(parser, names=name_list) -> None:
    """The options of `warpd bench` and `python -m bench` (which passes a `names` type that knows
    the benchmarks)."""
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--only", type=names, metavar="NAME,...", help="run only these benchmarks")
    parser.add_argument("--skip", type=names, metavar="NAME,...", help="run all but these benchmarks")
    parser.add_argument("--quick", action="store_true",
                        help=f"short smoke-test versions; written to {QUICK_OUT} unless --out is given")
    parser.add_argument("--out", type=Path, metavar="FILE",
                        help="write the sections to FILE instead of BENCHMARKS.md (and draw no plots)")


def check_selection(args) -> None:
    if args.only and args.skip:
        raise WarpdError("--only and --skip do not go together", "use one of them")


def absolute_out(args) -> Path | None:
    """--out as given, relative to where the command was started (the runner's cwd is the repo)."""
    return None if args.out is None else args.out if args.out.is_absolute() else Path.cwd() / args.out


def run_child(cmd: list[str], cwd: Path) -> int:
    """Run `cmd` with its output passing straight through; its exit code. On Ctrl-C the child got
    the same SIGINT: it is given time to stop cleanly before the interrupt goes on."""
    proc = subprocess.Popen(cmd, cwd=cwd)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise


def repo_root() -> Path:
    """The source checkout the benchmarks live in (they are not part of the installed packages)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "bench" / "__main__.py").is_file():
        raise WarpdError(f"no bench/ folder next to warpd_core ({root})",
                         "`warpd bench` runs the benchmarks of a source checkout: run it from one, installed "
                         "editable (scripts/setup.sh), or run `python -m bench` in the repository root")
    return root


def run(args) -> int:
    check_selection(args)
    root = repo_root()
    out = absolute_out(args)
    argv = [*(["--list"] if args.list else []), *(["--quick"] if args.quick else []),
            *(["--only", ",".join(args.only)] if args.only else []),
            *(["--skip", ",".join(args.skip)] if args.skip else []), *(["--out", str(out)] if out else [])]
    code = run_child([sys.executable, "-m", "bench", *argv], root)
    if code == 2:  # the runner's usage error (e.g. an unknown benchmark name), already printed: ours too
        raise SystemExit(2)
    return code
