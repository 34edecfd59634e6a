"""FLOPs accounting: exact counts on known layers, and per-method costs that match the architectures."""
import pytest
import torch
from torch import nn

from test_dp_model import tiny_model as tiny_dp
from test_warpd_models import tiny_model as tiny_warpd
from warpd_core.eval.flops import count_flops, dp_cost, method_flops, mlp_matmul_flops, warpd_cost
from warpd_core.policies.dp.checkpoint import save_checkpoint as save_dp
from warpd_core.policies.warpd.checkpoint import save_checkpoint as save_warpd
from warpd_core.runtime.mlp_runtime import MLPPolicy


def test_known_mlp_count_is_exact():
    mlp = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 3))
    assert count_flops(mlp, torch.zeros(1, 8)) == 2 * (8 * 64 + 64 * 3) == 1408
    assert count_flops(mlp, torch.zeros(5, 8)) == 5 * 1408
    assert mlp_matmul_flops([8, 64, 3]) == 1408


def test_known_conv_count_is_exact():
    conv = nn.Conv1d(3, 4, kernel_size=5, padding=2)
    assert count_flops(conv, torch.zeros(1, 3, 16)) == 2 * 3 * 4 * 5 * 16


def test_warpd_costs_follow_the_architecture():
    model = tiny_warpd()
    steps = model.config.diffusion.sample_steps
    cost = warpd_cost(model, "t")
    sizes = model.architecture.layer_sizes  # (5, 16, 16, 2)
    assert cost.step_flops == 2 * (5 * 16 + 16 * 16 + 16 * 2)
    biases_and_normalisation = sum(sizes[1:]) + 2 * sizes[0] + 2 * sizes[-1]
    assert MLPPolicy(model.to_generated_policy(*[t[0] for t in model.generate(torch.zeros(1, 5), "t")], "t")
                     ).flops_per_action() == cost.step_flops + biases_and_normalisation
    # one plan = the condition once + `steps` denoising steps + one hypernetwork decode (tau(t) is cached)
    assert model.config.diffusion.guidance_scale == 1.0
    z, t = torch.zeros(1, model.config.encoder.latent_dim), torch.zeros(1, dtype=torch.long)
    with torch.no_grad():
        condition = count_flops(model.denoiser.condition, torch.zeros(1, 5), t)
        denoise = count_flops(model.denoiser.denoise, z, torch.zeros(1, model.denoiser.config.hidden))
        decode = count_flops(model.stage1.hypernet, z)
    assert condition > 0 and denoise > 0 and decode > 0
    assert cost.planner_flops == condition + steps * denoise + decode
    assert cost.flops_per_step(16) == cost.planner_flops / 16 + cost.step_flops
    assert warpd_cost(model, "t", steps=2 * steps).planner_flops == condition + 2 * steps * denoise + decode
    # classifier-free guidance (the MT10 checkpoint's 2.0) runs the unconditioned condition and denoiser too
    model.config.diffusion.guidance_scale = 2.0
    assert warpd_cost(model, "t").planner_flops == 2 * condition + 2 * steps * denoise + decode


def test_dp_costs_are_ddim_steps_of_the_unet_and_nothing_per_step():
    model = tiny_dp()
    steps = model.config.model.sample_steps
    with torch.no_grad():
        unet = count_flops(model.unet, torch.zeros(1, model.horizon, 3), torch.zeros(1, dtype=torch.long),
                           torch.zeros(1, 2 * 8 + 4))
    assert unet > 0
    cost = dp_cost(model, "reach_around")
    assert cost.step_flops == 0 and cost.planner_flops == steps * unet
    assert dp_cost(model, "reach_around", steps=5).planner_flops == 5 * unet
    assert cost.flops_per_step(32) == cost.planner_flops / 32


@pytest.mark.parametrize("kind", ["warpd", "dp"])
def test_method_flops_reads_either_checkpoint_and_times_it(tmp_path, kind):
    model = tiny_warpd() if kind == "warpd" else tiny_dp()
    path = (save_warpd if kind == "warpd" else save_dp)(model, tmp_path / "c.safetensors")
    cost = method_flops(path, timing=True, repeats=3)
    expected = warpd_cost(model, "t") if kind == "warpd" else dp_cost(model, "reach_around")
    assert (cost.method, cost.planner_flops, cost.step_flops) == (kind, expected.planner_flops, expected.step_flops)
    assert cost.planner_seconds > 0 and cost.step_seconds > 0
    assert cost.seconds_per_step(16) == pytest.approx(cost.planner_seconds / 16 + cost.step_seconds)
