"""Training configuration: one typed dataclass, per-game published defaults, validation.

A config comes from defaults, then an optional TOML/JSON file, then command-line flags;
the resolved config (every default filled in) is saved in the run directory.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mfax import memory, params
from mfax.dynamics.noise import NOISE_MODES, exact_noise
from mfax.errors import ArgumentError, GameError, advice
from mfax.games import game_class, make
from mfax.games.plugins import canonical, is_reference, short_name
from mfax.games.registry import build
from mfax.games.validate import defects_named, size_guard, validate_game
from mfax.memory import require, samples_populations, training_bytes
from mfax.run.trackers import check_trackers
from mfax.solvers import solver_names, solver_spec

MAX_PATHS = 2**31 - 1
# Published per-game defaults (docs/algorithms/spg.md): paths per iteration and learning
# rate. Games not listed use DEFAULTS.
DEFAULTS = {"paths": 8, "lr": 1e-3}
# The range `mfax tune` searches for ``--lr`` (TrainConfig.lr) by default, log-uniform:
# two decades either side of the default 1e-3 (the macro game's 1e-2 inside too).
LR_SEARCH = (1e-5, 1e-1, "log")
GAME_DEFAULTS: dict[str, dict[str, Any]] = {
    "beach_bar": {"paths": 128, "lr": 1e-3},
    "linear_quadratic": {"paths": 8, "lr": 1e-3},
    "macro": {"paths": 8, "lr": 1e-2},
}
# Per-game solver hyper-parameter defaults (``--hp`` still overrides). The macro game's
# savings rate is a fraction on a fine grid: its published policies have a Beta head and
# read states by their features. Its prices come from the sampled wealth distribution:
# with 8 households per population they are far from the mean field's (often all at
# zero wealth: K = 0), and PPO/M-OMD learn the wrong economy; 128 is the published
# sweep's next value.
GAME_POLICY: dict[str, dict[str, Any]] = {"macro": {"head": "beta", "state_input": "features"}}
_MACRO_POLICY = GAME_POLICY["macro"]
GAME_HPARAMS: dict[str, dict[str, dict[str, Any]]] = {
    "macro": {
        "spg": _MACRO_POLICY,
        "rspg": _MACRO_POLICY,
        "ippo": {**_MACRO_POLICY, "num_agents": 128},
        "rippo": {**_MACRO_POLICY, "num_agents": 128},
        "momd": {"state_input": "features", "num_agents": 128},
    },
}
# Config files written before the network sizes became hyper-parameters carry a
# ``network`` table; its entries are read as ``hparams`` (``None``: the default).
LEGACY_NETWORK_KEYS = ("obs_embed", "gru_hidden", "state_embed", "aggregate_embed", "mlp_width", "head", "state_input")


@dataclass
class TrainConfig:
    """Everything that defines a training run (see ``mfax train --help``)."""

    game: str = "beach_bar"
    params: dict[str, Any] = field(default_factory=dict)
    algo: str = "rspg"
    iterations: int = 200
    paths: int | None = None
    noise: str = "auto"
    lr: list[float] | None = None
    seeds: int = 1
    seed: int = 0
    eval_every: int = 10
    eval_paths: int = 64
    hparams: dict[str, Any] = field(default_factory=dict)
    devices: int | None = None
    x64: bool = False
    log_to: list[str] = field(default_factory=list)  # optional trackers: tensorboard, wandb
    keep: int = 0  # also keep the checkpoints of the last `keep` evaluations (best and last: always)

    @property
    def param_sets(self) -> list[dict[str, Any]]:
        """The game's parameters of each run: a list value sweeps that parameter (every
        combination of the swept values, by the parameters' names in alphabetical order,
        the last name varying fastest: an order that config.json, whose keys are sorted,
        keeps, whatever order the parameters were given in)."""
        lists, swept = self._lists(), self.swept()
        fixed = {k: v for k, v in self.params.items() if k not in lists}
        fixed.update({k: v[0] for k, v in lists.items() if len(v) == 1})  # one value: not a sweep
        return [{**fixed, **dict(zip(swept, combo, strict=True))} for combo in itertools.product(*swept.values())]

    @property
    def num_runs(self) -> int:
        return self.seeds * len(self.param_sets) * len(self.lr or [0.0])

    def run_seed(self, r: int) -> int:
        """Runs are ordered seed-major, then game parameters, then learning rate."""
        return self.seed + r // (len(self.lr) * len(self.param_sets))

    def run_lr(self, r: int) -> float:
        return self.lr[r % len(self.lr)]

    def run_params(self, r: int) -> dict[str, Any]:
        """The game's parameters of run ``r``."""
        return self.param_sets[(r // len(self.lr)) % len(self.param_sets)]

    def _lists(self) -> dict[str, list]:
        """The game parameters given a list of values (a parameter whose value is itself a
        list excepted), by name."""
        return {k: v for k, v in sorted(self.params.items()) if isinstance(v, list) and not is_list_param(self.game, k)}

    def swept(self) -> dict[str, list]:
        """The swept game parameters, those given several values, and their values, by
        name (empty: no sweep). A list of one value is that value (``kappa = [0.5]`` in a
        config file made the runs "of different games" in every output)."""
        return {k: v for k, v in self._lists().items() if len(v) > 1}

    def run_dict(self, r: int) -> dict[str, Any]:
        """The configuration of run ``r`` alone (its game parameters, seed and learning
        rate, one seed): what an output of one run of several records (the whole config
        listed every run's values beside one run's parameters)."""
        own = {"params": self.run_params(r), "seed": self.run_seed(r), "seeds": 1}
        return {**self.to_dict(), **own, **({"lr": [self.run_lr(r)]} if self.lr else {})}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """config.json's text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save(self, path: Path) -> None:
        path.write_text(self.to_json())


def is_list_param(game: str, key: str) -> bool:
    """Whether the game's parameter ``key`` is itself a list of numbers (a list value is
    then its value, not a sweep)."""
    try:
        field = params.fields_of(game_class(game)).get(key)
    except GameError:
        return False
    return field is not None and isinstance(field.default, tuple)


def _check_sweep(config: TrainConfig) -> None:
    """A swept parameter must be traced (it only enters arithmetic), so that every run
    shares one compiled program; its values must not be empty."""
    traced = params.traced_names(game_class(config.game))
    for key, values in config._lists().items():
        if key not in traced and len(values) > 1:
            raise GameError(
                f"game parameter {key!r} of {config.game!r} cannot take several values in one run (it fixes the "
                f"program's shapes or set-up; train one run per value); parameters that can: {', '.join(traced)}"
            )
        if not values:
            raise GameError(f"game parameter {key!r}: a sweep needs at least one value, got []")
        _distinct(f"game parameter {key!r}", values, config.algo)


def _distinct(what: str, values: list, algo: str) -> None:
    """Runs that differ only by a repeated value of a sweep would be copies of each other
    (``algo``: whether ``--seeds N``, ``seeds=N``, repeats a setting, or is deterministic too)."""
    repeated = next((v for i, v in enumerate(values) if v in values[:i]), None)
    if repeated is not None:
        seeded = algo not in solver_names() or solver_spec(algo).seeded  # (a plug-in: its spec is loaded later)
        repeats = advice("--seeds N", "seeds=N")
        hint = f" (for repeats of one setting: {repeats})" if seeded else f" ({short_name(algo)} is deterministic)"
        raise GameError(
            f"{what} lists {repeated!r} more than once ({', '.join(map(repr, values))}): those runs would be "
            f"copies of one another; give distinct values{hint}"
        )


def game_defaults(game: str) -> dict[str, Any]:
    """The published defaults of ``game``'s training runs (paths per iteration, learning rate)."""
    return {**DEFAULTS, **GAME_DEFAULTS.get(game, {})}


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise ArgumentError(name, f"{name} must be >= 1, got {value}")
    if value > params.INT32_MAX:
        raise ArgumentError(name, f"{name} must be at most {params.INT32_MAX} (counted in int32), got {value}")


def resolve(config: TrainConfig) -> TrainConfig:
    """Fill per-game defaults and validate everything; raises one-line ``GameError``. A
    game or solver named by a file reference is recorded by its absolute path."""
    config = dataclasses.replace(config, game=canonical(config.game), algo=canonical(config.algo))
    game_class(config.game)  # unknown game -> error listing the allowed ones
    _check_sweep(config)
    # unknown / impossible parameters; the game's checks come after the memory estimate
    # (a huge economy's checks take minutes before the refusal they would only delay)
    games = [build(config.game, **p) for p in config.param_sets]
    game = games[0]
    spec = solver_spec(config.algo)  # unknown algorithm -> error
    game_hparams = GAME_HPARAMS.get(config.game, {}).get(config.algo, {})
    hparams = spec.resolve_hparams({**game_hparams, **config.hparams})  # unknown / bad hparams -> error
    if config.noise not in NOISE_MODES:
        raise GameError(f"unknown noise mode {config.noise!r}; allowed: {', '.join(NOISE_MODES)}")
    defaults = game_defaults(config.game)
    paths = config.paths if config.paths is not None else defaults["paths"]
    lr = list(config.lr) if config.lr else [defaults["lr"]]
    for name in ("iterations", "seeds", "eval_every", "eval_paths"):
        _positive(name, getattr(config, name))
    _positive("paths", paths)
    if paths > MAX_PATHS:
        raise ArgumentError("paths", f"paths must be at most {MAX_PATHS} (draws are counted in int32), got {paths}")
    if config.devices is not None:
        _positive("devices", config.devices)
    if not 0 <= config.keep <= params.INT32_MAX:  # (10^23 was recorded in config.json as it was)
        raise ArgumentError("keep", f"keep must be in 0..{params.INT32_MAX}, got {config.keep}")
    top = params.SEED_MAX - (config.seeds - 1)  # runs use seeds seed..seed+seeds-1
    if not 0 <= config.seed <= top:
        raise ArgumentError(
            "seed", f"seed must lie in 0..{top} (PRNG seeds are 32-bit; {config.seeds} seeds), got {config.seed}"
        )
    if config.lr is not None and not config.lr:
        raise GameError("lr is an empty list; give at least one learning rate, or leave lr out for the default")
    if any(not (0.0 < x < math.inf) for x in lr):
        raise GameError(f"learning rates must be finite and > 0, got {lr}")
    _distinct("lr", lr, config.algo)
    check_trackers(list(config.log_to))  # unknown tracker or its package missing
    resolved = dataclasses.replace(config, paths=paths, lr=lr, hparams=hparams)
    with defects_named(game):
        _check_memory(resolved, game)
    for g in games:
        validate_game(g)
    return resolved


def check_lr_used(algo: str, given: str | None = None) -> None:
    """A learning rate given (``--lr``, ``solve(lr=...)``) to a solver that takes none: one
    line (it used to be ignored, and a list of rates trained identical copies). Checked
    where a user gives a new configuration, not in :func:`resolve`: every stored config
    holds the default rate, whatever its solver. ``given``: where the rate came from
    (default: the option, or the keyword argument from Python)."""
    spec = solver_spec(algo)
    if spec.uses_lr:
        return
    lr = advice("--lr", "lr")
    takes = ", ".join(n for n in solver_names() if solver_spec(n).uses_lr)
    own = spec.hparams is not None and "lr" in params.fields_of(spec.hparams)
    why = f"its step size is {advice('--hp lr', 'the hyper-parameter lr (hp)')}" if own else "it has no learning rate"
    raise GameError(f"{given or lr} is not used by {short_name(algo)}: {why} (solvers that take {lr}: {takes})")


def _check_memory(config: TrainConfig, game) -> None:
    """Refuse, before anything is allocated, an iteration that cannot fit in memory
    (first, a game whose kernels alone cannot: its noise support may not fit either)."""
    size_guard(game)
    exact = exact_noise(game, config.noise)
    if exact is not None:
        support_size = exact.num_paths
    else:
        support = game.noise_support()
        support_size = None if support is None else int(support.weight.shape[0])
    need = training_bytes(config, game, None if exact is None else exact.num_paths, support_size)
    runs = config.num_runs
    hp = config.hparams
    if exact is None:
        alone = training_bytes(dataclasses.replace(config, eval_paths=1), game, None, support_size)
        free = memory.available_bytes()  # (the figure require compares with)
        if free is not None and alone <= free < need:  # only the evaluation does not fit: say so
            what = f"evaluating a checkpoint ({config.game}, {config.eval_paths} evaluation noise paths)"
            fewer = advice("--eval-paths", "eval_paths")
            require(need, what, f"use fewer {fewer} (the training iterations alone would fit)")
    spec = solver_spec(config.algo)
    hp_option = advice("--hp", "hp")
    if samples_populations(hp):
        size = f"{hp['num_envs']} populations of {hp['num_agents']} agents"
        knobs = [f"fewer or smaller populations ({hp_option} num_envs / num_agents)"]
        knobs += ["a smaller batch_size / buffer_iterations"] if "batch_size" in hp else []
    elif exact is None:
        size = f"{config.paths} noise paths"
        knobs = [f"fewer {advice('--paths (or --eval-paths)', 'paths (or eval_paths)')}"]
    else:  # every path of the support is computed: only a smaller game has fewer
        size = f"{exact.num_paths} noise paths, the game's whole support"
        knobs = ["a smaller game (fewer states, steps or noise paths in its support)"]
    # only what this configuration has more than one of, and what it has at all
    knobs += [f"fewer {advice('--seeds', 'seeds')}"] if config.seeds > 1 else []
    knobs += ["fewer learning rates"] if spec.uses_lr and len(config.lr or ()) > 1 else []
    knobs += ["fewer swept values"] if len(config.param_sets) > 1 else []
    knobs += [f"smaller {hp_option} network sizes"] if "mlp_width" in hp else []
    what = f"one training iteration ({config.game}, {config.algo}, {size}" + (
        f", {runs} runs side by side)" if runs > 1 else ")"
    )
    require(need, what, "use " + (", ".join(knobs[:-1]) + " or " if len(knobs) > 1 else "") + knobs[-1])


def check_seeds_used(config: TrainConfig, given: str | None = None, leave: str | None = None) -> None:
    """Several seeds (``--seeds N``, ``solve(seeds=N)``) for a deterministic solver: one
    line (it trained ``N`` identical copies without a word). Checked where a user gives a
    new configuration, like :func:`check_lr_used`; ``given``: how the user gave them (the
    count goes in the braces), ``leave``: what to do instead (defaults: the option, or
    the keyword argument from Python)."""
    if config.seeds > 1 and not solver_spec(config.algo).seeded:
        given = given or advice("--seeds {}", "seeds={}")
        leave = leave or advice("leave --seeds out", "leave seeds at 1")
        raise GameError(
            f"{given.format(config.seeds)}: {short_name(config.algo)} is deterministic (it draws nothing from its "
            f"seed), so every seed trains the same run; {leave}"
        )


def check_paths_used(config: TrainConfig, paths: bool, eval_paths: bool, names: tuple[str, str] | None = None) -> None:
    """``--paths`` / ``--eval-paths`` given (``paths``, ``eval_paths``) where the resolved
    ``config`` does not use them: one line (they were recorded in config.json as if used).
    The model-free solvers sample their own populations, each with its own noise path;
    enumerated (exact) noise computes every path of the support, in training and in the
    evaluation. Like :func:`check_lr_used`, checked where a user gives a new configuration;
    ``names``: how the user gave them (default: the command's options, or the keyword
    arguments from Python)."""
    names = names or (advice("--paths", "paths="), advice("--eval-paths", "eval_paths="))
    game = make(config.game, **config.param_sets[0])
    exact = exact_noise(game, config.noise)
    name = short_name(config.algo)
    if paths and samples_populations(config.hparams):
        raise GameError(
            f"{names[0]} is not used by {name}: each iteration samples num_envs={config.hparams['num_envs']} "
            f"populations (a hyper-parameter), each with its own noise path"
        )
    if exact is None:
        return
    flag = names[0] if paths else names[1] if eval_paths else None
    if flag is not None:
        computed = f"every one of {game.name}'s {exact.num_paths} noise paths is"
        if exact.num_paths == 1:
            computed = f"{game.name}'s one noise path is"
        raise GameError(f"{flag} is not used with exact noise: {computed} computed (sampled noise draws paths)")


def _allows(hint: Any, value: Any) -> bool:
    """Whether ``value`` (as read from TOML or JSON) has the declared type ``hint``; ints
    pass for floats, booleans pass only for ``bool``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_allows(a, value) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_allows(args[0], v) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null"}
# ... in Python's words, and the keyword arguments of mfax.solve / mfax.tune that are not
# named as the config's keys
_PYTHON_KINDS = {**_KINDS, bool: "True or False", type(None): "None"}
_PYTHON_NAMES = {"hparams": "hp"}


def _kind(hint: Any, python: bool = False) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_kind(a, python) for a in args)
    if origin is list:
        return f"a list of {_kind(args[0], python).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return "a dict (name: value)" if python else "a table of key = value"
    return (_PYTHON_KINDS if python else _KINDS).get(hint, hint.__name__)


def _check_types(cls: type, data: dict[str, Any], prefix: str = "", python: bool = False) -> None:
    """One-line error for the first value whose type is not the field's declared type
    (``python``: named as the keyword argument, in Python's words)."""
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        if not _allows(hints[key], value):
            name = _PYTHON_NAMES.get(key, key) if python else f"config key {prefix + key!r}"
            raise GameError(f"{name} must be {_kind(hints[key], python)}, got {value!r}")


def from_dict(data: dict[str, Any], python: bool = False) -> TrainConfig:
    """Build a config from a (possibly partial) mapping; unknown keys and values of the
    wrong type (``iterations = "ten"``, ``x64 = "no"``) are errors, named as the config
    file's keys (``python``: as the keyword arguments of ``mfax.solve``, in Python's words)."""
    if not isinstance(data, dict):
        raise GameError(f"a configuration is a table of key = value (a JSON object), got {type(data).__name__}")
    data = dict(data)
    net = data.pop("network", None)  # before the key check: a legacy table, read below
    allowed = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise GameError(f"unknown config key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    net = {} if net is None else net
    if not isinstance(net, dict):
        raise GameError(f"config key 'network' must be a table of key = value, got {net!r}")
    unknown = sorted(set(net) - set(LEGACY_NETWORK_KEYS))
    if unknown:
        raise GameError(f"unknown network key {unknown[0]!r}; allowed: {', '.join(LEGACY_NETWORK_KEYS)}")
    if isinstance(data.get("lr"), int | float) and not isinstance(data["lr"], bool):
        data["lr"] = [data["lr"]]
    elif not _allows(list[float] | None, data.get("lr")):
        name = "lr" if python else "config key 'lr'"
        raise GameError(f"{name} must be a number or a list of numbers, got {data['lr']!r}")
    _check_types(TrainConfig, data, python=python)
    if data.get("lr") is not None:
        data["lr"] = [float(x) for x in data["lr"]]
    declared = _declared_hparams(data.get("algo", TrainConfig.algo))
    legacy = {k: v for k, v in net.items() if v is not None and k in declared}
    if legacy:
        data["hparams"] = {**legacy, **data.get("hparams", {})}
    return TrainConfig(**data)


def _declared_hparams(algo: Any) -> set[str]:
    """The hyper-parameters solver ``algo`` declares (none for an unknown one: resolve
    reports that)."""
    if not isinstance(algo, str) or is_reference(algo):  # (reading a config never runs a user's code)
        return set()
    try:
        hparams = solver_spec(algo).hparams
    except GameError:
        return set()
    return set() if hparams is None else set(params.fields_of(hparams))


def load_file(path: Path) -> TrainConfig:
    """Read a TOML (``.toml``) or JSON config file; a file reference in it
    (``game = "games/crowd.py:Crowd"``) is relative to the config file's folder."""
    if path.is_dir():
        raise GameError(f"config file {str(path)!r} is a directory; --config names a .toml or .json file")
    if not path.is_file():
        raise GameError(f"config file {str(path)!r} does not exist")
    if path.suffix not in (".toml", ".json"):
        raise GameError(
            f"config file {str(path)!r}: mfax reads .toml and .json config files, got {path.suffix or 'no suffix'!r}"
        )
    try:
        text = path.read_bytes().decode()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise GameError(f"cannot parse config file {str(path)!r}: {err}") from None
    config = from_dict(data)
    here = path.resolve().parent
    return dataclasses.replace(config, game=canonical(config.game, here), algo=canonical(config.algo, here))
