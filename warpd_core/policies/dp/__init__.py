"""Diffusion Policy (Chi et al., 2023), the baseline WARPD is compared against.

A conditional 1D temporal U-Net denoises a chunk of future actions given a short observation
history; at run time the chunk is executed open loop and the policy re-plans every K steps.
"""
