"""Running a command module on its own (`python -m warpd_core.commands.train`, or under torchrun)
with the same help and error reporting as `warpd COMMAND`: one place, so they cannot drift."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from warpd_core.errors import WarpdError


def standalone_main(prog: str, description: str, add_arguments: Callable[[argparse.ArgumentParser], None],
                    run: Callable[[argparse.Namespace], int], argv=None) -> int:
    """Parse `argv`, run the command; a WarpdError becomes `error:`/`hint:` lines and exit code 2."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except WarpdError as exc:
        print(f"{prog}: error: {exc}" + (f"\n{prog}: hint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 2
