"""The game protocol: what a mean-field game is, defined once.

A game is an immutable Equinox module whose fields are its parameters (static ones fix
the compiled program; traced ones are numbers that may be arrays, see :mod:`mfax.params`;
a game built with Python values is hashable and can be closed over by ``jax.jit``) plus
pure functions of explicit arguments. It never knows whether it is pushed forward
exactly or run as a sampled population: the dynamics modules build both from the same
kernel.

Notation (``docs/concepts.md``): ``n`` individual states, ``m`` actions, horizon ``T``, kernel
support ``K``, discount ``gamma``.

Time. Decisions are taken at ``t = 0..T-1``:

* mean fields ``mu_0..mu_T``: ``mu_0 = initial_mean_field(noise)`` and ``mu_{t+1}`` is
  ``mu_t`` pushed through ``kernel(mu_t, noise, t)`` under the policy's ``pi_t``;
* observations ``o_0..o_T``: ``o_t = observation(mu_t, noise, t)``; the policy acts at
  ``t`` on ``o_0..o_t``; ``o_T`` is recorded but no decision is taken on it;
* rewards ``R_0..R_{T-1}`` (:func:`reward_matrix`): ``R_t = reward(mu_t, mu_{t+1}, noise,
  t)``, except at ``t = T-1`` where ``terminal_reward(mu_{T-1}, mu_T, noise, T-1)``
  replaces the step reward (it is not added to it). Nothing is paid at ``T``
  (``V_T = 0``); an agent's return is ``sum_{t<T} gamma^t R_t(s_t, a_t)``.

Noise path. The common noise of one episode is drawn up front by ``sample_noise(key)``
as a game-specific pytree with no leading axis: leaves indexed by time hold one entry for
each ``t = 0..T`` (``T + 1`` entries: the observation reads ``t = T`` and a reward at
``T - 1`` may read ``t + 1``), per-episode draws are scalars (the beach bar's location).
A random reset belongs to the noise too (``initial_mean_field`` depends on it). Common
noise is exogenous: a function of the key alone, never of the mean field or the actions,
so a path can be drawn before the episode, enumerated with its probability when its
support is finite (``noise_support``) and shared by the exact push-forward and a sampled
population. A game without common noise (or with it switched off) returns paths of the
same structure holding constants, and its ``noise_support`` enumerates what is left
random (one path of weight one when nothing is); a game that never has common noise
extends :class:`~mfax.games.no_noise.NoCommonNoise`, which supplies all of this.

Checks. :func:`mfax.check_game` (``mfax check-game``) tests a game against this protocol,
check by check; :func:`mfax.make` and the evaluation refuse a game failing a cheap one.
:func:`~mfax.games.kernels.deterministic_kernel` and
:func:`~mfax.games.kernels.dense_kernel` build a :class:`Kernel` from next-state indices
or a dense matrix.

Style (Equinox's abstract-or-final): :class:`Game` declares the required attributes as
``AbstractVar`` / ``AbstractClassVar`` and the required methods as abstract methods, and
checks what every game shares in ``__check_init__``; a concrete game is final. Reuse a
game by delegating to it, not by subclassing it.

Extra outputs. A game may declare what is worth showing beside the mean field and the
policy: named scalar series (:meth:`Game.aggregates`, e.g. prices) and cross-sections of
one trajectory (:meth:`Game.profiles`, e.g. a wealth distribution), and moments
(:meth:`Game.moment_specs`, :meth:`Game.moments`, :meth:`Game.decision_moments`: exact
statistics of the mean field and the decisions at every ``t``, e.g. capital, a Gini
coefficient, a Lorenz curve, savings rates), which ``mfax eval --json``, ``mfax export``,
the plots and impulse responses report. A game whose common noise is driven by
innovations declares how (:meth:`Game.noise_from_innovations`), so that a chosen shock
can be pushed through it. Tools (plots, reports) draw whatever a game declares and never
branch on its name.
"""

import abc
import dataclasses
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from equinox import AbstractClassVar, AbstractVar
from jaxtyping import Array, Float, Int, PRNGKeyArray

from mfax import compiling

# (GameError re-exported: mfax.games.base.GameError stays importable)
from mfax.errors import GameError, MfaxError, advice, exception_line, raised_at
from mfax.params import param

Noise = Any
"""A game-specific pytree holding one episode's common noise (leading axes: none)."""
MeanField = Float[Array, " n"]
"""A distribution over the ``n`` individual states."""
Rewards = Float[Array, "n m"]
"""One reward per (state, action)."""
Step = Int[Array, ""]
"""A time step ``t``: a traced int32 scalar."""


class Spread(NamedTuple):
    """Action-independent second stage of a :class:`Kernel` (for instance idiosyncratic
    noise added after the action's move): intermediate state ``j`` goes to
    ``index[j, k]`` with probability ``prob[j, k]``.

    Attributes:
        index: ``(n_mid, K2)`` int32 next-state indices in ``0..n-1``.
        prob: ``(n_mid, K2)`` probabilities; ``prob.sum(-1) == 1``.
    """

    index: Int[Array, "n_mid K2"]
    prob: Float[Array, "n_mid K2"]


class Kernel(NamedTuple):
    """Sparse transition kernel at one time step.

    Single-stage (``then`` is ``None``): ``P(s' | s, a) = sum_k prob[s, a, k]
    [index[s, a, k] = s']``. Two-stage (``then`` given): ``index`` points into ``n_mid``
    intermediate states, from which ``then`` moves on independently of the action, so
    ``P(s' | s, a) = sum_k prob[s, a, k] sum_l then.prob[j, l] [then.index[j, l] = s']``
    with ``j = index[s, a, k]``. Both stages together have ``n m K + n_mid K2`` entries
    instead of the ``n m K K2`` of the same kernel flattened (beach bar: 1111 + 1010
    instead of 5555 per path and step), which is what the exact push-forward touches
    (:func:`mfax.dynamics.push_forward`); :meth:`flat` gives the single-stage form.

    Attributes:
        index: ``(n, m, K)`` int32 next-state (or intermediate-state) indices for each
            (state, action).
        prob: ``(n, m, K)`` probabilities; ``prob.sum(-1) == 1``. Repeated indices are
            allowed (their probabilities add up).
        then: the action-independent second stage, or ``None``.
    """

    index: Int[Array, "n m K"]
    prob: Float[Array, "n m K"]
    then: Spread | None = None

    def flat(self) -> "Kernel":
        """The same kernel in single-stage form, ``(n, m, K K2)`` (unbatched kernels)."""
        if self.then is None:
            return self
        n, m = self.index.shape[:2]
        index = self.then.index[self.index]  # (n, m, K, K2)
        prob = self.prob[..., None] * self.then.prob[self.index]
        return Kernel(index.reshape(n, m, -1), prob.reshape(n, m, -1))

    def expect(self, v_next: Float[Array, "n ..."]) -> Float[Array, "n m ..."]:
        """``E[v_next(s') | s, a]`` for every state and action (``v_next`` may carry
        trailing axes, e.g. several value functions stacked, each expected alike).

        A two-stage kernel is taken one stage at a time, as the push-forward is: first
        ``E[v_next | j]`` at each intermediate state, then its expectation over the first
        stage, reading ``n m K + n_mid K2`` entries instead of the flattened kernel's
        ``n m K K2``."""
        if self.then is not None:
            v_next = _expect(self.then.index, self.then.prob, v_next)
        return _expect(self.index, self.prob, v_next)


# kernels with at least this many (state, action, successor) entries take several stacked
# value functions one at a time (:func:`_expect`)
_SPLIT_EXPECT = 16384


def _expect(index, prob, v):
    """``sum_k prob[..., k] v[index[..., k]]``, over the trailing axes of ``v`` too.

    A few value functions side by side (``v`` ``(n, k)``, ``k <= 4``) over a large kernel
    (``index`` of at least :data:`_SPLIT_EXPECT` entries) are expected one at a time and
    stacked: gathering ``(..., K, k)`` blocks with a small minor axis is slow on XLA's
    CPU backend at that size (the macro economy's joint recursion of two value
    functions), while on small kernels the extra operations cost more than they save
    (MFGLib's random linear). Measurements: bench/results/macro_kernel_cost.md."""
    if v.ndim == 2 and v.shape[1] <= 4 and index.size >= _SPLIT_EXPECT:
        return jnp.stack([_expect(index, prob, v[:, i]) for i in range(v.shape[1])], axis=-1)
    prob = prob.reshape(prob.shape + (1,) * (v.ndim - 1))
    return jnp.sum(prob * v[index], axis=index.ndim - 1)


class NoiseSupport(NamedTuple):
    """All common-noise paths of a finite-support game with their probabilities.

    Attributes:
        noise: the noise pytree with a leading path axis ``P``.
        weight: ``(P,)`` path probabilities summing to one.
    """

    noise: Noise
    weight: Float[Array, " P"]


class Profile(NamedTuple):
    """A cross-section of one trajectory drawn as curves over a state coordinate, for
    instance the wealth distribution at several times (see :meth:`Game.profiles`).

    Attributes:
        title: what the panel shows, e.g. ``"savings policy at t = 0"``.
        x: ``(k,)`` the coordinate, e.g. the wealth grid.
        curves: ``{label: (k,) values}``, one curve per label (per time, per income level).
        x_label: the coordinate's name.
        y_label: what the values are.
        x_scale: ``"linear"``, or ``"symlog"`` for a coordinate best read on a logarithmic
            axis that reaches zero (a geometric grid starting at 0).
    """

    title: str
    x: np.ndarray
    curves: dict[str, np.ndarray]
    x_label: str
    y_label: str
    x_scale: str = "linear"


class MomentSpec(NamedTuple):
    """What one moment of :meth:`Game.moments` or :meth:`Game.decision_moments` is.

    Attributes:
        label: what a reader should see, e.g. ``"capital K_t"``.
        axes: for an array-valued moment, its axes in order as ``(name, coordinates)``
            pairs (e.g. ``(("population share", p),)`` for a Lorenz curve); ``()`` for a
            scalar.
        decision: ``True`` for a moment of the decisions at ``t``
            (:meth:`Game.decision_moments`, defined at ``t = 0..T-1``); ``False`` for a
            moment of the mean field (:meth:`Game.moments`, at ``t = 0..T``).
        deviation: how an impulse response shows this moment's deviation from its
            baseline ``b``: ``"percent"``, ``100 (x / b - 1)`` (levels: capital, output);
            ``"points"``, ``100 (x - b)`` (rates, shares and logarithms: percentage or
            log points).
    """

    label: str
    axes: tuple[tuple[str, np.ndarray], ...] = ()
    decision: bool = False
    deviation: str = "percent"


class Game(eqx.Module):
    """Abstract mean-field game (conventions: see the module docstring). A concrete game
    is a final class that provides:

    * the sizes ``n_states``, ``n_actions``, ``horizon`` (``T``) and the discount ``gamma``
      (fields, class variables or properties) and a registry ``name`` (class variable);
    * ``state_features() -> (n, f)``: state inputs for policies, best scaled to ``[0, 1]``
      (the networks' inputs: features far larger train worse; finite is all the checks ask);
    * ``action_values() -> (m,)``: what each action means in numbers (a move, a share);
    * ``sample_noise(key) -> Noise``: one episode's common noise (and random reset);
    * ``initial_mean_field(noise) -> (n,)``;
    * ``kernel(mu, noise, t) -> Kernel``: transitions given the aggregate state at ``t``
      (two-stage when the action's move is followed by action-independent noise);
    * ``reward(mu, mu_next, noise, t) -> (n, m)``: the step reward, which may depend on
      the aggregate state at ``t`` and ``t + 1``;
    * ``observation(mu, noise, t) -> (d_o,)``: the public observation, normalised as the
      policy sees it; a function of the aggregate state and the noise only.

    and may override the defaults of ``noise_support`` (``None``: support not finite),
    ``terminal_reward`` (the step reward), ``own_history_informative`` (``True``),
    ``describe_noise`` (``""``), ``aggregates`` (none), ``profiles`` (none),
    ``state_grid`` (``None``), ``state_coordinates`` (each cell's place on ``state_grid``, else none),
    ``moment_specs``, ``moments`` and ``decision_moments`` (none),
    ``noise_from_innovations`` (``None``) and ``shared_until`` / ``prefix_key`` (``0``:
    no shared noise prefix declared).

    ``t`` is always a traced int32 scalar; everything but ``describe_noise``,
    ``profiles``, ``state_coordinates`` and ``moment_specs`` must be jit- and
    vmap-friendly. ``horizon >= 1`` and ``gamma`` in ``(0, 1]`` are checked for every game
    at construction; a game checks its own parameters in its own ``__check_init__``.
    """

    name: AbstractClassVar[str]
    n_states: AbstractVar[int]
    n_actions: AbstractVar[int]
    horizon: AbstractVar[int]
    gamma: AbstractVar[float]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        refuse_concrete_bases(cls, Game, "game")

    def __check_init__(self):
        horizon, gamma = self.horizon, self.gamma
        # the constructor skips mfax.make's type checks: "3" >= 1 was a raw TypeError
        integer = isinstance(horizon, int | np.integer) and not isinstance(horizon, bool)
        check(integer, f"horizon must be an integer, got {horizon!r}")
        check(horizon >= 1, f"horizon must be >= 1, got {horizon}")
        number = isinstance(gamma, int | float | np.ndarray | np.number | jax.Array) and not isinstance(gamma, bool)
        check(number and jnp.issubdtype(jnp.result_type(gamma), jnp.number), f"gamma must be a number, got {gamma!r}")
        check((0.0 < gamma) & (gamma <= 1.0), f"gamma must lie in (0, 1], got {gamma}")

    @property
    def own_history_informative(self) -> bool:
        """Whether an agent's own past states can tell it more about the common noise
        than the public history does (its own transitions, rewards or initial
        distribution depend on noise the observations hide). ``False``: the
        information-consistent exploitability is the exact non-anticipative one;
        ``True``: it is a lower bound of it, the gain of one deviation (see
        ``docs/algorithms/exploitability.md``). Defaults to ``True``, the safe claim for
        a game that does not declare otherwise."""
        return True

    @property
    def common_noise_off(self) -> dict[str, Any] | None:
        """Parameter values under which the game has no common noise (one noise path),
        which messages suggest (:func:`common_noise_advice`); ``None`` where it always has
        some. Default: ``{"common_noise": False}`` for a game with that parameter, else
        ``None``. A game whose switch is named otherwise, or leaves noise on, says so."""
        return {"common_noise": False} if "common_noise" in {f.name for f in dataclasses.fields(self)} else None

    @property
    def shared_until(self) -> int:
        """A time ``t_b`` before which noise paths with equal :meth:`prefix_key` are
        indistinguishable: ``initial_mean_field`` and, for ``t < t_b``, ``kernel`` and
        ``observation`` read the noise only through that key. Such paths then share
        ``mu_0..mu_{t_b}``, ``o_0..o_{t_b - 1}`` and the policy's decisions at
        ``t < t_b``, which the structural solvers compute once per key
        (:func:`mfax.dynamics.pushforward.rollout_batch` with a prefix); rewards may read
        more (beach bar's reward at ``t_b - 1`` reads ``z_{t_b}``). ``0`` (the default):
        nothing declared, every path computed in full."""
        return 0

    def prefix_key(self, noise: Noise) -> Float[Array, " k"]:
        """What one path's noise tells before :attr:`shared_until`, as a 1-D array (paths
        with equal keys share their start). Only read when ``shared_until > 0``."""
        return jnp.zeros((0,))

    # -- the world ---------------------------------------------------------------------
    @abc.abstractmethod
    def state_features(self) -> Float[Array, "n f"]: ...

    @abc.abstractmethod
    def action_values(self) -> Float[Array, " m"]: ...

    @property
    def actions_categorical(self) -> bool:
        """Whether the actions are categories (moves on a grid, choices among options)
        whose :meth:`action_values` are labels, not quantities: a policy's mean action
        value then means nothing, and its figure shows the most likely action instead.
        Default ``False`` (ordered quantities: a move of -1, 0 or +1, a saving rate)."""
        return False

    @property
    def state_grid(self) -> tuple[tuple[str, int], ...] | None:
        """The grid whose cells the states are, flattened row-major, as its axes'
        ``((name, size), ..)``: two axes (a map: state ``x * size_y + y``) or three (floors
        of maps), the sizes multiplying to :attr:`n_states`. The run's figures then draw
        the mean field on the grid (``mean_field_grid.png``) beside its time-by-state heat
        map. Default ``None``: the states are not the cells of a map."""
        return None

    @abc.abstractmethod
    def sample_noise(self, key: PRNGKeyArray) -> Noise: ...

    def noise_support(self) -> NoiseSupport | None:
        """Every noise path with its probability, or ``None`` when the support is not
        finite (then paths are only sampled). Default: ``None``."""
        return None

    @abc.abstractmethod
    def initial_mean_field(self, noise: Noise) -> Float[Array, " n"]: ...

    @abc.abstractmethod
    def kernel(self, mu: Float[Array, " n"], noise: Noise, t: Int[Array, ""]) -> Kernel: ...

    @abc.abstractmethod
    def reward(self, mu: MeanField, mu_next: MeanField, noise: Noise, t: Step) -> Rewards: ...

    def terminal_reward(self, mu: MeanField, mu_next: MeanField, noise: Noise, t: Step) -> Rewards:
        """The reward at ``t = T - 1``, replacing the step reward. Default: the step reward."""
        return self.reward(mu, mu_next, noise, t)

    @abc.abstractmethod
    def observation(self, mu: Float[Array, " n"], noise: Noise, t: Int[Array, ""]) -> Float[Array, " d"]: ...

    # -- words and extra outputs (plots, reports) ----------------------------------------
    def describe_noise(self, noise: Noise) -> str:
        """One noise path (concrete arrays, no leading axis) in a few words, for plot
        titles, e.g. where the bar is and whether it closes. Default: ``""``."""
        return ""

    def aggregates(self, mu: Float[Array, " n"], noise: Noise, t: Int[Array, ""]) -> dict[str, Float[Array, ""]]:
        """Named scalar aggregates of the population at ``t`` (a price, a total, a
        quantile of a distribution), each name what a reader should see, e.g.
        ``"interest rate r_t"``. Pure and traceable like :meth:`observation`: tools
        evaluate it at ``t = 0..T`` along every path (:func:`aggregate_paths`) and show
        each name as one series over time; NaN where it is not defined at ``t`` (the plots
        join the steps where it is, the exports keep the NaN). Default: none (``{}``)."""
        return {}

    def profiles(self, mu: np.ndarray, probs: np.ndarray, noise: Noise) -> list[Profile]:
        """Cross-sections of one trajectory worth a figure, e.g. the wealth distribution
        at several times or the savings policy by wealth and income. Called eagerly on one
        path's concrete arrays: ``mu`` ``(T+1, n)`` the mean fields ``mu_0..mu_T``,
        ``probs`` ``(T, n, m)`` the policy ``pi_0..pi_{T-1}``, ``noise`` the path (no
        leading axis). Default: none (``[]``)."""
        return []

    def state_coordinates(self) -> dict[str, np.ndarray]:
        """What each state is, for the exports (``mfax export``: ``state_<name>`` arrays,
        ``states.csv``): by name, an ``(n,)`` array of each state's value (the macro
        game: its wealth and income). Called eagerly. Default: each state's index along
        every axis of :attr:`state_grid` (``x`` and ``y`` of a map's cell), none without one."""
        if self.state_grid is None:
            return {}
        shape = tuple(int(size) for _, size in self.state_grid)
        index = np.unravel_index(np.arange(self.n_states), shape)
        return {str(name): along for (name, _), along in zip(self.state_grid, index, strict=True)}

    def moment_specs(self) -> dict[str, MomentSpec]:
        """The moments the game computes, by name (an identifier, e.g. ``"K"``,
        ``"gini_wealth"``): what :meth:`moments` and :meth:`decision_moments` return,
        key for key, with their labels and axes. Called eagerly. Default: none (``{}``)."""
        return {}

    def moments(self, mu: Float[Array, " n"], noise: Noise, t: Int[Array, ""]) -> dict[str, Array]:
        """The moments of the mean field ``mu`` at ``t`` (those with ``decision=False`` in
        :meth:`moment_specs`), each a scalar or an array of the declared axes; exact
        functions of the distribution (mass-weighted), never estimates from samples.
        Pure and traceable like :meth:`aggregates`; tools evaluate it at ``t = 0..T``
        along every path (:func:`moment_paths`). Default: none (``{}``)."""
        return {}

    def decision_moments(
        self, mu: Float[Array, " n"], probs: Float[Array, "n m"], noise: Noise, t: Int[Array, ""]
    ) -> dict[str, Array]:
        """The moments of the decisions at ``t`` (those with ``decision=True``): ``mu``
        the mean field ``mu_t``, ``probs`` the policy ``pi_t`` ``(n, m)``. Evaluated at
        the decision times ``t = 0..T-1``. Default: none (``{}``)."""
        return {}

    def noise_from_innovations(self, innovations: Float[Array, " T1"]) -> Noise | None:
        """The noise path that the standardised innovations ``innovations`` ``(T+1,)``
        drive (entry ``t`` the innovation that hits the noise at ``t``, in units of its
        standard deviation; all zeros: the path without shocks), or ``None`` when the
        game's noise is not driven by innovations. Impulse responses push a chosen
        shock through it (:func:`mfax.evaluation.moments.impulse_response`).
        Default: ``None``."""
        return None


def discount(default: float) -> Any:
    """The field declaring a game's discount factor ``gamma``: traced, in ``(0, 1]``
    (checked by :class:`Game` for every game)."""
    return param(default, "discount factor in (0, 1]", traced=True)


def moves(default: int) -> Any:
    """The field declaring ``max_action`` for a game whose actions are the integer moves
    ``-max_action..max_action`` on a line of states (``n_actions = 2 max_action + 1``)."""
    return param(default, "actions are the integer moves -max_action..max_action")


def refuse_concrete_bases(cls: type, root: type, what: str) -> None:
    """Abstract-or-final: ``cls`` may extend ``root`` and abstract subclasses of it (with
    an abstract method or attribute left), never a concrete one."""
    for base in cls.__mro__[1:]:
        if issubclass(base, root) and not _is_abstract(base):
            raise TypeError(
                f"{cls.__name__} extends {base.__name__}, a concrete {what}, but concrete classes are final: "
                f"extend {root.__name__} (or an abstract subclass of it) and delegate to {base.__name__} for what "
                "you reuse"
            )


def _is_abstract(cls: type) -> bool:
    return any(getattr(cls, attr, ()) for attr in ("__abstractmethods__", "__abstractvars__", "__abstractclassvars__"))


def noise_words(game: Game, noise: Noise) -> str:
    """``game.describe_noise(noise)`` (one path, concrete arrays): the game's words, or one
    line naming the method, the exception and where it was raised (a typo in it passed
    the checks and ended a training's plots in a traceback)."""
    what = f"game {getattr(game, 'name', type(game).__name__)!r}: describe_noise"
    try:
        words = game.describe_noise(noise)
    except MfaxError:
        raise
    except Exception as err:
        raise GameError(f"{what} failed on a noise path: {exception_line(err)}{raised_at(err, type(game))}") from err
    if not isinstance(words, str):
        raise GameError(f"{what} must return a str (words for plots), got {type(words).__name__}")
    return words


@compiling.precise
@eqx.filter_jit
def aggregate_paths(game: Game, mu: Float[Array, "P T1 n"], noise: Noise) -> dict[str, Float[Array, "P T1"]]:
    """:meth:`Game.aggregates` at ``t = 0..T`` along a batch of paths: ``mu`` the mean
    fields ``mu_0..mu_T`` of each path, ``noise`` with a leading path axis ``P``."""
    ts = jnp.arange(mu.shape[1], dtype=jnp.int32)
    along = jax.vmap(game.aggregates, in_axes=(0, None, 0))
    return jax.vmap(along, in_axes=(0, 0, None))(mu, noise, ts)


def moment_paths(game: Game, mu: Float[Array, "P T1 n"], probs: Float[Array, "P T n m"], noise: Noise):
    """:meth:`Game.moments` at ``t = 0..T`` and :meth:`Game.decision_moments` at
    ``t = 0..T-1`` along a batch of paths: ``mu`` the mean fields, ``probs`` the policy
    of each path, ``noise`` with a leading path axis ``P``. Returns one dict, each moment
    with leading axes ``(P, T+1)`` or ``(P, T)``; a key missing from or not declared by
    :meth:`Game.moment_specs` is a :class:`GameError`."""
    specs = game.moment_specs()
    state, decision = _moment_paths(game, mu, probs, noise)
    out = {**state, **decision}
    for name, values in (("moments", state), ("decision_moments", decision)):
        wanted = {k for k, spec in specs.items() if spec.decision == (name == "decision_moments")}
        if set(values) != wanted:
            raise GameError(
                f"{game.name}.{name} returned {sorted(values)} but moment_specs declares {sorted(wanted)} for it"
            )
    return out


@compiling.precise
@eqx.filter_jit
def _moment_paths(game: Game, mu, probs, noise):
    ts = jnp.arange(mu.shape[1], dtype=jnp.int32)
    along = jax.vmap(game.moments, in_axes=(0, None, 0))
    state = jax.vmap(along, in_axes=(0, 0, None))(mu, noise, ts)
    decide = jax.vmap(game.decision_moments, in_axes=(0, 0, None, 0))
    decision = jax.vmap(decide, in_axes=(0, 0, 0, None))(mu[:, :-1], probs, noise, ts[:-1])
    return state, decision


def check(condition, message: str) -> None:
    """Raise a one-line :class:`GameError` unless ``condition`` holds: a bool, or an
    array of them (games stacked on a run axis), which must hold everywhere. A traced
    condition (a game built inside ``jit`` or ``vmap``) cannot be decided here and is
    let through; its values are checked where they are concrete."""
    if isinstance(condition, jax.core.Tracer):
        return
    if not np.all(condition):
        raise GameError(message)


def check_probabilities(probs: tuple[float, ...], what: str) -> None:
    """Refuse probability vectors with negative entries or a sum other than one."""
    check(len(probs) > 0, f"{what} must not be empty")
    check(all(p >= 0.0 for p in probs), f"{what} must be non-negative, got {probs}")
    check(abs(sum(probs) - 1.0) < 1e-9, f"{what} must sum to 1, got sum {sum(probs)!r}")


def reward_matrix(game: Game, mu, mu_next, noise: Noise, t) -> Float[Array, "n m"]:
    """``R_t``: the step reward, replaced by the terminal reward at ``t = T - 1``. A reward
    of another shape than ``(n, m)`` is refused as it is traced (with the checks off too:
    a ``(n,)`` reward broadcast over the actions trained silently)."""
    step, last = game.reward(mu, mu_next, noise, t), game.terminal_reward(mu, mu_next, noise, t)
    for what, r in (("reward", step), ("terminal_reward", last)):
        if tuple(jnp.shape(r)) != (game.n_states, game.n_actions):
            raise GameError(
                f"game {game.name!r}: {what} must return shape (n_states, n_actions) = "
                f"({game.n_states}, {game.n_actions}), got {tuple(jnp.shape(r))}"
            )
    return jnp.where(t == game.horizon - 1, last, step)


@compiling.filter_jit
def _prefix_keys(game: Game, noise: Noise) -> Array:
    """Every path's :meth:`Game.prefix_key`: one compiled program per game, kept for the
    process (eagerly, each operation of the key would be a program of its own)."""
    return jax.vmap(game.prefix_key)(noise)


def prefix_groups(game: Game, noise: Noise) -> tuple[np.ndarray, int]:
    """The group of each path of a batch of noise paths (``(P,)`` int32, groups numbered in
    order of first appearance) by :meth:`~mfax.games.base.Game.prefix_key`, and the
    number of groups."""
    keys = np.asarray(_prefix_keys(game, noise))
    _, first, inverse = np.unique(keys.reshape(keys.shape[0], -1), axis=0, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))  # renumber groups by first appearance
    return order[inverse.reshape(-1)].astype(np.int32), int(first.size)


def common_noise_advice(game: Game) -> str:
    """How to set ``game`` up without common noise, for a message: ``"without common
    noise: --set bar_shock=0"`` (``bar_shock=0`` from Python: a keyword of
    :func:`mfax.make` and :func:`mfax.solve`), or that it has no such setting."""
    off = game.common_noise_off
    if off is None:
        return "it has no setting without common noise"

    def shown(value):
        return str(value).lower() if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else value

    typed = " ".join(f"--set {k}={shown(v)}" for k, v in off.items())
    return "without common noise: " + advice(typed, ", ".join(f"{k}={v!r}" for k, v in off.items()))
