"""The economies of dge-marl as TorchRL environments."""

from .rbc import ConfigError, RBCConfig

__all__ = ["ConfigError", "RBCConfig", "RBCEnv"]


def __getattr__(name: str):
    # Imported on first use, so reading a configuration does not load torch (see envs.rbc).
    if name == "RBCEnv":
        from .rbc import RBCEnv

        return RBCEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
