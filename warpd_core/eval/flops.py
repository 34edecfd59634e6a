"""FLOPs and wall time of one planner call and one control step, per method, counted not estimated.

Counting uses torch.utils.flop_counter.FlopCounterMode, which traces every aten op a call runs.
Its convention (and therefore ours): a matrix product or convolution costs 2 FLOPs per
multiply-add (2*MACs); bias adds folded into addmm/baddbmm/conv, element-wise ops (activations,
normalisation, GroupNorm, Mish, the schedulers' arithmetic) and indexing are NOT counted. For
these models the products dominate, so the counts are a slight undercount of the same kind for
every method.

What is counted, per method:
- WARPD planner call: `WarpdModel.generate` for one state, as a running planner pays it: the
  condition embedding once, every denoising step of the latent diffusion, the hypernetwork
  decode of every policy weight (tau(t) is cached after the first plan: not counted).
  Control step: the generated MLP's forward, traced on its torch twin
  (`Hypernetwork.policy_forward`); `mlp_matmul_flops` gives the same number from the architecture
  alone, and `MLPPolicy.flops_per_action` the count that also includes bias adds and
  (de)normalisation.
- Diffusion Policy planner call: `DPModel.predict_chunk` for one observation history (every DDIM
  step of the U-Net). Control step: 0 — it indexes the planned chunk.
Per control step at action horizon K (one plan every K steps): planner / K + step.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from warpd_core.runtime.compute_budget import mlp_matmul_flops  # noqa: F401  (re-exported: one home, in runtime)


def count_flops(fn: Callable, *args, **kwargs) -> int:
    """Total FLOPs (2 per multiply-add; element-wise ops not counted) of fn(*args, **kwargs)."""
    with FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    return int(counter.get_total_flops())


def call_seconds(fn: Callable, repeats: int, warmup: int = 2) -> list[float]:
    """Wall seconds of `repeats` calls of fn(), after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return times


def median_seconds(fn: Callable, repeats: int, warmup: int = 2) -> float:
    return statistics.median(call_seconds(fn, repeats, warmup))


@dataclass
class MethodCost:
    """What one method costs at run time on one task; seconds are medians on this machine (None if not timed)."""

    method: str
    planner_flops: int
    step_flops: int
    planner_seconds: float | None = None
    step_seconds: float | None = None
    planner_p95_seconds: float | None = None  # the 95th percentile of a plan's wall time
    name: str | None = None  # how a table names it, when not the method's

    def flops_per_step(self, action_horizon: int) -> float:
        """FLOPs per control step when planning every `action_horizon` steps."""
        return self.planner_flops / action_horizon + self.step_flops

    def seconds_per_step(self, action_horizon: int) -> float | None:
        if self.planner_seconds is None or self.step_seconds is None:
            return None
        return self.planner_seconds / action_horizon + self.step_seconds


def warpd_cost(model, task: str, steps: int | None = None, timing: bool = False, repeats: int = 20) -> MethodCost:
    """FLOPs (and optionally wall time) of a WarpdModel: one plan, one step of its generated MLP."""
    from warpd_core.policies.warpd.planner import Planner

    model = model.cpu().eval()
    obs = torch.zeros(1, len(model.obs_names))
    generator = torch.Generator().manual_seed(0)
    model.generate(obs, task, steps, generator=generator)  # fills the time-feature cache, as a running planner has
    planner_flops = count_flops(model.generate, obs, task, steps, generator=generator)
    weights, _ = model.generate(obs, task, steps, generator=generator)
    hypernet = model.stage1.hypernet
    layers = hypernet.split(weights)
    with torch.no_grad():
        step_flops = count_flops(hypernet.policy_forward, layers, obs.unsqueeze(1))
    expected = mlp_matmul_flops(hypernet.architecture.layer_sizes)
    if step_flops != expected:  # the torch twin must run exactly the architecture's products
        raise RuntimeError(f"counted {step_flops} FLOPs for the generated MLP, its architecture implies {expected}")
    step_flops = mlp_matmul_flops(model.architecture.layer_sizes)  # what runs: with any pass-through units
    cost = MethodCost("warpd", planner_flops, step_flops)
    if timing:
        planner = Planner(model, task, steps=steps)
        state = np.zeros(len(model.obs_names))
        policy = planner.plan(state)
        plans = call_seconds(lambda: planner.plan(state), repeats)
        cost.planner_seconds, cost.planner_p95_seconds = statistics.median(plans), float(np.percentile(plans, 95))
        cost.step_seconds = median_seconds(lambda: policy(state), repeats * 50)
    return cost


def dp_cost(model, task: str, steps: int | None = None, timing: bool = False, repeats: int = 20) -> MethodCost:
    """FLOPs (and optionally wall time) of a DPModel: one plan (all DDIM steps), steps cost 0."""
    from warpd_core.policies.dp.planner import DPPlanner

    model = model.cpu().eval()
    history = torch.zeros(1, model.n_obs_steps, model.obs_dim)
    planner_flops = count_flops(model.predict_chunk, history, task, steps, torch.Generator().manual_seed(0))
    cost = MethodCost("dp", planner_flops, 0)
    if timing:
        planner = DPPlanner(model, task, steps=steps)
        state = np.zeros(model.obs_dim)
        cost.planner_seconds = median_seconds(lambda: planner.plan(state), repeats)
        executor = planner.plan(state)  # past its chunk it returns the hold action, at the same cost
        cost.step_seconds = median_seconds(lambda: executor(state), repeats * 50)
    return cost


def dp_config_cost(config_path: str | Path, like, task: str, steps: int | None = None, timing: bool = False,
                   repeats: int = 5) -> MethodCost:
    """The cost of the DP a training config describes, without training it: FLOPs and time do not
    depend on the weights, so a freshly initialised DPModel with the observation/action layout of
    the trained model `like` counts exactly what the trained one would (e.g. DP-medium on a CPU
    that cannot train it in a session)."""
    from warpd_core.policies.dp.config import DPConfig
    from warpd_core.policies.dp.modeling import DPModel

    config = DPConfig.from_yaml(config_path)
    model = DPModel(config, like.obs_names, like.action_names, like.task_names)
    cost = dp_cost(model, task, steps, timing, repeats)
    cost.name = f"dp ({Path(config_path).name}, untrained)"
    return cost


def checkpoint_kind(path: str | Path) -> str:
    """"warpd" or "dp", from the checkpoint's metadata key."""
    from safetensors import safe_open

    from warpd_core.errors import WarpdError
    from warpd_core.policies.dp.checkpoint import METADATA_KEY as DP_KEY
    from warpd_core.policies.warpd.checkpoint import METADATA_KEY as WARPD_KEY

    with safe_open(str(path), framework="pt") as f:
        keys = set(f.metadata() or {})
    if DP_KEY in keys:
        return "dp"
    if WARPD_KEY in keys:
        return "warpd"
    raise WarpdError(f"{path} is neither a WARPD nor a Diffusion Policy checkpoint")


def method_flops(checkpoint: str | Path, task: str | None = None, steps: int | None = None,
                 timing: bool = False, repeats: int = 20) -> MethodCost:
    """The MethodCost of the policy in `checkpoint` (WARPD or DP, told apart by its metadata)."""
    if checkpoint_kind(checkpoint) == "dp":
        from warpd_core.policies.dp.checkpoint import load_checkpoint

        model = load_checkpoint(checkpoint)
        return dp_cost(model, task or model.task_names[0], steps, timing, repeats)
    from warpd_core.policies.warpd.checkpoint import load_checkpoint

    model = load_checkpoint(checkpoint)
    return warpd_cost(model, task or model.task_names[0], steps, timing, repeats)
