"""Training configuration: one typed dataclass, per-game published defaults, validation.

A config comes from defaults, then an optional TOML/JSON file, then command-line flags;
the resolved config (every default filled in) is saved in the run directory.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mfax.dynamics.noise import NOISE_MODES
from mfax.games import GameError, game_class, make
from mfax.solvers import solver_spec

# Published per-game defaults (docs/algorithms/spg.md): paths per iteration, learning rate,
# policy head and state input. Games not listed use DEFAULTS.
DEFAULTS = {"paths": 8, "lr": 1e-3, "head": "discrete", "state_input": "embedding"}
GAME_DEFAULTS: dict[str, dict[str, Any]] = {
    "beach_bar": {"paths": 128, "lr": 1e-3},
    "linear_quadratic": {"paths": 8, "lr": 1e-3},
    "macro": {"paths": 8, "lr": 1e-2, "head": "beta", "state_input": "features"},
}
# Per-game solver hyper-parameter defaults (``--hp`` still overrides). The macro game's
# prices come from the sampled wealth distribution: with 8 households per population
# they are far from the mean field's (often all at zero wealth: K = 0), and PPO/M-OMD
# learn the wrong economy; 128 is the published sweep's next value.
GAME_HPARAMS: dict[str, dict[str, dict[str, Any]]] = {
    "macro": {algo: {"num_agents": 128} for algo in ("ippo", "rippo", "momd")},
}


@dataclass
class NetworkConfig:
    """Policy network sizes (published: 128 / 128 / 64 / 64 / 128)."""

    obs_embed: int = 128
    gru_hidden: int = 128
    state_embed: int = 64
    aggregate_embed: int = 64
    mlp_width: int = 128
    head: str | None = None  # "discrete" | "beta"; None = the game's default
    state_input: str | None = None  # "embedding" | "features"; None = the game's default


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
    network: NetworkConfig = field(default_factory=NetworkConfig)
    log_to: list[str] = field(default_factory=list)  # optional trackers: tensorboard, wandb
    keep: int = 0  # also keep the checkpoints of the last `keep` evaluations (best and last: always)

    @property
    def num_runs(self) -> int:
        return self.seeds * len(self.lr or [0.0])

    def run_seed(self, r: int) -> int:
        return self.seed + r // len(self.lr)

    def run_lr(self, r: int) -> float:
        return self.lr[r % len(self.lr)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """config.json's text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save(self, path: Path) -> None:
        path.write_text(self.to_json())


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise GameError(f"{name} must be >= 1, got {value}")


def resolve(config: TrainConfig) -> TrainConfig:
    """Fill per-game defaults and validate everything; raises one-line ``GameError``."""
    game_class(config.game)  # unknown game -> error listing the allowed ones
    make(config.game, **config.params)  # unknown / impossible parameters
    spec = solver_spec(config.algo)  # unknown algorithm -> error
    game_hparams = GAME_HPARAMS.get(config.game, {}).get(config.algo, {})
    hparams = spec.resolve_hparams({**game_hparams, **config.hparams})  # unknown / bad hparams -> error
    if config.noise not in NOISE_MODES:
        raise GameError(f"unknown noise mode {config.noise!r}; allowed: {', '.join(NOISE_MODES)}")
    defaults = {**DEFAULTS, **GAME_DEFAULTS.get(config.game, {})}
    paths = config.paths if config.paths is not None else defaults["paths"]
    lr = list(config.lr) if config.lr else [defaults["lr"]]
    net = dataclasses.replace(
        config.network,
        head=config.network.head or defaults["head"],
        state_input=config.network.state_input or defaults["state_input"],
    )
    for name in ("iterations", "seeds", "eval_every", "eval_paths"):
        _positive(name, getattr(config, name))
    _positive("paths", paths)
    for name in ("obs_embed", "gru_hidden", "state_embed", "aggregate_embed", "mlp_width"):
        _positive(f"network.{name}", getattr(net, name))
    if config.devices is not None:
        _positive("devices", config.devices)
    if config.keep < 0:
        raise GameError(f"keep must be >= 0, got {config.keep}")
    if any(not (x > 0.0) for x in lr):
        raise GameError(f"learning rates must be > 0, got {lr}")
    if net.head not in ("discrete", "beta"):
        raise GameError(f"unknown head {net.head!r}; allowed: discrete, beta")
    if net.state_input not in ("embedding", "features"):
        raise GameError(f"unknown state input {net.state_input!r}; allowed: embedding, features")
    from mfax.run.trackers import check_trackers  # here: trackers -> rundir -> config

    check_trackers(list(config.log_to))  # unknown tracker or its package missing
    return dataclasses.replace(config, paths=paths, lr=lr, network=net, hparams=hparams)


def from_dict(data: dict[str, Any]) -> TrainConfig:
    """Build a config from a (possibly partial) mapping; unknown keys are errors."""
    data = dict(data)
    allowed = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise GameError(f"unknown config key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    net = data.pop("network", {}) or {}
    net_allowed = {f.name for f in dataclasses.fields(NetworkConfig)}
    unknown = sorted(set(net) - net_allowed)
    if unknown:
        raise GameError(f"unknown network key {unknown[0]!r}; allowed: {', '.join(sorted(net_allowed))}")
    if "lr" in data and isinstance(data["lr"], int | float):
        data["lr"] = [float(data["lr"])]
    return TrainConfig(**data, network=NetworkConfig(**net))


def load_file(path: Path) -> TrainConfig:
    """Read a TOML (``.toml``) or JSON config file."""
    if not path.is_file():
        raise GameError(f"config file {str(path)!r} does not exist")
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise GameError(f"cannot parse config file {str(path)!r}: {err}") from None
    return from_dict(data)
