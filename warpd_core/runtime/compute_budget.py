"""What a policy may cost per control tick on this host, so an oversized one is refused, not run late.

A well-formed policy can still be too big for the loop: hidden layers 1,400 wide (~2 M weights,
inside the validator's size bound) took the 1 kHz sim graph down to 870 Hz. FLOPs alone do not
say how long a forward takes (small MLPs are per-call overhead, large ones memory traffic), so the
host is measured once: the numpy runtime the controller runs (MLPPolicy) is timed on a few MLP
sizes for the given observation and action sizes, giving `seconds = overhead + flops / rate`. A policy fits when its predicted forward time is within `fraction` of the control
period. The controller checks every candidate against it at admission (no timing on the control
path); the planner checks its checkpoint's policy size at start-up against the controller's rate.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from warpd_core.runtime.mlp_runtime import MLPPolicy
from warpd_core.runtime.synthetic import synthetic_policy

REFERENCE_WIDTHS = (32, 256, 1024)  # hidden widths timed: overhead-bound to memory-bound
REASON_COMPUTE = "over_compute_budget"


def mlp_matmul_flops(layer_sizes) -> int:
    """2 * sum(in * out): the matrix products of one MLP forward for one observation."""
    return sum(2 * i * o for i, o in zip(layer_sizes[:-1], layer_sizes[1:]))


@dataclass(frozen=True)
class ComputeBudget:
    overhead_s: float  # time of a forward pass with (almost) no arithmetic: calls, ufunc dispatch
    flops_per_s: float  # marginal throughput of the forward pass on this host, one thread (the slowest seen)
    period_s: float  # the control period
    fraction: float  # share of the period one policy forward may take; 0 = no budget (every size admitted)

    @property
    def max_seconds(self) -> float:
        return self.fraction * self.period_s

    @property
    def max_flops(self) -> int:
        """The largest forward (matmul FLOPs) predicted to fit; 0 when even an empty one would not."""
        return max(0, int((self.max_seconds - self.overhead_s) * self.flops_per_s))

    @property
    def max_message_bytes(self) -> int:
        """A serialized PolicyWeights larger than this cannot hold a policy within the budget, so it can be
        refused by its size, before the cost of deserializing it (12 ms for 8 MB). Why: its float32 weights
        and biases are 4 bytes each, biases are at most as many as weights (each unit has an input), and
        FLOPs = 2 x weights; so bytes > 4 x max_flops + the rest means FLOPs > max_flops. The rest
        (header, names, observation statistics, latent) is bounded generously by 1 MB."""
        return 4 * self.max_flops + 1_000_000 if self.fraction > 0 else 2**62

    def predicted_seconds(self, layer_sizes) -> float:
        return self.overhead_s + mlp_matmul_flops(layer_sizes) / self.flops_per_s

    def refusal(self, layer_sizes) -> str | None:
        """Why a policy of these layer sizes does not fit, or None when it does (always, without a budget)."""
        flops = mlp_matmul_flops(layer_sizes)
        if self.fraction <= 0 or flops <= self.max_flops:
            return None
        return (f"policy MLP {list(layer_sizes)} needs {flops:,} FLOPs per step, predicted "
                f"{self.predicted_seconds(layer_sizes) * 1e6:.0f} µs on this host; the budget is "
                f"{self.fraction:g} of the {self.period_s * 1e3:g} ms control period = {self.max_seconds * 1e6:.0f} µs "
                f"(at most {self.max_flops:,} FLOPs)")

    def with_period(self, period_s: float) -> ComputeBudget:
        return ComputeBudget(self.overhead_s, self.flops_per_s, period_s, self.fraction)

    def summary(self) -> str:
        if self.fraction <= 0:
            return (f"off (compute_budget 0: every policy size admitted; host: {self.overhead_s * 1e6:.1f} µs + "
                    f"{self.flops_per_s / 1e9:.2f} GFLOP/s)")
        return (f"{self.max_seconds * 1e6:.0f} µs per forward = at most {self.max_flops:,} FLOPs "
                f"(host: {self.overhead_s * 1e6:.1f} µs + {self.flops_per_s / 1e9:.2f} GFLOP/s)")


def _median_forward_seconds(layer_sizes, repeats: int) -> float:
    policy = MLPPolicy(synthetic_policy(layer_sizes))
    obs = np.zeros(layer_sizes[0], dtype=np.float64)
    for _ in range(3):
        policy.select_action(obs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        policy.select_action(obs)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def measure_budget(obs_dim: int, action_dim: int, period_s: float, fraction: float,
                   repeats: int = 30) -> ComputeBudget:
    """Time MLPPolicy forwards on this host: a 4-wide net gives the overhead (calls, ufunc dispatch), and
    REFERENCE_WIDTHS (two hidden layers each) the rate, the slowest of them (memory-bound sizes are
    slower per FLOP than cached ones), so a prediction errs on the side of refusing. ~20 ms; medians,
    so a preemption or two while measuring does not move it."""
    overhead = _median_forward_seconds((obs_dim, 4, 4, action_dim), repeats)
    rates = []
    for width in REFERENCE_WIDTHS:
        sizes = (obs_dim, width, width, action_dim)
        extra = _median_forward_seconds(sizes, repeats) - overhead
        if extra > 0:
            rates.append(mlp_matmul_flops(sizes) / extra)
    rate = min(rates) if rates else 1e12  # every size as fast as the overhead alone: arithmetic is free here
    return ComputeBudget(overhead, rate, period_s, fraction)
