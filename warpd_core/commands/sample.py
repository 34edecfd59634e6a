"""`warpd sample`: generate the weights of one closed-loop policy for a state and task, to a file.

The state is either given (--state) or taken from a task episode's start (--episode-seed). The
file (safetensors + JSON metadata) holds everything the controller needs: architecture, flat
weights in the PolicyWeights layout, normalisation, the latent, and provenance.
"""
from __future__ import annotations

import numpy as np

from warpd_core.commands.argtypes import float_array, non_negative_int, positive_int
from warpd_core.errors import WarpdError

HELP = "generate one policy's weights from a checkpoint for a given state/task and write them to a file"


def add_arguments(parser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a checkpoint.safetensors written by `warpd train`")
    parser.add_argument("--task", help="task to plan for (default: the checkpoint's first task)")
    state = parser.add_mutually_exclusive_group(required=True)
    state.add_argument("--state", type=float_array, metavar="V1,V2,...", help="the raw observation to plan from")
    state.add_argument("--episode-seed", type=non_negative_int, metavar="SEED",
                       help="plan from the initial observation of the task's episode with this seed")
    parser.add_argument("--out", required=True, help="policy file to write (.safetensors)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="diffusion sampling seed (default 0)")
    parser.add_argument("--steps", type=positive_int, help="denoising steps (default: the checkpoint's config)")
    parser.add_argument("--sampler", choices=("ddim", "dpm"), help="sampler (default: the checkpoint's config)")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance scale (default: config)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")


def run(args) -> int:
    from warpd_core.policies.warpd.checkpoint import load_checkpoint
    from warpd_core.policies.warpd.planner import Planner
    from warpd_core.runtime.policy_file import save_policy

    model = load_checkpoint(args.checkpoint, args.device)
    task = args.task or model.task_names[0]
    if args.state is not None:
        obs = args.state
        if obs.size != len(model.obs_names):
            raise WarpdError(f"--state has {obs.size} values; this checkpoint observes {len(model.obs_names)}: "
                             + ", ".join(model.obs_names))
    else:
        from warpd_core.tasks.registry import make_task

        obs = make_task(task).reset(args.episode_seed)
    planner = Planner(model, task, steps=args.steps, guidance_scale=args.guidance, sampler=args.sampler,
                      seed=args.seed, planner_id="warpd_sample", device=args.device)
    policy = planner.generate(obs)
    path = save_policy(policy, args.out)
    arch = policy.architecture
    print(f"policy for task {task} from state [{', '.join(f'{v:.3f}' for v in obs)}]")
    print(f"  MLP {list(arch.layer_sizes)} ({arch.activation}), {policy.weights.size} weights, "
          f"latent {np.round(policy.latent[:4], 3).tolist()}...")
    print(f"  written to {path}")
    return 0
