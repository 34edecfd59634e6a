"""Run-time side of WARPD that needs no torch: the generated-policy contract and (later) its
numpy executor."""
from warpd_core.runtime.policy_spec import (
    ACTIVATIONS,
    OUTPUT_ACTIVATIONS,
    GeneratedPolicy,
    MLPArchitecture,
)

__all__ = ["ACTIVATIONS", "OUTPUT_ACTIVATIONS", "GeneratedPolicy", "MLPArchitecture"]
