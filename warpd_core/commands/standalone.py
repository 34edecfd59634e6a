"""Running a command module on its own (`python -m warpd_core.commands.train`, or under torchrun)
with the same help and error reporting as `warpd COMMAND`: one place, so they cannot drift."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from warpd_core.errors import WarpdError, print_error


def standalone_main(prog: str, description: str, add_arguments: Callable[[argparse.ArgumentParser], None],
                    run: Callable[[argparse.Namespace], int], module: str) -> Callable[..., int]:
    """A `main(argv=None)` that parses `argv` and runs the command; a WarpdError becomes
    `error:`/`hint:` lines and exit code 2. `module` is the caller's __name__: when that is
    "__main__" (python -m, torchrun) the command runs now and the process exits with its status."""
    def main(argv=None) -> int:
        parser = argparse.ArgumentParser(prog=prog, description=description,
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
        add_arguments(parser)
        args = parser.parse_args(argv)
        try:
            return run(args)
        except WarpdError as exc:
            print_error(prog, exc)
            return 2
    if module == "__main__":
        sys.exit(main())
    return main
