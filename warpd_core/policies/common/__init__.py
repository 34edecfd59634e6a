"""What every policy family (WARPD, Diffusion Policy) builds on: the data section of a training
config and the small network layers. Neither family imports the other; both import this."""
