"""The deterministic diffusers samplers every policy here may sample with, built one way.

DDIM clips its clean-sample estimates where the training schedule says so (clip_sample, as DP
trains); DPM-Solver++ does the same by thresholding at clip_sample_range.

Both spread their steps as the training schedule says (`timestep_spacing`; DDPM's default is DDIM's
"leading": t = 90, 80, ... of 100 training steps). DPM-Solver++'s own default ("linspace") starts at
t = 99, where the squaredcos schedule leaves alpha_bar = 2.4e-7: an epsilon model's clean-sample
estimate divides by sqrt(alpha_bar), and the samples came out 10^3-10^5 times too large. A leading
start has its own cost in few steps: 4 of 100 start at t = 75, where a noised latent still holds 38%
signal, but the sampler starts from pure noise, and the samples lean toward the mean. A model that
predicts the clean sample (or v) can start at t = 99 ("trailing") instead: the WARPD latent sampler.
"""
from __future__ import annotations

from warpd_core.errors import WarpdError

SAMPLERS = ("ddim", "dpm")
PREDICTIONS = ("epsilon", "sample", "v_prediction")  # what a denoiser predicts (diffusers' prediction_type)
TIMESTEP_SPACINGS = ("leading", "trailing")


def sampling_scheduler(training_config, sampler: str):
    """A sampler for the noise schedule of `training_config` (a DDPMScheduler's config)."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler  # imported when sampling, not by configs

    if sampler == "ddim":
        return DDIMScheduler.from_config(training_config)
    if sampler == "dpm":  # a schedule trained to clip its clean-sample estimates (DP) is clipped here too
        clip = bool(training_config.get("clip_sample", False))
        return DPMSolverMultistepScheduler.from_config(
            training_config, algorithm_type="dpmsolver++", thresholding=clip,
            timestep_spacing=training_config.get("timestep_spacing", "leading"),
            dynamic_thresholding_ratio=1.0, sample_max_value=float(training_config.get("clip_sample_range", 1.0)))
    raise WarpdError(f"unknown sampler {sampler!r}", f"use one of {', '.join(SAMPLERS)}")
