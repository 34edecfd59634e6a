"""The training loop every policy shares, free of any one policy's specifics: run set-up
(distributed context, output directory, seeds, datasets, resuming), the optimisation steps,
the checkpoint cadence of the resumable train state, progress bars and loss curves.

A policy's own training module (policies/<family>/training.py) supplies the model, its
optimiser and the loss of one step.
"""
from __future__ import annotations

import enum
import math
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, NamedTuple

import torch
import yaml

from warpd_core.training.curves import CurveLog
from warpd_core.training.datasets import ensure_datasets
from warpd_core.training.distributed import DistContext, setup, teardown
from warpd_core.training.train_state import load_train_state, save_train_state

class Stage(enum.IntEnum):
    """Where a training run is; train_state stores it as an int, so states saved before this load."""

    STAGE1 = 1  # WARPD: encoder + hypernetwork + world model (L_BC + L_RO + L_TF + L_KL); DP: its one stage
    STAGE2 = 2  # WARPD: the latent diffusion model
    DONE = 3  # every stage finished



def batch_index(config, stage: Stage, step: int, rank: int, n: int, size: int) -> torch.Tensor:
    """Batch indices that depend only on (seed, stage, step, rank): resuming replays the same batches."""
    gen = torch.Generator().manual_seed(((config.seed * 7 + stage) * 1_000_003 + step) * 101 + rank)
    return torch.randint(0, n, (size,), generator=gen)


def train_loop(stage, cfg, start, step_fn, optimizer, params, ctx, out, progress, log_columns, model,
               name: str | None = None):
    """The optimisation loop every policy shares: step, clip, log, save a resumable state.

    `cfg` holds steps, log_every, checkpoint_every and optionally grad_clip; `step_fn(step)` returns
    a dict of losses with "total". Curves go to out/losses_<name>.csv (name defaults to stage<N>),
    and the train state records `stage` so a resumed run knows where it was.
    """
    from tqdm import tqdm

    name, steps = name or f"stage{int(stage)}", cfg.steps
    curve = CurveLog(out / f"losses_{name}.csv", [*log_columns, "seconds"], resume_from_step=start) \
        if ctx.is_main else None
    began = time.perf_counter()
    bar = tqdm(range(start, steps), initial=start, total=steps, desc=name.replace("stage", "stage "), unit="step",
               disable=not (progress and ctx.is_main), dynamic_ncols=True)
    cosine, ema_decay = getattr(cfg, "lr_schedule", "constant") == "cosine", getattr(cfg, "ema_decay", 0.0)
    for step in bar:
        if cosine:  # a function of the step alone, so a resumed run continues the same schedule
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(cfg.lr, step, steps)
        losses = step_fn(step)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        if getattr(cfg, "grad_clip", 0):
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        if ema_decay:
            update_ema(optimizer, ema_decay)
        if curve and (step % cfg.log_every == 0 or step == steps - 1):
            values = {k: float(losses[k].detach()) for k in log_columns}
            curve.add(step, {**values, "seconds": time.perf_counter() - began})
            bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()})
        if ctx.is_main and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < steps:
            save_train_state(out / "train_state.safetensors", model, optimizer, stage, step + 1)


def cosine_lr(base: float, step: int, steps: int) -> float:
    """Cosine decay from `base` at step 0 to 0 at `steps`."""
    return base * 0.5 * (1.0 + math.cos(math.pi * step / steps))


@torch.no_grad()
def update_ema(optimizer: torch.optim.Optimizer, decay: float) -> None:
    """Exponential moving average of every parameter, kept in the optimiser's state ("ema") so the
    resumable train state saves and restores it with the moments. Why: one set of late weights of a
    small diffusion model varies from run to run (reach_around's far share: 32-51% over five runs); their
    average varies less (48-55% over four)."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state[param]
            if "ema" not in state:
                state["ema"] = param.detach().clone()
            else:
                state["ema"].lerp_(param.detach(), 1.0 - decay)


@torch.no_grad()
def use_ema(optimizer: torch.optim.Optimizer) -> None:
    """Replace every parameter by its moving average (at the end of a stage trained with ema_decay)."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            if "ema" in optimizer.state[param]:
                param.copy_(optimizer.state[param]["ema"])


@contextmanager
def training_run(config, device: str):
    """What every training run needs around its loop: the (distributed) context and the output
    directory, with denormals flushed while it trains. Denormal floats (tiny activations/gradients
    late in training) run ~3x slower on x86 CPUs and flushing them changes nothing a float32 model can
    represent usefully; the setting is process-wide, so it is restored for whoever called train()."""
    ctx = setup(device)
    try:
        out = Path(config.output)
        out.mkdir(parents=True, exist_ok=True)
        torch.set_flush_denormal(True)
        yield ctx, out
    finally:
        torch.set_flush_denormal(False)
        teardown(ctx)


class RunStart(NamedTuple):
    model: torch.nn.Module
    data: object  # what `build` returned beside the model (windows, chunk samples)
    state_path: Path
    stage: Stage
    start: int  # step to continue from within `stage`
    optimizer: torch.optim.Optimizer | None  # restored when resumed, else None
    from_state: bool  # a training state was found and loaded


def start_run(config, ctx: DistContext, out: Path, build: Callable, make_optimizer: Callable, resume: bool,
              first_stage: Stage) -> RunStart:
    """Build the model on the configured datasets (identical init on every replica, per-replica noise
    after), save the resolved config, and pick up the training state when `resume` finds one."""
    torch.manual_seed(config.seed)
    model, data = build(config, ensure_datasets(config, ctx))
    model.to(ctx.device)
    torch.manual_seed(config.seed + 1000 * ctx.rank)  # per-replica noise; init above is identical
    if ctx.is_main:
        (out / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    state_path = out / "train_state.safetensors"
    if resume and state_path.exists():
        stage, start, optimizer = load_train_state(state_path, model,
                                                   lambda s: make_optimizer(model, config, Stage(s)))
        return RunStart(model, data, state_path, Stage(stage), start, optimizer, True)
    return RunStart(model, data, state_path, Stage(first_stage), 0, None, False)
