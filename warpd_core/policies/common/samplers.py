"""The deterministic diffusers samplers every policy here may sample with, built one way.

DDIM clips its clean-sample estimates where the training schedule says so (clip_sample, as DP
trains); DPM-Solver++ does the same by thresholding at clip_sample_range.

Both spread their steps as DDIM does by default ("leading": t = 90, 80, ... of 100 training steps).
DPM-Solver++'s own default ("linspace") starts at t = 99, where the squaredcos schedule leaves
alpha_bar = 2.4e-7: its clean-sample estimate divides by sqrt(alpha_bar), and the samples came out
10^3-10^5 times too large.
"""
from __future__ import annotations

from warpd_core.errors import WarpdError

SAMPLERS = ("ddim", "dpm")


def sampling_scheduler(training_config, sampler: str):
    """A sampler for the noise schedule of `training_config` (a DDPMScheduler's config)."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler  # imported when sampling, not by configs

    if sampler == "ddim":
        return DDIMScheduler.from_config(training_config)
    if sampler == "dpm":  # a schedule trained to clip its clean-sample estimates (DP) is clipped here too
        clip = bool(training_config.get("clip_sample", False))
        return DPMSolverMultistepScheduler.from_config(
            training_config, algorithm_type="dpmsolver++", timestep_spacing="leading", thresholding=clip,
            dynamic_thresholding_ratio=1.0, sample_max_value=float(training_config.get("clip_sample_range", 1.0)))
    raise WarpdError(f"unknown sampler {sampler!r}", f"use one of {', '.join(SAMPLERS)}")
