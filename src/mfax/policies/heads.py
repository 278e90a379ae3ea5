"""The per-state head of every learned policy: one MLP, one definition of each action
distribution.

Every network in mfax that maps a state and an aggregate embedding to per-action outputs
(the mean-field policy of SPG / RSPG, the agents' policy of IPPO / RIPPO, M-OMD's
Q-network, the PPO critic) ends in the same two-layer MLP,
``y = relu(relu(z) W_h^T + b_h) W_o^T + b_o`` with ``z`` the first layer's pre-activation
(weights in Equinox's ``(out, in)`` layout): :func:`per_state_mlp`, and
:func:`mlp_head` for the whole ``(batch, state)`` grid with its derivative written out.

A head's raw outputs ``y`` define the action distribution in exactly one place,
:func:`head_logits`; probabilities (:func:`head_probs`, what the exact push-forward and
the sampled agents use) and log-probabilities (:func:`head_log_probs`, what PPO's ratio,
the entropy bonus and M-OMD's Munchausen term use) are its softmax and log-softmax, so
the distribution agents are sampled from and the one whose log-probabilities enter a
loss cannot drift apart.

Heads:

* ``"discrete"``: ``m`` outputs, the logits of a categorical distribution over actions;
* ``"beta"``: 2 outputs, a Beta(a, b) density on ``[0, 1]`` evaluated at the game's
  action values (which must lie strictly inside ``(0, 1)``) and renormalised over them:
  the published choice for the macro economy's savings fraction. It is parametrised by
  its mean ``sigmoid(y_0)`` and a bounded concentration
  ``a + b = 2 + (MAX_CONCENTRATION - 2) sigmoid(y_1 - 3)`` (about 11 at initialisation, a
  broad density around 1/2). An unbounded concentration lets the density collapse onto
  one grid point early in training, after which the softmax saturates and the gradient
  vanishes (seen with softplus parameters at the published learning rate 1e-2).
"""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

Head = Literal["discrete", "beta"]
HEADS: tuple[str, ...] = ("discrete", "beta")
MAX_CONCENTRATION = 200.0


def head_size(head: Head, n_actions: int) -> int:
    """Number of raw outputs of ``head`` for a game with ``n_actions`` actions."""
    if head == "discrete":
        return n_actions
    if head == "beta":
        return 2
    raise ValueError(f"unknown policy head {head!r}; expected one of {', '.join(HEADS)}")


def beta_parameters(y: Float[Array, "*b 2"]) -> tuple[Float[Array, "*b 1"], Float[Array, "*b 1"]]:
    """The Beta head's ``(a, b)`` from its raw outputs (mean / bounded concentration)."""
    mean = jax.nn.sigmoid(y[..., :1])
    concentration = 2.0 + (MAX_CONCENTRATION - 2.0) * jax.nn.sigmoid(y[..., 1:] - 3.0)
    return mean * concentration, (1.0 - mean) * concentration


def head_logits(head: Head, y: Float[Array, "*b k"], points: Float[Array, " m"] | None = None) -> Float[Array, "*b m"]:
    """Unnormalised log-probabilities of the ``m`` actions: the one definition of each
    head's distribution. ``points`` are the game's action values (needed by ``"beta"``)."""
    if head == "discrete":
        return y
    if head == "beta":
        a, b = beta_parameters(y)
        return (a - 1.0) * jnp.log(points) + (b - 1.0) * jnp.log1p(-points)
    raise ValueError(f"unknown policy head {head!r}; expected one of {', '.join(HEADS)}")


def head_probs(head: Head, y: Float[Array, "*b k"], points: Float[Array, " m"] | None = None) -> Float[Array, "*b m"]:
    """Action probabilities of raw head outputs ``y``."""
    return jax.nn.softmax(head_logits(head, y, points), axis=-1)


def head_log_probs(
    head: Head, y: Float[Array, "*b k"], points: Float[Array, " m"] | None = None
) -> Float[Array, "*b m"]:
    """Action log-probabilities of raw head outputs ``y`` (the log of :func:`head_probs`)."""
    return jax.nn.log_softmax(head_logits(head, y, points), axis=-1)


def beta_on_grid(y: Float[Array, "*b 2"], points: Float[Array, " m"]) -> Float[Array, "*b m"]:
    """The Beta head's probabilities at ``points`` (:func:`head_probs` with ``"beta"``)."""
    return head_probs("beta", y, points)


# -- the MLP ---------------------------------------------------------------------------


def mlp_hidden(pre: Float[Array, "*r w"], hidden_w: Float[Array, "w w"], hidden_b: Float[Array, " w"]):
    """``relu(relu(pre) W_h^T + b_h)``: the head's hidden activation."""
    return jax.nn.relu(jax.nn.relu(pre) @ hidden_w.T + hidden_b)


def per_state_mlp(pre: Float[Array, "*r w"], hidden: eqx.nn.Linear, out: eqx.nn.Linear) -> Float[Array, "*r k"]:
    """The head's raw outputs from the first layer's pre-activation ``pre`` (any rows),
    through its ``hidden`` (``w -> w``) and ``out`` (``w -> k``) layers."""
    return mlp_hidden(pre, hidden.weight, hidden.bias) @ out.weight.T + out.bias


def first_pre_activation(table: Float[Array, "n w"], a: Float[Array, "B w"]) -> Float[Array, "rows w"]:
    """``table_s + a_b`` for every (batch, state) row, flattened to ``rows = B n``."""
    return (table + a[:, None, :]).reshape(-1, table.shape[-1])


@jax.custom_vjp
def mlp_head(
    table: Float[Array, "n w"],
    a: Float[Array, "B w"],
    hidden_w: Float[Array, "w w"],
    hidden_b: Float[Array, " w"],
    out_w: Float[Array, "k w"],
    out_b: Float[Array, " k"],
) -> Float[Array, "rows k"]:
    """:func:`per_state_mlp` on every (batch, state) row, ``rows = B n``, as one 2-D matrix
    product per layer.

    Its derivative is written out (:func:`_mlp_head_bwd`): both activations are
    recomputed from ``(table, a)`` instead of stored, the ReLU masks are read off the
    activations, and every product is 2-D in the orientation XLA's CPU backend runs
    fastest (faster than plain autodiff of the same expression in ``bench/train_speed.py``
    runs). Recomputing the hidden activation costs one more ``rows x w @ w x w`` product
    in the backward pass, but inside a ``lax.scan`` over time the stored one would be a
    ``(T, rows, w)`` residual (half a gigabyte for the macro economy) written, zeroed and
    read back each iteration, which costs more (``bench/results/macro_speed.md``). The
    residuals are ``(table, a)`` and the weights: ``table`` is the same at every step, so
    a scan keeps it once. Reverse-mode only, as every custom VJP (``jax.grad``/``jax.vjp``,
    not ``jax.jvp``)."""
    return _mlp_head_fwd(table, a, hidden_w, hidden_b, out_w, out_b)[0]


def _mlp_head_fwd(table, a, hidden_w, hidden_b, out_w, out_b):
    h1 = mlp_hidden(first_pre_activation(table, a), hidden_w, hidden_b)
    return h1 @ out_w.T + out_b, (table, a, hidden_w, hidden_b, out_w)


def _mlp_head_bwd(res, dy):
    table, a, hidden_w, hidden_b, out_w = res
    z0 = jax.nn.relu(first_pre_activation(table, a))
    h1 = jax.nn.relu(z0 @ hidden_w.T + hidden_b)  # as mlp_hidden computes it
    d_out_w, d_out_b = dy.T @ h1, dy.sum(0)
    dh = jnp.where(h1 > 0, dy @ out_w, 0.0)
    d_hidden_w, d_hidden_b = dh.T @ z0, dh.sum(0)
    dz = jnp.where(z0 > 0, dh @ hidden_w, 0.0).reshape(a.shape[0], table.shape[0], -1)
    return dz.sum(0), dz.sum(1), d_hidden_w, d_hidden_b, d_out_w, d_out_b


mlp_head.defvjp(_mlp_head_fwd, _mlp_head_bwd)
