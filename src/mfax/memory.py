"""Will it fit? Memory estimates checked before anything large is allocated.

An exact evaluation or a structural training iteration holds, for every noise path it
computes, arrays of ``T x n`` and ``T x n x m`` entries (mean fields, policies, rewards,
Q-values, the policy network's per-state activations); a sampled population holds
``T x N`` agents per environment. :func:`require` compares such an estimate with the
memory the device has free (the accelerator's own figure when it reports one, else the
host's available memory) and refuses, in one line giving both, what cannot fit: a run
that would otherwise allocate until the machine runs out of memory.
"""

from __future__ import annotations

from mfax.dynamics.noise import exact_noise
from mfax.errors import GameError
from mfax.freememory import available_bytes, gigabytes
from mfax.games.base import Game
from mfax.games.validate import size_guard
from mfax.sharding import runs_held

# entries held per (path, step, state): policy, rewards, Q-values and the cotangent of a
# training iteration are (n, m) each; an evaluation keeps policy and rewards
TRAIN_ACTION_ARRAYS = 6
EVAL_ACTION_ARRAYS = 3
# one draw counted over a finite support: 10^9 draws over the beach bar's 102 paths asked
# XLA for 36 GB in one allocation
BYTES_PER_DRAW = 36


def require(nbytes: int, what: str, hint: str) -> None:
    """Raise a one-line :class:`GameError` when ``nbytes`` exceed the free memory."""
    free = available_bytes()
    if free is not None and nbytes > free:
        raise GameError(f"{what} needs about {gigabytes(nbytes)} of memory, only {gigabytes(free)} is free; {hint}")


def evaluation_bytes(game: Game, num_paths: int, info: bool, itemsize: int = 4) -> int:
    """An exact evaluation of ``num_paths`` paths (``info``: with the information-consistent
    best response, which compares every pair of paths' observation histories)."""
    n, m, horizon = game.n_states, game.n_actions, game.horizon
    per_path = itemsize * (horizon + 1) * n * (EVAL_ACTION_ARRAYS * m + 2)
    # the pairs' shared histories (the deviation's beliefs are never formed per pair:
    # mfax.evaluation.values.belief_mix)
    pairs = 6 * (horizon + 1) * num_paths**2 if info else 0
    return num_paths * per_path + pairs


def structural_bytes(game: Game, computed_paths: int, draws: int, width: int, itemsize: int = 4) -> int:
    """A structural training iteration computing ``computed_paths`` paths exactly, after
    ``draws`` counted draws over a finite support (0 when paths are drawn one by one);
    ``width`` is the policy network's hidden width (two activations per state and step)."""
    n, m, horizon = game.n_states, game.n_actions, game.horizon
    per_path = itemsize * (horizon + 1) * n * (TRAIN_ACTION_ARRAYS * m + 2 * width + 2)
    return computed_paths * per_path + BYTES_PER_DRAW * draws


def population_bytes(game: Game, num_envs: int, num_agents: int, width: int, copies: int, itemsize: int = 4) -> int:
    """A model-free iteration: ``num_envs`` sampled populations of ``num_agents`` for ``T``
    steps (states, actions, rewards, values and activations per agent; ``copies`` of the
    transitions kept, as in a replay buffer)."""
    per_agent_step = itemsize * (game.n_actions + 2 * width + 8)
    return num_envs * (game.horizon + 1) * (num_agents * per_agent_step * copies + itemsize * game.n_states)


def samples_populations(hparams: dict) -> bool:
    """Whether a solver with these (resolved) hyper-parameters trains on sampled
    populations (``num_envs`` of ``num_agents`` agents, each population with its own noise
    path): the model-free solvers, which use no ``paths`` of the configuration."""
    return "num_envs" in hparams and "num_agents" in hparams


def replay_batch_bytes(game: Game, hp: dict, itemsize: int = 4) -> int:
    """A gradient step on ``batch_size`` transitions drawn from a replay buffer (M-OMD;
    0 without one): per transition the activations of three passes of the network (the
    trained one with its gradient, the target and the collecting policy) and a few entries
    for its indices and observations."""
    if "batch_size" not in hp:
        return 0
    e, a, s, w = (int(hp.get(k, 0)) for k in ("obs_embed", "aggregate_embed", "state_embed", "mlp_width"))
    per_row = 3 * (e + a + s + 2 * w + game.n_actions) + 32
    return itemsize * int(hp["batch_size"]) * per_row


def training_bytes(config, game: Game, exact_paths: int | None, support_size: int | None) -> int:
    """Peak estimate of one iteration of a resolved training ``config`` or of its
    evaluation. ``exact_paths``: the number of enumerated paths when the noise is exact
    (else ``None``); ``support_size``: that of the game's finite noise support (``None``:
    not finite)."""
    itemsize = 8 if config.x64 else 4
    width = int(config.hparams.get("mlp_width", 0))  # solvers without a network: 0
    eval_paths = exact_paths or config.eval_paths
    need = evaluation_bytes(game, eval_paths, support_size is not None, itemsize)
    hp = config.hparams
    if samples_populations(hp):  # model-free: sampled populations
        copies = 1 + int(hp.get("buffer_iterations", 0))
        train = population_bytes(game, hp["num_envs"], hp["num_agents"], width, copies, itemsize)
        train += replay_batch_bytes(game, hp, itemsize)
    elif exact_paths is not None:  # structural on the enumerated paths, or tables over them
        train = structural_bytes(game, exact_paths, 0, width, itemsize)
    elif support_size is not None and support_size < config.paths:  # draws counted over the support
        train = structural_bytes(game, support_size, config.paths, width, itemsize)
    else:
        train = structural_bytes(game, config.paths, 0, width, itemsize)
    # runs vmapped in one program (on accelerators, or over a mesh) hold their iterations'
    # arrays at once; a mesh divides them between its devices' memories (the host's, alone,
    # for CPU devices)
    train = int(train * runs_held(config.num_runs, config.devices))
    return max(need, train) + config.num_runs * run_state_bytes(game, hp, exact_paths or 1, itemsize)


def run_state_bytes(game: Game, hp: dict, table_paths: int, itemsize: int = 4) -> int:
    """One run's training state: a network's parameters with their gradient and Adam's two
    moments (from the declared sizes), or a tabular solver's few ``(P, T, n, m)`` tables
    (MF-PSRO's ``max_policies`` more: its set)."""
    n, m, horizon = game.n_states, game.n_actions, game.horizon
    if "mlp_width" not in hp:
        tables = 4 + int(hp.get("max_policies", 0))  # mf_psro holds its set of policies besides
        return tables * itemsize * table_paths * horizon * n * m
    w, g, e = (int(hp.get(k, 0)) for k in ("mlp_width", "gru_hidden", "obs_embed"))
    s, a = int(hp.get("state_embed", 0)), int(hp.get("aggregate_embed", 0))
    params = 16 * e + 3 * (e * g + g * g) + g * a + e * a + n * s + (s + a) * w + w * w + w * m
    return 4 * itemsize * params


def check_evaluation(game: Game, mode: str, num_paths: int, itemsize: int = 4) -> None:
    """Refuse an evaluation (noise ``mode``, ``num_paths`` if sampled) that cannot fit;
    first, a game whose kernels alone cannot (its noise support may not fit either)."""
    size_guard(game)
    exact = exact_noise(game, mode)
    paths = num_paths if exact is None else exact.num_paths
    need = evaluation_bytes(game, paths, game.noise_support() is not None, itemsize)
    require(need, f"an evaluation of {game.name} on {paths} noise paths", "use fewer --paths")


def krusell_smith_bytes(game: Game, settings) -> int:
    """About the largest memory a Krusell-Smith solve needs (float64;
    :mod:`mfax.solvers.krusell_smith`, ``settings`` its ``KrusellSmithSettings``): the
    households' continuation on the grid at every ``t`` with one step's intermediates (the
    value at the quadrature nodes, each grid point's Q-values and kernel), and the larger
    of the simulation of ``paths`` and the exact evaluation of ``eval_paths``."""
    n, m, horizon = game.n_states, game.n_actions, game.horizon
    grid = settings.capital_points * settings.z_points
    households = 8 * n * grid * (horizon + settings.quadrature + 8 * m)
    simulation = 8 * settings.paths * (horizon + 1) * n * (m + 2)
    scoring = evaluation_bytes(game, settings.eval_paths, game.noise_support() is not None, itemsize=8)
    return households + max(simulation, scoring)


def oracle_bytes(game: Game) -> int:
    """About the largest memory the transition-path oracle needs (float64;
    :mod:`mfax.solvers.macro_oracle`): per step of a price path the kernel (two
    neighbours per state and action: int32 indices and float64 weights), the rewards
    (with the terminal row set: two copies), the Q-values and the greedy policy, with
    as much again for XLA's intermediates; then the exact evaluation of the result."""
    n, m, horizon = game.n_states, game.n_actions, game.horizon
    per_step = n * m * (2 * (4 + 8) + 8 * (2 + 1 + 1))
    return 2 * horizon * per_step + evaluation_bytes(game, 1, False, itemsize=8)
