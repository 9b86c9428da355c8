"""The real-business-cycle economy of Curry et al. (arXiv 2201.01163)."""

from .config import ConfigError, RBCConfig
from .env import GROUPS, RBCEnv

__all__ = ["ConfigError", "GROUPS", "RBCConfig", "RBCEnv"]
