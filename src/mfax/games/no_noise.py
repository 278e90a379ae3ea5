"""A base for games without common noise: the noise-path protocol filled in.

Every game receives a noise path (:class:`~mfax.games.base.Game`); a game whose world
has no common noise still needs one for the tools to batch over. Extending
:class:`NoCommonNoise` instead of :class:`~mfax.games.base.Game` supplies it: a path is
one constant, ``noise_support`` is that one path with weight one (so evaluation is exact
and the information-consistent exploitability too), and the game writes only its sizes,
``state_features``, ``action_values``, ``initial_mean_field``, ``kernel``, ``reward``
and ``observation`` (which receive the path and may ignore it).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from mfax.games.base import Game, NoiseSupport


class NoNoise(NamedTuple):
    """The noise path of a game without common noise: one constant ``0``."""

    zero: Float[Array, ""]


class NoCommonNoise(Game):
    """Abstract game without common noise (see the module docstring); a concrete
    subclass is final, as every game."""

    def sample_noise(self, key: PRNGKeyArray) -> NoNoise:
        return NoNoise(jnp.zeros(()))

    def noise_support(self) -> NoiseSupport:
        return NoiseSupport(NoNoise(jnp.zeros(1)), jnp.ones(1))

    def describe_noise(self, noise: NoNoise) -> str:
        return "no common noise"

    @property
    def own_history_informative(self) -> bool:
        """``False``: there is no common noise for an agent's own past to reveal."""
        return False
