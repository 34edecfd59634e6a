"""`warpd train`: train WARPD (stage 1, then stage 2), or with `--policy dp` the Diffusion Policy
baseline, from a YAML config; resumable.

Rerunning the same command continues from the last saved training state. Under torchrun it trains
DDP replicas (gloo on CPU, nccl on CUDA):

    torchrun --nproc_per_node 2 -m warpd_core.commands.train --config config/train_reach_around.yaml
"""
from __future__ import annotations

import argparse

from warpd_core.commands.argtypes import config_override
from warpd_core.commands.standalone import standalone_main
from warpd_core.errors import WarpdError

HELP = "train WARPD (VAE + hypernetwork + world model, then latent diffusion) or --policy dp from a YAML config; resumable"
DEFAULT_CONFIG = "config/train_reach_around.yaml"
DEFAULT_CONFIGS = {"warpd": DEFAULT_CONFIG, "dp": "config/train_dp_reach_around.yaml"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", choices=sorted(DEFAULT_CONFIGS), default="warpd",
                        help="what to train: warpd (default) or dp, the Diffusion Policy baseline")
    parser.add_argument("--config", help="training config YAML (default "
                        + ", ".join(f"{p}: {c}" for p, c in DEFAULT_CONFIGS.items()) + ")")
    parser.add_argument("--set", dest="overrides", type=config_override, action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set stage1.steps=200 --set loss.ro=0 (repeatable)")
    parser.add_argument("--output", help="output directory (default: the config's `output`)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda / cuda:N where a GPU exists")
    parser.add_argument("--no-resume", action="store_true", help="start from scratch even if a training state exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def load_config(args):
    from warpd_core.policies.config_io import read_yaml
    from warpd_core.policies.dp.config import DPConfig
    from warpd_core.policies.warpd.config import TrainConfig

    policy = args.policy
    args.config = args.config or DEFAULT_CONFIGS[policy]
    raw = read_yaml(args.config)
    for path, value in args.overrides:
        node = raw
        for key in path[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise WarpdError(f"--set {'.'.join(path)}: {key} is not a section")
        node[path[-1]] = value
    if args.output:
        raw["output"] = args.output
    config_class = DPConfig if policy == "dp" else TrainConfig
    return config_class.from_dict(raw, source=args.config + (" with --set overrides" if args.overrides else ""))


def run(args) -> int:
    import torch

    if args.policy == "dp":
        from warpd_core.policies.dp.training import train
    else:
        from warpd_core.policies.warpd.training import train

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise WarpdError(f"--device {args.device} asked for, but torch sees no CUDA device", "use --device cpu")
    checkpoint = train(load_config(args), device=args.device, resume=not args.no_resume, progress=not args.quiet)
    print(f"checkpoint: {checkpoint}")
    print(f"loss curves: {checkpoint.parent / 'losses.png'} (CSV beside it)")
    return 0


main = standalone_main("warpd train", __doc__, add_arguments, run, __name__)
