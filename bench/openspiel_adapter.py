"""mfax's ``openspiel.*`` games next to OpenSpiel's originals: the pairing of each game,
mfax's exact figures, OpenSpiel's, and an independent walk of OpenSpiel's game tree.

Used by ``bench/openspiel_crosscheck.py`` and ``tests/test_openspiel_games.py``; needs
OpenSpiel (``pip install open_spiel``, a separate venv) for everything but
:func:`mfax_exploitability`, :func:`mfax_fp` and :func:`mfax_omd`.

Three evaluations of one tabular policy ``table[t, x, a]``:

* mfax (:func:`mfax_exploitability`): exact push-forward and backward induction;
* OpenSpiel (:func:`openspiel_exploitability`): ``NashConv(game, policy).nash_conv()``
  (its ``DistributionPolicy``, ``PolicyValue`` and ``BestResponse``);
* an independent walk of OpenSpiel's tree (:func:`walk_exploitability`): the game's own
  states (``child``, ``chance_outcomes``, ``rewards``, ``update_distribution``), a
  forward pass for the mean field and a memoised backward pass. Its memo key is the
  node's observation string plus, where the game's reward reads more than that string
  shows (crowd modelling's previous action), that too (``key="rules"``); with
  ``key="openspiel"`` it keys on the observation string alone in OpenSpiel's visiting
  order, which is what OpenSpiel's evaluators do; ``key="none"`` walks every path of
  the tree without a memo (tiny instances only).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mfax.evaluation.values import (
    backward_induction,
    best_response_value,
    info_max,
    info_share,
    path_return,
    policy_value,
)
from mfax.solvers.classical import FPHyperParams, fp_init, fp_step, omd_init, omd_policy, omd_step, rollout_table

sys.setrecursionlimit(100_000)


# -- mfax's side ----------------------------------------------------------------------
@jax.jit
def _exploitability(game, table):
    support = game.noise_support()
    traj = rollout_table(game, support.noise, table[None])
    v_pi = policy_value(game, traj, support.noise)
    v_br = best_response_value(game, traj, support.noise)
    gain = path_return(traj, v_br) - path_return(traj, v_pi)
    return jnp.sum(support.weight * gain), jnp.sum(support.weight * path_return(traj, v_pi))


def mfax_exploitability(game, table) -> tuple[float, float]:
    """``(exploitability, policy return)`` of the tabular policy ``table`` ``(T, n, m)``."""
    e, r = _exploitability(game, jnp.asarray(table))
    return float(e), float(r)


def mfax_fp(game, iterations: int) -> tuple[list[float], list[np.ndarray]]:
    """Exploitabilities of FP's iterates ``0..iterations`` with OpenSpiel's conventions
    (the uniform policy counted as iterate 0, first maximiser, the best response's own
    mean field mixed in) and their tables."""
    support = game.noise_support()
    hp = FPHyperParams(initial="average", ties="first", flow="own")
    step = jax.jit(lambda s: fp_step(game, support.noise, support.weight, s, hp))
    state = fp_init(game, 1)
    values, tables = [], []
    for _ in range(iterations + 1):
        tables.append(np.asarray(state.policy[0]))
        state, figures, _ = step(state)
        values.append(float(figures.exploitability))
    return values, tables


def mfax_omd(game, iterations: int, lr: float) -> tuple[list[float], list[np.ndarray]]:
    """Exploitabilities of OMD's iterates ``0..iterations`` (learning rate ``lr``)."""
    support = game.noise_support()
    step = jax.jit(lambda s: omd_step(game, support.noise, support.weight, s))
    state = omd_init(game, 1, lr)
    values, tables = [], []
    for _ in range(iterations + 1):
        tables.append(np.asarray(omd_policy(state)[0]))
        state, figures, _ = step(state)
        values.append(float(figures.exploitability))
    return values, tables


@jax.jit
def _br_q(game, table):
    support = game.noise_support()
    traj = rollout_table(game, support.noise, table[None])
    share = info_share(traj.obs, support.weight, game.horizon)
    _, q = backward_induction(game, traj, support.noise, info_max(share), emit_q=True)
    return q[0], traj.mu[0]


def best_response_q(game, table) -> tuple[np.ndarray, np.ndarray]:
    """``(Q (T, n, m), mu (T+1, n))``: the optimal state-action values against the mean
    field of ``table`` and that mean field (what a best response maximises)."""
    q, mu = _br_q(game, jnp.asarray(table))
    return np.asarray(q), np.asarray(mu)


def fixed_tables(game, seed: int = 0) -> dict[str, np.ndarray]:
    """The fixed policies compared: uniform, a deterministic one (the first maximiser of
    a random score, varying with ``t`` and ``x``) and a random table (Dirichlet(1) rows).

    Where OpenSpiel has fewer legal actions than mfax (the routing game), the tables put
    their mass on OpenSpiel's legal actions, equal on the rows OpenSpiel cannot tell apart,
    and the deterministic one is everybody on the Braess path (which congests)."""
    rng = np.random.default_rng(seed)
    shape = (game.horizon, game.n_states, game.n_actions)
    deterministic = np.eye(game.n_actions)[np.argmax(rng.random(shape), axis=-1)]
    tables = {
        "uniform": np.full(shape, 1.0 / game.n_actions),
        "deterministic": deterministic,
        "random": rng.dirichlet(np.ones(game.n_actions), size=shape[:2]),
    }
    if game.name == "openspiel.dynamic_routing":
        tables = {k: _routing_table(game, v, k == "deterministic") for k, v in tables.items()}
    return tables


def _routing_table(game, table: np.ndarray, braess_path: bool) -> np.ndarray:
    legal = game.legal_actions()[None]
    names = game.sections()
    if braess_path and "A->B" in names:
        path = {"O->A": "A->B", "A->B": "B->C", "B->C": "C->D", "C->D": "D->E", "A->C": "C->D", "B->D": "D->E"}
        table = np.array(legal, copy=True).repeat(game.horizon, 0)
        for here, there in path.items():
            for w in (-1, 0):
                table[:, game.state_index(names.index(here), w)] = np.eye(game.n_actions)[1 + names.index(there)]
    mass = table * legal
    total = mass.sum(-1, keepdims=True)
    table = np.where(total > 0, mass / np.where(total > 0, total, 1.0), legal / legal.sum(-1, keepdims=True))
    for i in range(len(names)):  # a wait just set and one counted down to 0 print alike in OpenSpiel
        table[:, game.state_index(i, -1)] = table[:, game.state_index(i, 0)]
    return table


# -- the pairing of an mfax game with OpenSpiel's ----------------------------------------
_INTS = re.compile(r"-?\d+")


def _ints(state) -> list[int]:
    """The integers of a node's observation string (before a :func:`rekeyed` tag)."""
    return [int(v) for v in _INTS.findall(state.observation_string(0).split("|")[0])]


@dataclass
class Pairing:
    """How one mfax game maps onto OpenSpiel's.

    Attributes:
        name: OpenSpiel's registered name.
        params: OpenSpiel's parameters for the same instance.
        locate: a decision node -> ``(t, x)``: mfax's time and state index.
        actions: OpenSpiel's legal action id -> mfax's action index (identity if None).
        rule_key: what a node's future rewards read besides its observation string
            (None: nothing).
    """

    name: str
    params: dict[str, Any]
    locate: Callable[[Any], tuple[int, int]]
    actions: dict[int, int] | None = None
    rule_key: Callable[[Any], Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def load(self):
        import pyspiel
        from open_spiel.python.mfg import games  # noqa: F401  (registers the Python games)
        from open_spiel.python.mfg.games import normal_form_game  # noqa: F401  (not in games' list)

        return pyspiel.load_game(self.name, self.params)


def _last_player_action(state):
    """The agent's previous action, read from the history ``init, a_0, c_0, a_1, c_1, ..``
    (mean-field updates are not actions): its last entry at a chance node, the one
    before at a decision or mean-field node; ``None`` before the first action."""
    import pyspiel

    history = state.history()
    if state.current_player() == pyspiel.PlayerId.CHANCE:
        return history[-1] if len(history) >= 2 else None
    return history[-2] if len(history) >= 3 else None


def pairing(game) -> Pairing:
    """The OpenSpiel game and conventions matching an mfax ``openspiel.*`` game."""
    name = game.name

    def locate_xt(state):  # decision nodes print as "(x, t)"
        x, t = _ints(state)
        return t, x

    if name == "openspiel.crowd_modelling":
        params = {"size": game.size, "horizon": game.horizon}
        return Pairing("mfg_crowd_modelling", params, locate_xt, rule_key=_last_player_action)
    if name == "openspiel.linear_quadratic":
        # OpenSpiel's horizon is a time: the tree ends at the first tick with tick dt >= horizon
        horizon = game.horizon * game.dt
        if abs(horizon - round(horizon)) > 1e-9 or not (game.horizon - 1) * game.dt < round(horizon):
            raise ValueError(f"T dt = {horizon} is not a whole OpenSpiel horizon")
        params = {
            "size": game.size,
            "horizon": round(horizon),
            "dt": game.dt,
            "n_actions_per_side": game.n_actions_per_side,
            "volatility": game.volatility,
            "mean_revert": game.mean_revert,
            "cross_q": float(game.cross_q),
            "kappa": float(game.kappa),
            "terminal_cost": float(game.terminal_cost),
        }
        return Pairing("mean_field_lin_quad", params, locate_xt, rule_key=_last_player_action)
    if name == "openspiel.periodic_aversion":
        params = {
            "size": game.size,
            "horizon": game.horizon,
            "dt": game.dt,
            "xmin": game.xmin,
            "xmax": game.xmax,
            "n_actions_per_side": game.n_actions_per_side,
            "volatility": game.volatility,
            "coef_aversion": float(game.coef_aversion),
        }
        return Pairing("python_mfg_periodic_aversion", params, locate_xt, rule_key=_last_player_action)
    if name == "openspiel.crowd_modelling_2d":

        def locate_xyt(state):  # decision nodes print as "(x, y, t)"
            x, y, t = _ints(state)
            return t, x * game.size + y

        params = {
            k: getattr(game, k)
            for k in (
                "size",
                "horizon",
                "only_distribution_reward",
                "forbidden_states",
                "initial_distribution",
                "initial_distribution_value",
                "positional_reward",
                "positional_reward_value",
                "with_congestion",
                "noise_intensity",
            )
        }
        params["crowd_aversion_coef"] = float(game.crowd_aversion_coef)
        return Pairing("mfg_crowd_modelling_2d", params, locate_xyt, rule_key=_last_player_action)
    if name == "openspiel.normal_form":
        params = {"num_actions": game.num_actions, "reward_function": game.reward_function}
        return Pairing("mean_field_nfg", params, lambda state: (0, 0))
    if name == "openspiel.garnet":
        keys = ("size", "horizon", "seed", "num_action", "num_chance_action", "sparsity_factor")
        params = {k: getattr(game, k) for k in keys}
        params["eta"] = float(game.eta)
        return Pairing("mfg_garnet", params, locate_xt, rule_key=_last_player_action)
    if name == "openspiel.dynamic_routing":
        sections = game.sections()

        def locate_route(state):
            text = state.observation_string(0).split("|")[0]
            if text.startswith("Arrived"):
                return int(text.rsplit("t=", 1)[1]), game.done
            section = text.split("Location=")[1].split(",")[0]
            wait = int(text.split("waiting time=")[1].split(",")[0])
            t = int(text.split("t=")[1].split(",")[0])
            # a wait just set (mfax: w = -1) and one counted down print alike: both read row w
            return t, game.state_index(sections.index(section), wait)

        params = {
            "network": game.network,
            "max_num_time_step": game.max_num_time_step,
            "time_step_length": game.time_step_length,
        }
        return Pairing("mfg_dynamic_routing", params, locate_route)
    raise KeyError(f"no OpenSpiel pairing for {name!r}")


# -- OpenSpiel's side -----------------------------------------------------------------
def table_policy(pair: Pairing, os_game, table: np.ndarray):
    """``table[t, x, a]`` as an OpenSpiel policy."""
    from open_spiel.python import policy as policy_std

    class TablePolicy(policy_std.Policy):
        def action_probabilities(self, state, player_id=None):
            t, x = pair.locate(state)
            row = table[t, x]
            if pair.actions is None:
                return {a: float(row[a]) for a in state.legal_actions()}
            return {a: float(row[pair.actions[a]]) for a in state.legal_actions()}

    return TablePolicy(os_game, [0])


def openspiel_exploitability(pair: Pairing, os_game, table: np.ndarray) -> float:
    """OpenSpiel's ``nash_conv`` of the tabular policy."""
    from open_spiel.python.mfg.algorithms import nash_conv

    return float(nash_conv.NashConv(os_game, table_policy(pair, os_game, table)).nash_conv())


def openspiel_policy_table(pair: Pairing, os_game, game, policy) -> np.ndarray:
    """An OpenSpiel policy read back as ``table[t, x, a]`` over the decision nodes that
    the game reaches (a row no node reaches stays uniform)."""
    import pyspiel

    table = np.full((game.horizon, game.n_states, game.n_actions), np.nan)
    seen: set = set()
    stack = list(os_game.new_initial_states())
    while stack:
        state = stack.pop()
        key = state.observation_string(0)
        if key in seen or state.is_terminal():
            continue
        seen.add(key)
        player = state.current_player()
        if player == pyspiel.PlayerId.CHANCE:
            stack += [state.child(a) for a, p in state.chance_outcomes() if p > 0]
        elif player == pyspiel.PlayerId.MEAN_FIELD:
            child = state.clone()
            child.update_distribution([1.0 / len(state.distribution_support())] * len(state.distribution_support()))
            stack.append(child)
        else:
            t, x = pair.locate(state)
            for a, p in policy.action_probabilities(state).items():
                table[t, x, a if pair.actions is None else pair.actions[a]] = p
            stack += [state.child(a) for a in state.legal_actions()]
    return np.where(np.isnan(table), 1.0 / game.n_actions, table)


def openspiel_fp(pair: Pairing, os_game, iterations: int, game=None) -> tuple[list[float], list[float], list]:
    """OpenSpiel's fictitious play: ``nash_conv`` of iterates ``0..iterations``, the
    seconds of each iteration, and (given the mfax ``game``) each iteration's best
    response as a table (else an empty list)."""
    import time

    from open_spiel.python import policy as policy_std
    from open_spiel.python.mfg.algorithms import fictitious_play, nash_conv

    fp = fictitious_play.FictitiousPlay(os_game)
    values = [float(nash_conv.NashConv(os_game, policy_std.UniformRandomPolicy(os_game)).nash_conv())]
    seconds, responses = [], []
    for _ in range(iterations):
        start = time.perf_counter()
        fp.iteration()
        seconds.append(time.perf_counter() - start)
        values.append(float(nash_conv.NashConv(os_game, fp.get_policy()).nash_conv()))
        if game is not None:
            # the best response of this iteration (FictitiousPlay keeps it, with no public getter)
            responses.append(openspiel_policy_table(pair, os_game, game, fp._correlating_policy))
    return values, seconds, responses


def openspiel_md(
    pair: Pairing, os_game, iterations: int, lr: float, frozen: bool = False
) -> tuple[list[float], list[float]]:
    """OpenSpiel's mirror descent (learning rate ``lr``): ``nash_conv`` of iterates
    ``0..iterations`` and the seconds of each iteration.

    OpenSpiel's policy after an iteration reads the cumulative values by reference, and
    the next iteration adds to them while it walks the tree under that policy: a node
    whose children were already visited in this walk (from another parent) is evaluated
    under a policy that has seen part of this iteration's values. ``frozen=True`` gives
    each iteration a copy of the cumulative values to evaluate, the algorithm as it is
    defined (Perolat et al. 2022); nothing else changes."""
    import time

    from open_spiel.python.mfg import value
    from open_spiel.python.mfg.algorithms import mirror_descent, nash_conv

    class Frozen(mirror_descent.MirrorDescent):
        def get_projected_policy(self):
            snapshot = value.TabularValueFunction(self._game)
            for (key, action), v in self._cumulative_state_value._values.items():
                snapshot.set_value(key, v, action)
            players = list(range(self._game.num_players()))
            return mirror_descent.ProjectedPolicy(self._game, players, snapshot)

    md = (Frozen if frozen else mirror_descent.MirrorDescent)(os_game, lr=lr)
    values = [float(nash_conv.NashConv(os_game, md.get_policy()).nash_conv())]
    seconds = []
    for _ in range(iterations):
        start = time.perf_counter()
        md.iteration()
        seconds.append(time.perf_counter() - start)
        values.append(float(nash_conv.NashConv(os_game, md.get_policy()).nash_conv()))
    return values, seconds


# -- an independent walk of OpenSpiel's game tree --------------------------------------
def _policy_rows(pair: Pairing, table: np.ndarray, state) -> list[tuple[int, float]]:
    t, x = pair.locate(state)
    return [(a, float(table[t, x, a if pair.actions is None else pair.actions[a]])) for a in state.legal_actions()]


def walk_mean_field(pair: Pairing, os_game, table: np.ndarray) -> dict[str, float]:
    """Forward pass over the tree under ``table``: the probability of every node string
    reached (the strings hold the time, so one dictionary serves every step); a mean-field
    node registers ``[p.get(s, 0) for s in state.distribution_support()]``."""
    import pyspiel

    layer = {}
    for root in os_game.new_initial_states():
        layer[root.observation_string(0)] = (root, 1.0)
    probs: dict[str, float] = {}
    while layer:
        nxt: dict[str, list] = {}

        def add(state, p, nxt=nxt):
            if state.is_terminal():
                return
            key = state.observation_string(0)
            if key in nxt:
                nxt[key][1] += p
            else:
                nxt[key] = [state, p]

        probs.update({k: p for k, (_, p) in layer.items()})
        first = next(iter(layer.values()))[0]
        kind = first.current_player()
        if kind == pyspiel.PlayerId.MEAN_FIELD:
            for state, p in layer.values():
                child = state.clone()
                child.update_distribution([probs.get(x, 0.0) for x in state.distribution_support()])
                add(child, p)
        elif kind == pyspiel.PlayerId.CHANCE:
            for state, p in layer.values():
                for a, q in state.chance_outcomes():
                    if q > 0:
                        add(state.child(a), p * q)
        else:
            for state, p in layer.values():
                for a, q in _policy_rows(pair, table, state):
                    if q > 0:
                        add(state.child(a), p * q)
        layer = {k: (s, p) for k, (s, p) in nxt.items()}
    return probs


def walk_values(pair: Pairing, os_game, table: np.ndarray, key: str = "rules") -> tuple[float, float]:
    """``(best-response value, policy value)`` at the root by a memoised walk of the tree
    against ``table``'s mean field (module docstring: ``key``)."""
    import pyspiel

    probs = walk_mean_field(pair, os_game, table)

    def memo_key(state):
        k = state.observation_string(0)
        if key == "rules" and pair.rule_key is not None:
            return k, pair.rule_key(state)
        return k

    def value(state, best: bool, memo: dict) -> float:
        k = memo_key(state) if key != "none" else None
        if k is not None and k in memo:
            return memo[k]
        reward = state.rewards()[0]
        if state.is_terminal():
            v = reward
        elif state.current_player() == pyspiel.PlayerId.CHANCE:
            v = sum(q * value(state.child(a), best, memo) for a, q in state.chance_outcomes())
        elif state.current_player() == pyspiel.PlayerId.MEAN_FIELD:
            child = state.clone()
            child.update_distribution([probs.get(x, 0.0) for x in state.distribution_support()])
            v = reward + value(child, best, memo)
        elif best:
            v = reward + max(value(state.child(a), best, memo) for a in state.legal_actions())
        else:
            v = reward + sum(q * value(state.child(a), best, memo) for a, q in _policy_rows(pair, table, state))
        if k is not None:
            memo[k] = v
        return v

    roots = os_game.new_initial_states()
    br = sum(value(r, True, {}) for r in roots)
    pi = sum(value(r, False, {}) for r in roots)
    return br, pi


def walk_exploitability(pair: Pairing, os_game, table: np.ndarray, key: str = "rules") -> float:
    br, pi = walk_values(pair, os_game, table, key)
    return br - pi


# -- OpenSpiel's algorithms on its game with the previous action in the node strings ---
def rekeyed(pair: Pairing, os_game):
    """OpenSpiel's game with the agent's previous action appended to every node string.

    OpenSpiel's evaluators and algorithms key their values by the observation string;
    where a reward reads the previous action (crowd modelling's move cost, the linear-
    quadratic and periodic-aversion kinetic terms, garnet's reward) the string is too
    coarse and the first node visited lends its value to the others. This wrapper
    delegates every rule to the original state and only makes the strings (hence the
    keys) fine enough: a mean-field node's support lists each original string once per
    previous action and the registered distribution is summed back over them. OpenSpiel's
    ``NashConv``, ``FictitiousPlay`` and ``MirrorDescent`` then run unchanged on it.
    """
    import pyspiel

    inner_type = os_game.get_type()
    num_actions = os_game.num_distinct_actions()
    game_type = pyspiel.GameType(
        short_name=f"rekeyed_{inner_type.short_name}",
        long_name=f"{inner_type.long_name} (previous action in the strings)",
        dynamics=pyspiel.GameType.Dynamics.MEAN_FIELD,
        chance_mode=pyspiel.GameType.ChanceMode.EXPLICIT_STOCHASTIC,
        information=pyspiel.GameType.Information.PERFECT_INFORMATION,
        utility=pyspiel.GameType.Utility.GENERAL_SUM,
        reward_model=pyspiel.GameType.RewardModel.REWARDS,
        max_num_players=1,
        min_num_players=1,
        provides_information_state_string=False,
        provides_information_state_tensor=False,
        provides_observation_string=True,
        provides_observation_tensor=False,
        parameter_specification={},
    )
    game_info = pyspiel.GameInfo(
        num_distinct_actions=num_actions,
        max_chance_outcomes=os_game.max_chance_outcomes(),
        num_players=1,
        min_utility=-float("inf"),
        max_utility=float("inf"),
        utility_sum=None,
        max_game_length=os_game.max_game_length(),
    )

    def tag(last) -> str:
        return "|-" if last is None else f"|{last}"

    class Held:
        """The original state, copied with its own ``clone`` (Python's deepcopy of a
        C++ state goes through its serialization, which the garnet does not restore)."""

        def __init__(self, state):
            self.state = state

        def __deepcopy__(self, memo):
            return Held(self.state.clone())

    class State(pyspiel.State):
        def __init__(self, game, inner, last=None):
            super().__init__(game)
            self.held, self.last = Held(inner), last

        @property
        def inner(self):
            return self.held.state

        def current_player(self):
            return self.inner.current_player()

        def is_terminal(self):
            return self.inner.is_terminal()

        def _legal_actions(self, player):
            return self.inner.legal_actions(player)

        def chance_outcomes(self):
            return self.inner.chance_outcomes()

        def _apply_action(self, action):
            if self.inner.current_player() >= 0:
                self.last = action
            self.inner.apply_action(action)

        def _action_to_string(self, player, action):
            return self.inner.action_to_string(player, action)

        def rewards(self):
            return self.inner.rewards()

        def returns(self):
            return self.inner.returns()

        def distribution_support(self):
            return [s + tag(a) for s in self.inner.distribution_support() for a in range(num_actions)]

        def update_distribution(self, distribution):
            self.inner.update_distribution(list(np.asarray(distribution).reshape(-1, num_actions).sum(axis=1)))

        def __str__(self):
            return self.inner.observation_string(0) + tag(self.last)

    class Observer:
        def __init__(self):
            self.tensor, self.dict = np.zeros(0), {}

        def set_from(self, state, player):
            pass

        def string_from(self, state, player):
            return str(state)

    class Game(pyspiel.Game):
        def __init__(self):
            super().__init__(game_type, game_info, {})

        def new_initial_state(self):
            return State(self, os_game.new_initial_state())

        def make_py_observer(self, iig_obs_type=None, params=None):
            return Observer()

    return Game()


if __name__ == "__main__":  # a module: --help says what it is, anything else says it runs nothing
    from benchutil import module_only

    module_only("openspiel_adapter.py", __doc__)
