"""`warpd train` for WARPD: stage 1 (VAE + hypernetwork + world model), then stage 2 (latent diffusion).

Resumable: the whole training state is saved every `checkpoint_every` steps and picked up again
by the same command. Works alone or under torchrun (DDP, one replica per process). Writes to
`config.output`: checkpoint.safetensors (what the planner loads), losses_stage{1,2}.csv,
losses.png, config.yaml (the resolved config) and train_state.safetensors (for resuming).
The loop, set-up and resuming are the shared ones of warpd_core.training.loop.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from warpd_core.policies.warpd.checkpoint import save_checkpoint
from warpd_core.policies.warpd.config import TrainConfig
from warpd_core.policies.warpd.latent_diffusion import diffusion_loss, training_scheduler
from warpd_core.policies.warpd.modeling import WarpdModel
from warpd_core.policies.warpd.stage1 import LOSS_NAMES
from warpd_core.policies.warpd.windows import Windows, make_windows
from warpd_core.training.curves import plot_curves
from warpd_core.training.datasets import demonstrations, robot_contract_record
from warpd_core.training.loop import Stage, batch_index, start_run, train_loop, training_run, use_ema
from warpd_core.training.train_state import save_train_state


def train_stage1(model: WarpdModel, windows: Windows, optimizer, start, ctx, config, out, progress):
    stage1 = ctx.wrap(model.stage1)
    cfg = config.stage1

    def step_fn(step):
        index = batch_index(config, Stage.STAGE1, step, ctx.rank, len(windows), cfg.batch_size)
        return stage1(*(t.to(ctx.device) for t in windows.batch(index)))

    model.stage1.train()
    train_loop(Stage.STAGE1, cfg, start, step_fn, optimizer, list(model.stage1.parameters()), ctx, out, progress,
               ["total", *LOSS_NAMES, *(["plan"] if config.loss.plan else [])], model)


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
        index = batch_index(config, Stage.STAGE2, step, ctx.rank, len(windows), cfg.batch_size).to(ctx.device)
        loss = diffusion_loss(denoiser, scheduler, z_unit[index], states0[index], task_ids[index],
                              config.diffusion.cond_dropout)
        return {"total": loss}

    model.denoiser.train()
    train_loop(Stage.STAGE2, cfg, start, step_fn, optimizer, list(model.denoiser.parameters()), ctx, out, progress,
               ["total"], model)
    if cfg.ema_decay:
        use_ema(optimizer)


def make_optimizer(model: WarpdModel, config: TrainConfig, stage: Stage) -> torch.optim.Optimizer:
    if stage == Stage.STAGE1:
        return torch.optim.AdamW(model.stage1.parameters(), lr=config.stage1.lr, weight_decay=config.stage1.weight_decay)
    return torch.optim.AdamW(model.denoiser.parameters(), lr=config.stage2.lr, weight_decay=0.0)


def build_model(config: TrainConfig, datasets: list) -> tuple[WarpdModel, Windows]:
    """The model (one task embedding per configured task, normalisation over all their
    demonstrations) and the training windows of every dataset, each tagged with its task id."""
    task_names = config.data.task_list
    model = WarpdModel(config, datasets[0].info.obs_names, datasets[0].info.action_names, task_names)
    demos = [(obs, model.learned_actions(obs, actions), task) for obs, actions, task in
             demonstrations(datasets, task_names)]
    model.set_normalization(np.concatenate([d[0] for d in demos]), np.concatenate([d[1] for d in demos]))
    stats = [getattr(model, n).numpy() for n in ("obs_mean", "obs_std", "action_mean", "action_std")]
    loss = config.loss
    return model, make_windows(demos, config.data.horizon, *stats, plan_horizon=loss.plan_horizon if loss.plan else 0,
                               plan_samples=loss.plan_samples)


def train(config: TrainConfig, device: str = "cpu", resume: bool = True, progress: bool = True) -> Path:
    """Run (or resume) both stages; returns the checkpoint path."""
    with training_run(config, device) as (ctx, out):
        model, windows, state_path, stage, start, optimizer, from_state = start_run(
            config, ctx, out, build_model, make_optimizer, resume, first_stage=Stage.STAGE1)
        if from_state and ctx.is_main:
            print(f"[train] resuming at stage {int(stage)}, step {start} from {state_path}")
        seconds = {"stage1": 0.0, "stage2": 0.0}
        resumed = start > 0 or stage > Stage.STAGE1
        if stage == Stage.STAGE1:
            began = time.perf_counter()
            train_stage1(model, windows, optimizer or make_optimizer(model, config, Stage.STAGE1), start, ctx, config,
                         out, progress)
            seconds["stage1"] = time.perf_counter() - began
            stage, start, optimizer = Stage.STAGE2, 0, None
        if stage == Stage.STAGE2:
            began = time.perf_counter()
            train_stage2(model, windows, optimizer or make_optimizer(model, config, Stage.STAGE2), start, ctx, config,
                         out, progress)
            seconds["stage2"] = time.perf_counter() - began
        checkpoint = out / "checkpoint.safetensors"
        if ctx.is_main:
            save_train_state(state_path, model, make_optimizer(model, config, Stage.STAGE2), Stage.DONE, 0)
            # wall time of this invocation; a resumed run only counts what it did itself
            save_checkpoint(model.cpu(), checkpoint, extra={"windows": len(windows), "train_seconds": seconds,
                                                            "resumed": resumed, "world_size": ctx.world_size,
                                                            "robot": robot_contract_record(config)})
            plot_curves({"stage 1": out / "losses_stage1.csv", "stage 2": out / "losses_stage2.csv"},
                        out / "losses.png")
        ctx.barrier()
        return checkpoint
