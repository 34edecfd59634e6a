"""`warpd keygen`: create the shared key planners sign policies with and controllers verify them with.

Also the one rule bringup and hil-check follow for keys (:func:`provide_graph_keys`): when a graph
they start has both the signer (warpd_planner) and a verifier (warpd_controller) reading the same
key file and that file does not exist yet, they create it, since nothing has to be distributed when
both ends run here. Any other missing key is left to the node, which then stops with an error and
a `warpd keygen` hint.
"""
from __future__ import annotations

import argparse

import yaml

from warpd_core.runtime.signing import key_path, write_key_file

HELP = "create a random key (hex, mode 0600) for signing and verifying policies"
KEY_PARAM = "signing_key_file"
SIGNER, VERIFIER = "warpd_planner", "warpd_controller"
EPILOG = """\
The key is 32 random bytes from the OS, written as hex to a file only you can read (mode 0600).
Give the same file to the planner and the controller (parameter signing_key_file of both); with
require_signature: true the controller then runs only policies signed with it. Copy it to other
machines over a secure channel (scp), never through the ROS graph.

examples:
  warpd keygen                                     the key config/hil.yaml points at
  warpd keygen /etc/warpd/robot1.key
  warpd keygen --force ~/.config/warpd/policy_signing.key   replace a key (update both ends)"""


def default_key_file() -> str:
    """The key file config/hil.yaml gives the controller (so `warpd keygen` alone makes the HIL key)."""
    from warpd_ros.graph import default_config, read_params_file

    return read_params_file(default_config("hil")).get(VERIFIER, {}).get(KEY_PARAM, "")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("path", nargs="?", default=None,
                        help="key file to write (default: warpd_controller.signing_key_file of config/hil.yaml)")
    parser.add_argument("--force", action="store_true", help="replace an existing key file")


def run(args: argparse.Namespace) -> int:
    path = args.path or default_key_file()
    written = write_key_file(path, force=args.force)
    print(f"wrote a new policy signing key to {written} (mode 0600)")
    print(f"set signing_key_file: {path} for warpd_planner and warpd_controller")
    return 0


def provide_graph_keys(specs, overrides=(), say=print) -> list:
    """Create the key files a graph about to start needs and nobody else has to share; their paths.

    `specs` are the graph's NodeSpecs; `overrides` the (node, param, value) --set triples, which win.
    A key is created only when the signer and a verifier of this graph both use that missing path.
    """
    users: dict[str, set] = {}
    for spec in specs:
        value = spec.parameters.get(KEY_PARAM, "")
        for node, param, text in overrides:
            if node == spec.name and param == KEY_PARAM:
                value = yaml.safe_load(text)
        if value:
            users.setdefault(str(value), set()).add(spec.name)
    created = []
    for path, nodes in users.items():
        if {SIGNER, VERIFIER} <= nodes and not key_path(path).exists():
            created.append(write_key_file(path))
            say(f"created policy signing key {created[-1]} (mode 0600) for {', '.join(sorted(nodes))}; "
                f"a planner on another machine needs a copy")
    return created
