"""Perturbations: one YAML spec with a scalar level, applied the same way to every task."""
from warpd_core.perturb.perturber import Perturber
from warpd_core.perturb.spec import PerturbationSpec

__all__ = ["PerturbationSpec", "Perturber"]
