"""The real-business-cycle economy of Curry et al. (arXiv 2201.01163)."""

from .config import ConfigError, RBCConfig

__all__ = ["ConfigError", "GROUPS", "RBCConfig", "RBCEnv", "action_mask_transform"]


def __getattr__(name: str):
    # The environment imports torch, tensordict and torchrl (seconds of start-up); code that only
    # reads configurations, such as the workflow's planning in every Snakemake call, skips that.
    if name in ("GROUPS", "RBCEnv"):
        from . import env

        return getattr(env, name)
    if name == "action_mask_transform":
        from .wrappers import action_mask_transform

        return action_mask_transform
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
