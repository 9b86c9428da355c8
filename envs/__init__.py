"""The economies of dge-marl as TorchRL environments."""

from .rbc import ConfigError, RBCConfig, RBCEnv

__all__ = ["ConfigError", "RBCConfig", "RBCEnv"]
