"""Training a Diffusion Policy: (observation history, action chunk) samples and the run itself.

Uses the same datasets (collected on demand), optimisation loop, resumable train state, curves
and DDP set-up as WARPD (warpd_core.training.loop); only the samples and the loss differ.
Writes to `config.output`: checkpoint.safetensors, losses_dp.csv, losses.png, config.yaml and
train_state.safetensors (for resuming).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from warpd_core.policies.dp.checkpoint import save_checkpoint
from warpd_core.policies.dp.config import DPConfig
from warpd_core.policies.dp.modeling import DPModel, training_scheduler
from warpd_core.training.curves import plot_curves
from warpd_core.training.train_state import save_train_state
from warpd_core.training.datasets import demonstrations, robot_contract_record
from warpd_core.training.loop import Stage, batch_index, start_run, train_loop, training_run

TRAINING = Stage.STAGE1  # DP has one stage (the train state records Stage.DONE once finished)


@dataclass
class ChunkSamples:
    """Every time step t of every demonstration as one sample, stored as indices into flat arrays.

    obs_index[i] = the n_obs_steps steps up to t (clamped at the episode start, i.e. padded by
    repeating the first observation); action_index[i] = t .. t+P-1 (clamped at the episode end,
    i.e. padded by repeating the last action, which in the demos is the expert holding still).
    """

    obs: torch.Tensor  # (steps, obs_dim), normalised
    actions: torch.Tensor  # (steps, action_dim), normalised
    obs_index: torch.Tensor  # (N, n_obs_steps)
    action_index: torch.Tensor  # (N, horizon)
    task_ids: torch.Tensor  # (N,)

    def __len__(self) -> int:
        return self.obs_index.shape[0]

    def to(self, device) -> "ChunkSamples":
        return ChunkSamples(*(getattr(self, f.name).to(device) for f in fields(self)))

    def batch(self, index: torch.Tensor):
        return self.obs[self.obs_index[index]], self.actions[self.action_index[index]], self.task_ids[index]


def make_chunk_samples(demos, model: DPModel) -> ChunkSamples:
    obs_parts, act_parts, obs_index, action_index, task_ids, offset = [], [], [], [], [], 0
    past = np.arange(-model.n_obs_steps + 1, 1)
    future = np.arange(model.horizon)
    for obs, actions, task_id in demos:
        steps = len(actions)
        t = np.arange(steps)[:, None]
        obs_index.append(offset + np.clip(t + past, 0, steps - 1))
        action_index.append(offset + np.clip(t + future, 0, steps - 1))
        task_ids.append(np.full(steps, task_id))
        obs_parts.append(obs[:steps])
        act_parts.append(actions)
        offset += steps
    with torch.no_grad():
        obs_n = model.normalize_obs(torch.as_tensor(np.concatenate(obs_parts), dtype=torch.float32))
        act_n = model.normalize_action(torch.as_tensor(np.concatenate(act_parts), dtype=torch.float32))
    return ChunkSamples(obs_n, act_n, torch.as_tensor(np.concatenate(obs_index)),
                        torch.as_tensor(np.concatenate(action_index)), torch.as_tensor(np.concatenate(task_ids)))


def build_model(config: DPConfig, datasets: list) -> tuple[DPModel, ChunkSamples]:
    task_names = config.data.task_list
    demos = demonstrations(datasets, task_names)
    model = DPModel(config, datasets[0].info.obs_names, datasets[0].info.action_names, task_names)
    model.set_normalization(np.concatenate([d[0] for d in demos]), np.concatenate([d[1] for d in demos]))
    return model, make_chunk_samples(demos, model)


def learning_rate(config: DPConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to zero over the remaining steps (DP paper's schedule)."""
    cfg = config.train
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def make_optimizer(model: DPModel, config: DPConfig, stage: int = TRAINING) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay)


def train(config: DPConfig, device: str = "cpu", resume: bool = True, progress: bool = True) -> Path:
    """Run (or resume) DP training; returns the checkpoint path."""
    with training_run(config, device) as (ctx, out):
        model, samples, state_path, stage, start, optimizer, from_state = start_run(
            config, ctx, out, build_model, make_optimizer, resume, first_stage=TRAINING)
        if from_state and ctx.is_main:
            print(f"[train] resuming DP at step {start} from {state_path}")
        optimizer = optimizer or make_optimizer(model, config)
        scheduler, cfg, seconds = training_scheduler(config.model), config.train, 0.0
        samples = samples.to(ctx.device)
        wrapped = ctx.wrap(model)

        def step_fn(step):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step)
            index = batch_index(config, TRAINING, step, ctx.rank, len(samples), cfg.batch_size).to(ctx.device)
            return {"total": wrapped(*samples.batch(index), scheduler)}

        if stage == TRAINING:
            began = time.perf_counter()
            model.train()
            train_loop(TRAINING, cfg, start, step_fn, optimizer, list(model.parameters()), ctx, out, progress,
                       ["total"], model, name="dp")
            seconds = time.perf_counter() - began
        checkpoint = out / "checkpoint.safetensors"
        if ctx.is_main:
            save_train_state(state_path, model, optimizer, Stage.DONE, 0)
            save_checkpoint(model.cpu().eval(), checkpoint,
                            extra={"samples": len(samples), "train_seconds": seconds, "resumed": start > 0 or stage == Stage.DONE,
                                   "world_size": ctx.world_size, "robot": robot_contract_record(config)})
            plot_curves({"Diffusion Policy": out / "losses_dp.csv"}, out / "losses.png")
        ctx.barrier()
        return checkpoint
