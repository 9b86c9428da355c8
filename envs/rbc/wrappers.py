"""Action masks through TorchRL wrappers.

RBCEnv keeps each group's mask in two places: the `action_mask` observation, which policies read
and every wrapper passes on, and the action spec, which TorchRL's samplers (`rand_action`,
`RandomPolicy`, a Collector without a policy) draw from. Wrappers hold their own copy of the spec:
`TransformedEnv` caches one at first use, and `SerialEnv`/`ParallelEnv` build theirs without masks
(TorchRL drops a spec's mask when it expands or stacks it). `action_mask_transform` brings that copy
in line with the observed masks at every reset and step, with TorchRL's `ActionMask`; the
consumers' padded observation is converted to the flat layout of their MultiCategorical spec.
"""

from __future__ import annotations

from torchrl.envs.transforms import ActionMask, Compose

from .actions import spec_mask
from .config import RBCConfig


class _GroupActionMask(ActionMask):
    """TorchRL's ActionMask for one group, with the mask in the layout RBCEnv gives its own spec."""

    def __init__(self, group: str, config: RBCConfig):
        super().__init__(action_key=(group, "action"), mask_key=(group, "action_mask"))
        self._group, self._config = group, config

    def _call(self, next_tensordict):
        mask = spec_mask(self._group, next_tensordict.get(self.in_keys[1]), self._config)
        self.action_spec.update_mask(None if mask is None else mask.to(self.action_spec.device))
        return next_tensordict


def action_mask_transform(config: RBCConfig) -> Compose:
    """Keep a wrapper's action spec masked as the economy's observed `action_mask`s, for every group.

        env = TransformedEnv(SerialEnv(2, make_env), action_mask_transform(config))
    """
    return Compose(*(_GroupActionMask(group, config) for group in ("consumer", "firm", "government")))
