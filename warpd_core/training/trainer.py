"""`warpd train`: stage 1 (VAE + hypernetwork + world model), then stage 2 (latent diffusion).

Resumable: the whole training state is saved every `checkpoint_every` steps and picked up again
by the same command. Works alone or under torchrun (DDP, one replica per process). Writes to
`config.output`: checkpoint.safetensors (what the planner loads), losses_stage{1,2}.csv,
losses.png, config.yaml (the resolved config) and train_state.safetensors (for resuming).
"""
from __future__ import annotations

import argparse
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
import yaml

from warpd_core.errors import WarpdError
from warpd_core.policies.warpd.checkpoint import save_checkpoint
from warpd_core.policies.warpd.config import TrainConfig
from warpd_core.policies.warpd.latent_diffusion import diffusion_loss, training_scheduler
from warpd_core.policies.warpd.modeling import WarpdModel
from warpd_core.policies.warpd.stage1 import LOSS_NAMES
from warpd_core.training.curves import CurveLog, plot_curves
from warpd_core.training.distributed import DistContext, setup, teardown
from warpd_core.training.train_state import load_train_state, save_train_state
from warpd_core.training.windows import Windows, demonstrations, make_windows

DONE = 3  # "stage" recorded once both stages have finished


def ensure_datasets(config, ctx: DistContext) -> list:
    """Open the dataset of every configured task (config.data.task_list), collecting a missing one
    with the scripted expert first. One task: [the dataset at data.path]."""
    from warpd_core.data.reader import Dataset

    data = config.data
    for task in data.task_list:
        path = data.dataset_path(task)
        if not (path / "dataset.json").exists() and ctx.is_main:
            from warpd_core.commands import collect

            parser = argparse.ArgumentParser()
            collect.add_arguments(parser)
            args = parser.parse_args(["--task", task, "--episodes", str(data.episodes), "--out", str(path),
                                      "--seed", str(data.seed), "--hold-steps", str(data.hold_steps)])
            print(f"[train] no dataset at {path}: collecting {data.episodes} expert episodes of {task} first")
            if collect.run(args) != 0:
                raise WarpdError(f"collecting the dataset at {path} failed")
    ctx.barrier()
    datasets = [Dataset.open(data.dataset_path(task)) for task in data.task_list]
    first = datasets[0].info
    for dataset in datasets[1:]:  # one model, one observation/action layout
        if (dataset.info.obs_names, dataset.info.action_names) != (first.obs_names, first.action_names):
            raise WarpdError(f"datasets {datasets[0].path} and {dataset.path} have different observation or "
                             "action names", "multitask training needs tasks with the same observation and "
                             "action layout")
    return datasets


def batch_index(config: TrainConfig, stage: int, step: int, rank: int, n: int, size: int) -> torch.Tensor:
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

    name, steps = name or f"stage{stage}", cfg.steps
    curve = CurveLog(out / f"losses_{name}.csv", [*log_columns, "seconds"], resume_from_step=start) \
        if ctx.is_main else None
    began = time.perf_counter()
    bar = tqdm(range(start, steps), initial=start, total=steps, desc=name.replace("stage", "stage "), unit="step",
               disable=not (progress and ctx.is_main), dynamic_ncols=True)
    for step in bar:
        losses = step_fn(step)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        if getattr(cfg, "grad_clip", 0):
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        if curve and (step % cfg.log_every == 0 or step == steps - 1):
            values = {k: float(losses[k].detach()) for k in log_columns}
            curve.add(step, {**values, "seconds": time.perf_counter() - began})
            bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()})
        if ctx.is_main and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < steps:
            save_train_state(out / "train_state.safetensors", model, optimizer, stage, step + 1)


def train_stage1(model: WarpdModel, windows: Windows, optimizer, start, ctx, config, out, progress):
    stage1 = ctx.wrap(model.stage1)
    cfg = config.stage1

    def step_fn(step):
        index = batch_index(config, 1, step, ctx.rank, len(windows), cfg.batch_size)
        return stage1(*(t.to(ctx.device) for t in windows.batch(index)))

    model.stage1.train()
    train_loop(1, cfg, start, step_fn, optimizer, list(model.stage1.parameters()), ctx, out, progress,
               ["total", *LOSS_NAMES], model)


@torch.no_grad()
def encode_latents(model: WarpdModel, windows: Windows, device, batch: int = 4096) -> torch.Tensor:
    """The mean latent of every window (the targets of stage 2)."""
    model.stage1.eval()
    parts = [model.stage1.encoder(windows.states[i:i + batch].to(device), windows.actions[i:i + batch].to(device))[0]
             for i in range(0, len(windows), batch)]
    return torch.cat(parts)


def train_stage2(model: WarpdModel, windows: Windows, optimizer, start, ctx, config, out, progress):
    latents = encode_latents(model, windows, ctx.device)
    if start == 0:  # on resume the statistics come back with the model's buffers
        model.latent_mean.copy_(latents.mean(0))
        model.latent_std.copy_(latents.std(0).clamp_min(1e-4))
    z_unit = (latents - model.latent_mean) / model.latent_std
    states0, task_ids = windows.states[:, 0].to(ctx.device), windows.task_ids.to(ctx.device)
    denoiser, scheduler, cfg = ctx.wrap(model.denoiser), training_scheduler(config.diffusion), config.stage2

    def step_fn(step):
        index = batch_index(config, 2, step, ctx.rank, len(windows), cfg.batch_size).to(ctx.device)
        loss = diffusion_loss(denoiser, scheduler, z_unit[index], states0[index], task_ids[index],
                              config.diffusion.cond_dropout)
        return {"total": loss}

    model.denoiser.train()
    train_loop(2, cfg, start, step_fn, optimizer, list(model.denoiser.parameters()), ctx, out, progress,
               ["total"], model)


def make_optimizer(model: WarpdModel, config: TrainConfig, stage: int) -> torch.optim.Optimizer:
    if stage == 1:
        return torch.optim.AdamW(model.stage1.parameters(), lr=config.stage1.lr, weight_decay=config.stage1.weight_decay)
    return torch.optim.AdamW(model.denoiser.parameters(), lr=config.stage2.lr, weight_decay=0.0)


def build_model(config: TrainConfig, datasets: list) -> tuple[WarpdModel, Windows]:
    """The model (one task embedding per configured task, normalisation over all their
    demonstrations) and the training windows of every dataset, each tagged with its task id."""
    task_names = config.data.task_list
    demos = demonstrations(datasets, task_names)
    model = WarpdModel(config, datasets[0].info.obs_names, datasets[0].info.action_names, task_names)
    model.set_normalization(np.concatenate([d[0] for d in demos]), np.concatenate([d[1] for d in demos]))
    stats = [getattr(model, n).numpy() for n in ("obs_mean", "obs_std", "action_mean", "action_std")]
    return model, make_windows(demos, config.data.horizon, *stats)


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
    stage: int
    start: int  # step to continue from within `stage`
    optimizer: torch.optim.Optimizer | None  # restored when resumed, else None
    from_state: bool  # a training state was found and loaded


def start_run(config, ctx: DistContext, out: Path, build: Callable, make_optimizer: Callable, resume: bool,
              first_stage: int) -> RunStart:
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
        stage, start, optimizer = load_train_state(state_path, model, lambda s: make_optimizer(model, config, s))
        return RunStart(model, data, state_path, stage, start, optimizer, True)
    return RunStart(model, data, state_path, first_stage, 0, None, False)


def train(config: TrainConfig, device: str = "cpu", resume: bool = True, progress: bool = True) -> Path:
    """Run (or resume) both stages; returns the checkpoint path."""
    with training_run(config, device) as (ctx, out):
        model, windows, state_path, stage, start, optimizer, from_state = start_run(
            config, ctx, out, build_model, make_optimizer, resume, first_stage=1)
        if from_state and ctx.is_main:
            print(f"[train] resuming at stage {stage}, step {start} from {state_path}")
        seconds = {"stage1": 0.0, "stage2": 0.0}
        resumed = start > 0 or stage > 1
        if stage == 1:
            began = time.perf_counter()
            train_stage1(model, windows, optimizer or make_optimizer(model, config, 1), start, ctx, config, out, progress)
            seconds["stage1"] = time.perf_counter() - began
            stage, start, optimizer = 2, 0, None
        if stage == 2:
            began = time.perf_counter()
            train_stage2(model, windows, optimizer or make_optimizer(model, config, 2), start, ctx, config, out, progress)
            seconds["stage2"] = time.perf_counter() - began
        checkpoint = out / "checkpoint.safetensors"
        if ctx.is_main:
            save_train_state(state_path, model, make_optimizer(model, config, 2), DONE, 0)
            # wall time of this invocation; a resumed run only counts what it did itself
            save_checkpoint(model.cpu(), checkpoint, extra={"windows": len(windows), "train_seconds": seconds,
                                                            "resumed": resumed, "world_size": ctx.world_size})
            plot_curves({"stage 1": out / "losses_stage1.csv", "stage 2": out / "losses_stage2.csv"},
                        out / "losses.png")
        ctx.barrier()
        return checkpoint
