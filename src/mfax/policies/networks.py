"""Learned mean-field policies: one network gives the action distribution of every state.

Architecture (the published one, ``docs/algorithms/spg.md``)::

    o_t --Linear(d_o, 128)--ReLU--> e_t --[GRU(128) for RSPG]--> h_t --Linear(., 64)--> g_t
    s   --Embedding(n, 64) or Linear(f, 64)--> x_s
    [x_s, g_t] --Linear(128,128)--ReLU--Linear(128,128)--ReLU--Linear(128, k)--> head

SPG (memoryless) and RSPG (history-aware) are the same module; only ``recurrent``
differs: RSPG carries one GRU state per noise path, fed only public observations, and
shared by all individual states. The first MLP layer is split into its state and
aggregate parts, ``W [x_s; g_t] = W_x x_s + W_g g_t``, so the state part (which does not
depend on the observation) is an ``(n, 128)`` table computed once per call instead of
once per state and path.

Heads (``"discrete"`` softmax over action logits, ``"beta"`` density on the action
grid) and the per-state MLP are defined once, in :mod:`mfax.policies.heads`.
"""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from mfax.games.base import Game, check
from mfax.params import param
from mfax.policies.base import Policy
from mfax.policies.heads import HEADS, Head, head_probs, head_size, mlp_head

StateInput = Literal["embedding", "features"]
STATE_INPUTS = ("embedding", "features")


class NetworkParams(eqx.Module):
    """The sizes of a policy (or Q-) network, declared as hyper-parameters (``--hp``).

    The published architecture is 128 / 128 / 64 / 64 / 128 (module docstring). Solvers
    that train a network declare their hyper-parameters as a subclass of this one.
    """

    obs_embed: int = param(128, "observation encoder width (Linear(d_o, obs_embed), ReLU)")
    gru_hidden: int = param(128, "GRU hidden size over public observations (recurrent policies)")
    state_embed: int = param(64, "state embedding width (Embedding(n, .) or Linear(features, .))")
    aggregate_embed: int = param(64, "aggregate embedding width g_t")
    mlp_width: int = param(128, "width of the per-state MLP's two hidden layers")
    state_input: str = param("embedding", "how a state enters: embedding (one vector per state) or features")

    def __check_init__(self):
        for name in ("obs_embed", "gru_hidden", "state_embed", "aggregate_embed", "mlp_width"):
            check(getattr(self, name) >= 1, f"network size {name} must be >= 1, got {getattr(self, name)}")
        check(
            self.state_input in STATE_INPUTS,
            f"unknown state input {self.state_input!r}; allowed: {', '.join(STATE_INPUTS)}",
        )


class PolicyParams(NetworkParams):
    """A policy network's sizes and its head (``--hp``)."""

    head: str = param("discrete", "policy head: discrete (softmax over actions) or beta (density on the action grid)")

    def __check_init__(self):
        check(self.head in HEADS, f"unknown head {self.head!r}; allowed: {', '.join(HEADS)}")


def make_network(game: Game, key: PRNGKeyArray, net: NetworkParams, *, recurrent: bool, head: Head) -> "NetworkPolicy":
    """A :class:`NetworkPolicy` of the sizes ``net`` (any object with those attributes,
    e.g. a solver's hyper-parameters)."""
    return NetworkPolicy(
        game,
        key,
        recurrent=recurrent,
        head=head,
        state_input=net.state_input,
        obs_embed=net.obs_embed,
        gru_hidden=net.gru_hidden,
        state_embed=net.state_embed,
        aggregate_embed=net.aggregate_embed,
        mlp_width=net.mlp_width,
    )


def _check_beta_actions(game: Game) -> None:
    """The Beta head is a density on the action values: they must lie strictly inside
    ``(0, 1)`` (elsewhere every probability is NaN). Values that depend on a swept
    (traced) parameter are not checked here."""
    try:
        values = np.asarray(game.action_values(), dtype=float)
    except jax.errors.JAXTypeError:  # traced: a sweep's parameter
        return
    check(
        bool(np.all((values > 0.0) & (values < 1.0))),
        f"the beta head is a density on action values strictly inside (0, 1); game {game.name!r} has actions "
        f"from {values.min():g} to {values.max():g}: use head=discrete",
    )


class NetworkPolicy(Policy):
    """Mean-field policy network (SPG when ``recurrent=False``, RSPG when ``True``).

    Shapes: ``obs (d_o,)``, carry ``(hidden,)`` (or ``None``), output ``(n, m)``.
    """

    obs_encoder: eqx.nn.Linear
    gru: eqx.nn.GRUCell | None
    aggregate: eqx.nn.Linear
    state_encoder: eqx.nn.Embedding | eqx.nn.Linear
    state_proj: eqx.nn.Linear  # W_x (no bias)
    aggregate_proj: eqx.nn.Linear  # W_g (+ bias of the first MLP layer)
    hidden: eqx.nn.Linear
    out: eqx.nn.Linear
    game: Game = eqx.field(static=True)
    recurrent: bool = eqx.field(static=True)
    head: Head = eqx.field(static=True)
    state_input: StateInput = eqx.field(static=True)

    def __init__(
        self,
        game: Game,
        key: PRNGKeyArray,
        *,
        recurrent: bool,
        head: Head = "discrete",
        state_input: StateInput = "embedding",
        obs_embed: int = 128,
        gru_hidden: int = 128,
        state_embed: int = 64,
        aggregate_embed: int = 64,
        mlp_width: int = 128,
        obs_dim: int | None = None,
    ):
        if head == "beta":
            _check_beta_actions(game)
        keys = jax.random.split(key, 8)
        if obs_dim is None:

            def first_observation():
                noise = game.sample_noise(jax.random.key(0))
                return game.observation(game.initial_mean_field(noise), noise, jnp.int32(0))

            obs_dim = int(jax.eval_shape(first_observation).shape[0])  # its size only: nothing computed
        self.game, self.recurrent, self.head, self.state_input = game, recurrent, head, state_input
        self.obs_encoder = eqx.nn.Linear(obs_dim, obs_embed, key=keys[0])
        self.gru = eqx.nn.GRUCell(obs_embed, gru_hidden, key=keys[1]) if recurrent else None
        self.aggregate = eqx.nn.Linear(gru_hidden if recurrent else obs_embed, aggregate_embed, key=keys[2])
        if state_input == "embedding":
            self.state_encoder = eqx.nn.Embedding(game.n_states, state_embed, key=keys[3])
        else:
            self.state_encoder = eqx.nn.Linear(game.state_features().shape[1], state_embed, key=keys[3])
        concat = state_embed + aggregate_embed
        first = eqx.nn.Linear(concat, mlp_width, key=keys[4])
        self.state_proj = eqx.nn.Linear(state_embed, mlp_width, use_bias=False, key=keys[5])
        self.state_proj = eqx.tree_at(lambda layer: layer.weight, self.state_proj, first.weight[:, :state_embed])
        self.aggregate_proj = eqx.nn.Linear(aggregate_embed, mlp_width, key=keys[6])
        self.aggregate_proj = eqx.tree_at(
            lambda layer: (layer.weight, layer.bias), self.aggregate_proj, (first.weight[:, state_embed:], first.bias)
        )
        self.hidden = eqx.nn.Linear(mlp_width, mlp_width, key=keys[7])
        n_out = head_size(head, game.n_actions)
        out = eqx.nn.Linear(mlp_width, n_out, key=jax.random.fold_in(key, 99))
        # small last layer: the initial policy is close to uniform (discrete) or flat (beta)
        self.out = eqx.tree_at(lambda layer: (layer.weight, layer.bias), out, (out.weight * 0.01, out.bias * 0.0))

    # -- the recurrent part: one aggregate embedding per path and time ---------------
    def initial_carry(self):
        return jnp.zeros(self.gru.hidden_size) if self.recurrent else None

    def _encode(self, carry, obs):
        e = jax.nn.relu(self.obs_encoder(obs))
        if self.recurrent:
            carry = self.gru(e, carry)
            return carry, self.aggregate(carry)
        return carry, self.aggregate(e)

    def aggregate_sequence(self, obs: Float[Array, "T d"]) -> Float[Array, "T g"]:
        """Aggregate embeddings ``g_0..g_{T-1}`` for one path's observation sequence."""

        def body(carry, o):
            return self._encode(carry, o)

        _, g = jax.lax.scan(body, self.initial_carry(), obs)
        return g

    # -- the per-state head ------------------------------------------------------------
    def state_table(self) -> Float[Array, "n w"]:
        """``W_x x_s`` for every state: independent of observations, computed once."""
        if self.state_input == "embedding":
            x = self.state_encoder.weight
        else:
            x = jax.vmap(self.state_encoder)(jax.lax.stop_gradient(self.game.state_features()))
        return x @ self.state_proj.weight.T

    def probs_from_aggregate(self, g: Float[Array, "*b g"], table=None) -> Float[Array, "*b n m"]:
        """Action probabilities of every state for any batch of aggregate embeddings.

        The batch and state axes are flattened into the rows of one 2-D matrix product
        per layer: XLA's CPU backend runs a ``(rows, w) @ (w, w)`` product near the
        machine's matmul peak, but the same product with several leading axes well below
        it (measurement: ``bench/results/compiler_options.md``)."""
        table = self.state_table() if table is None else table
        a = g @ self.aggregate_proj.weight.T + self.aggregate_proj.bias  # (*b, w)
        batch, n = a.shape[:-1], table.shape[0]
        flat = a.reshape(-1, a.shape[-1])
        y = mlp_head(table, flat, self.hidden.weight, self.hidden.bias, self.out.weight, self.out.bias)
        return self.head_probs(y.reshape(*batch, n, -1))  # (*b, n, m)

    def head_probs(self, y: Float[Array, "*b k"]) -> Float[Array, "*b m"]:
        """Action probabilities of raw head outputs (see :mod:`mfax.policies.heads`)."""
        return head_probs(self.head, y, self.game.action_values())

    def __call__(self, carry, obs, t):
        carry, g = self._encode(carry, obs)
        return carry, self.probs_from_aggregate(g)

    def call_batch(self, carry, obs, t):
        """All paths' encoders (small, mapped over paths), then one flat head."""
        carry, g = jax.vmap(self._encode)(carry, obs)
        return carry, self.probs_from_aggregate(g)

    def sequence_probs(self, obs: Float[Array, "*b T d"]) -> Float[Array, "*b T n m"]:
        """``pi_t`` for ``t = 0..T-1`` given observation sequences (one path ``(T, d)`` or
        a batch ``(*b, T, d)``); the head runs once over every path, time and state."""
        batch = obs.shape[:-2]
        flat = obs.reshape(-1, *obs.shape[-2:])
        g = jax.vmap(self.aggregate_sequence)(flat).reshape(*batch, obs.shape[-2], -1)
        return self.probs_from_aggregate(g)
