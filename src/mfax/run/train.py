"""The training driver: compiled chunks, evaluation between them, checkpoints, faults.

``train(config, out)`` runs ``config.num_runs`` runs (seeds x learning rates) side by
side in one compiled program, ``eval_every`` iterations per chunk. After each chunk it
evaluates every run exactly (both exploitabilities), appends metrics, replaces the
checkpoint and the summary (Ctrl-C and SIGTERM wait until all of them are written, so
they agree: :func:`deferred_signals`). Ctrl-C or a kill leaves the last checkpoint usable;
``resume(out)`` continues bit for bit. A non-finite gradient, return or parameter stops
the run with a message naming the iteration and the quantity; the last good checkpoint
stays.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh

from mfax.dynamics.noise import NoiseBatch, exact_noise, noise_batch
from mfax.errors import GameError, MfaxError, advice
from mfax.evaluation.exploitability import evaluate, exact_figures, negative_words
from mfax.games import Game, make
from mfax.games.validate import defect_behind
from mfax.policies.base import Policy
from mfax.run.columns import ADDED_COLUMNS, PARAMS
from mfax.run.config import TrainConfig, resolve
from mfax.run.provenance import plugin_versions, record_schedule, same_products
from mfax.run.provenance import record as record_provenance
from mfax.run.rundir import NO_CODE, Consent, RunDir, warn
from mfax.run.signals import Terminated, agreed_on_failure, deferred_signals
from mfax.run.trackers import check_trackers, open_trackers
from mfax.sharding import (
    agree,
    is_main_process,
    make_mesh,
    place_runs,
    run_to_host,
    to_host,
    train_mesh,
)
from mfax.solvers import Solver, driver, solver_spec
from mfax.solvers.base import Setting, build_solver

EVAL_SEED = 1_000_003


class TrainingDiverged(RuntimeError):
    """Raised when a non-finite value appears; the message names iteration and quantity."""


@dataclasses.dataclass
class Trainer:
    """Everything derived from a resolved config: games, solver, noise for training/eval.

    ``games`` holds one game per set of game parameters (one unless the config sweeps a
    traced parameter, :attr:`TrainConfig.param_sets`); every run trains and is scored on
    its own (:meth:`game_of`), all in one compiled program."""

    config: TrainConfig
    games: list[Game]
    solver: Solver
    eval_noises: list[NoiseBatch]
    eval_mesh: Mesh | None
    mesh: Mesh | None  # training mesh (runs x paths)

    @classmethod
    def build(cls, config: TrainConfig) -> Trainer:
        if config.x64 and not jax.config.jax_enable_x64:  # (the command line: one run per process; the
            jax.config.update("jax_enable_x64", True)  # Python API scopes it to the run: api._precision)
        games = [make(config.game, **p) for p in config.param_sets]
        exacts = [exact_noise(game, config.noise) for game in games]  # sampled paths are drawn per iteration
        _check_shared(config, games, exacts)
        # one fixed set of evaluation paths for every seed: runs are compared on common noise
        eval_noises = [
            exact
            if exact is not None
            else noise_batch(game, "sample", jax.random.PRNGKey(EVAL_SEED), config.eval_paths)
            for game, exact in zip(games, exacts, strict=True)
        ]
        mesh = train_mesh(config.devices, config.num_runs)
        spec = solver_spec(config.algo)
        setting = Setting(config.iterations, config.paths, exacts[0], mesh, config.num_runs)
        key, lr = jax.random.PRNGKey(config.run_seed(0)), config.run_lr(0)
        solver = build_solver(spec, games[0], spec.hparams_of(config.hparams), setting, key, lr)
        return cls(config, games, solver, eval_noises, make_mesh(config.devices), mesh)

    @property
    def game(self) -> Game:
        """The game (the first parameter set's when the config sweeps game parameters)."""
        return self.games[0]

    def _set_of(self, r: int) -> int:
        return self.config.param_sets.index(self.config.run_params(r))

    def game_of(self, r: int) -> Game:
        """Run ``r``'s game."""
        return self.games[self._set_of(r)]

    def eval_noise_of(self, r: int) -> NoiseBatch:
        return self.eval_noises[self._set_of(r)]

    @property
    def eval_noise(self) -> NoiseBatch:
        return self.eval_noises[0]

    def initial_states(self):
        config = self.config
        runs = range(config.num_runs)
        return driver.initial_states(
            self.solver, [config.run_seed(r) for r in runs], [config.run_lr(r) for r in runs], self._run_games()
        )

    def _run_games(self) -> list[Game] | None:
        return [self.game_of(r) for r in range(self.config.num_runs)] if len(self.games) > 1 else None

    def chunk_fn(self, length: int):
        return driver.chunk(self.solver, length, self._run_games())

    def compiled_chunk(self, length: int, states):
        """The chunk of ``length`` iterations compiled for ``states``, kept for this process
        (:func:`mfax.solvers.driver.compiled_chunk`)."""
        return driver.compiled_chunk(self.solver, length, states, self._run_games())

    def policy(self, states, r: int) -> Policy:
        # a sweep: run r's solver has run r's game (a table policy reads its observations)
        solver = self.solver if len(self.games) == 1 else eqx.tree_at(lambda s: s.game, self.solver, self.game_of(r))
        # run r alone fetched to the host: the policy is then free of the training mesh's layout
        # (device_put, not jnp.asarray: the same arrays without a copying program per shape)
        return solver.policy(jax.device_put(run_to_host(states, r)))

    def evaluate_run(self, states, r: int) -> dict[str, Any]:
        result = evaluate(self.game_of(r), self.policy(states, r), self.eval_noise_of(r), mesh=self.eval_mesh)
        return {
            "exploitability": result.exploitability,
            "exploitability_info": result.exploitability_info,
            "policy_return": result.policy_return,
            # estimated on drawn paths: the standard errors (null where the figures are exact)
            "exploitability_se": result.exploitability_se,
            "policy_return_se": result.policy_return_se,
        }


def _check_shared(config: TrainConfig, games: list[Game], exacts: list[NoiseBatch | None]) -> None:
    """Runs of a sweep share everything but the swept parameters' values: the enumerated
    noise, the state features and the action values must not depend on them."""
    first = games[0]
    for game, exact in zip(games[1:], exacts[1:], strict=True):
        same = _same(exact, exacts[0]) and _same(
            (game.state_features(), game.action_values()), (first.state_features(), first.action_values())
        )
        if not same:
            swept = ", ".join(config.swept())
            raise GameError(
                f"sweeping {swept} changes the noise support, the state features or the action values of "
                f"{config.game!r}, which the runs of one program share; train one run per value"
            )


def _same(a, b) -> bool:
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    if jax.tree.structure(a) != jax.tree.structure(b):
        return False
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(leaves_a, leaves_b, strict=True))


class Loaded(NamedTuple):
    """A trained policy read back: its trainer, the policy, its run index and the
    iteration its checkpoint holds."""

    trainer: Trainer
    policy: Policy
    run_index: int
    iteration: int


def load_policy(
    run: RunDir,
    r: int | None = None,
    which: str = "last",
    consent: Consent = NO_CODE,
) -> tuple[Trainer, Policy, int]:
    """The trained policy of run ``r`` of a run directory at checkpoint ``which`` (see
    :meth:`RunDir.checkpoint_for`; default: the last), with its trainer and run index
    (default: the best run by the evaluation at that checkpoint). ``consent``: the code
    outside mfax the run's config may import (:class:`~mfax.run.rundir.Consent`)."""
    return load_policy_at(run, r, which, consent)[:3]


def load_policy_at(run: RunDir, r: int | None = None, which: str = "last", consent: Consent = NO_CODE) -> Loaded:
    """:func:`load_policy`, with the iteration the checkpoint holds."""
    trainer, states, held = load_states(run, which, consent)
    r = best_run(run.read_metrics(), held) if r is None else r
    if not 0 <= r < trainer.config.num_runs:
        raise GameError(f"run index {r} out of range; allowed: 0..{trainer.config.num_runs - 1}")
    return Loaded(trainer, trainer.policy(states, r), r, held)


def load_states(run: RunDir, which: str = "last", consent: Consent = NO_CODE) -> tuple[Trainer, Any, int]:
    """The training states of every run of a run directory at checkpoint ``which``, on
    the host, with their trainer and the iteration they hold. ``consent``: as in
    :func:`load_policy`."""
    run.settle()  # what a killed --overwrite left aside: the run it was replacing is the run
    config = run.load_config(consent)
    if not (run.has_checkpoint() or run.has_other_checkpoints()):
        evaluated = [row["iteration"] for row in run.read_metrics()]
        if evaluated:  # (its checkpoint files were removed: --resume would refuse to start again)
            raise GameError(
                f"run {str(run.root)!r} has no checkpoint file left, though metrics.jsonl records evaluations up to "
                f"iteration {max(evaluated)}: restore checkpoint.eqx and checkpoint.json (or checkpoint-best.*)"
            )
        raise GameError(
            f"run {str(run.root)!r} has no checkpoint yet (stopped before its first evaluation); "
            f"`mfax train --resume {run.root}` trains it"
        )
    path = run.checkpoint_for(which)
    trainer = Trainer.build(config)
    states = run.load_checkpoint(to_host(trainer.initial_states()), path)
    held = int(to_host(states.iteration)[0])
    if which.isdigit() and held != int(which):  # summary.json older than the checkpoints (a kill between writes)
        name = {run.checkpoint_path: "last", run.best_checkpoint_path: "best"}.get(path, str(held))
        raise GameError(
            f"checkpoint {str(path)!r} holds iteration {held}, not {which}: summary.json is behind the "
            f"checkpoints (a kill between writes); use --iteration {name}, or `mfax train --resume "
            f"{run.root}` to bring the run's files up to date"
        )
    return trainer, states, held


def own_best_words(run: RunDir, r: int, which: str, held: int, num_runs: int) -> str | None:
    """Where run ``r`` of several, asked at checkpoint ``best``, reached its own lowest
    exploitability when that is not the iteration ``held`` (the best checkpoint is where
    one of the runs reached the lowest of all), and how to evaluate it; ``None`` where
    there is nothing to say."""
    own = run.best_iterations().get(r) if which == "best" and num_runs > 1 else None
    if own is None or own == held:
        return None
    last = run.held_iteration(run.checkpoint_path) if run.checkpoint_path.is_file() else None
    if own in run.kept_iterations() or own == last:
        how = f"--iteration {own} evaluates it"
    else:
        how = "its checkpoint was not kept (`mfax train --keep N` keeps the N most recent evaluations')"
    return f"run {r}'s own lowest exploitability was at iteration {own}: {how}"


def best_run(rows: list[dict[str, Any]], iteration: int) -> int:
    """The run with the lowest exploitability in the evaluation at ``iteration`` (the
    first of equals; 0 when there is none)."""
    scores = {row["run"]: row["exploitability"] for row in rows if row["iteration"] == iteration}
    scores = {k: v for k, v in scores.items() if v is not None}
    return min(scores, key=lambda k: (scores[k], k)) if scores else 0


# a stop condition, called with each evaluation's rows and the run's compilation seconds
# so far (the time it spent waiting for its compiled chunks; a resumed run's count
# includes its earlier sessions', as summary.json's compile_s does)
Stop = Callable[[list[dict[str, Any]], float], bool]


class Session(NamedTuple):
    """What a training session ends with: its trainer, the final training states (all
    runs, as the checkpoint holds them) and the summary."""

    trainer: Trainer
    states: Any
    summary: dict[str, Any]


def train(config: TrainConfig, out: Path | str, **kwargs) -> dict[str, Any]:
    """Train (or, with ``resume``, continue) the run in ``out``; returns the summary
    (:func:`train_session` has the arguments)."""
    return train_session(config, out, **kwargs).summary


def _planned_before(run: RunDir) -> int | None:
    """The total iterations the run was last planned over (summary.json's
    ``iterations_planned``), ``None`` when it does not say (a run killed before its first
    summary)."""
    try:
        planned = run.read_summary().get("iterations_planned")
    except GameError:
        return None
    return planned if isinstance(planned, int) and not isinstance(planned, bool) else None


def train_session(
    config: TrainConfig,
    out: Path | str,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    extend_to: int | None = None,
    consent: Consent = NO_CODE,
    stop: Stop | None = None,
    announce: Callable[[], None] | None = None,
    temporary: bool = False,
) -> Session:
    """Train (or, with ``resume``, continue) the run in ``out``.

    Everything is validated before the disk is touched. A new run needs ``out`` missing,
    empty, or (with ``overwrite``, whose old files are then removed) an mfax run; one
    process at a time writes a run directory. ``stop_after`` ends the session at the first
    evaluation at or after that many iterations in total (chunks of ``eval_every`` run
    whole), as a kill would (for tests and time-boxed jobs); the run can be resumed.
    ``extend_to`` (with ``resume``) sets the run's total iterations, e.g. beyond a
    finished run's (at least the iterations its checkpoint has done): the
    learning-rate schedule is planned over the total, so from the resumed iteration on
    the rate is what a run of ``extend_to`` iterations has there (its linear decay to
    0.1x ends at the new total; a finished run resumes from 0.1x back up to that). A new
    total is recorded in provenance.json's ``schedule`` (each stretch's first iteration
    and total), with a warning line: config.json alone no longer reproduces the run.
    ``consent`` (with ``resume``): the code outside mfax the run's config may import.
    ``stop`` is called with the metric rows of every evaluation (the one at iteration 0
    of a new run included) once they are written; when it returns true the session ends
    there, as with ``stop_after``. ``announce`` is called once everything is validated,
    the solver is built and the run directory is created and locked, before anything is
    written in it (the CLI names the directory there, not before an error that leaves
    nothing in it: a directory that cannot be created, or is in use). ``temporary``: ``out``
    goes with the caller's call (``mfax.solve`` without ``out=``), so a stop names no
    checkpoint kept there.
    """
    with agreed_on_failure():  # (several hosts: stopped before training, the others hear why)
        return _session(
            config, out, resume, overwrite, progress, stop_after, extend_to, consent, stop, announce, temporary
        )


def _session(
    config, out, resume, overwrite, progress, stop_after, extend_to, consent, stop, announce, temporary
) -> Session:
    """:func:`train_session`'s work."""
    run = RunDir(out)
    main = is_main_process()  # several hosts: all compute, process 0 alone writes
    if main:
        run.settle()  # what a killed --overwrite left aside, before anything is read
    if resume:
        run.check_run()
        config = run.load_config(consent, continuing=True)
        if jax.config.jax_enable_x64 and not config.x64:
            raise GameError(
                f"{str(run.root)!r} was trained in float32 and this process computes in float64 (jax_enable_x64, "
                "or JAX_ENABLE_X64 in the environment): a resume would go on in another precision; resume it where "
                "float64 is off"
            )
        recorded = _planned_before(run)  # (what the schedule was planned over, config.json edited or not)
        planned = recorded if recorded is not None else config.iterations
        if extend_to is None and recorded is not None and recorded != config.iterations:
            # config.json's iterations edited by hand: what --iterations N does, checked and
            # recorded as it is (the schedule was replanned without a word, below the done too)
            extend_to = config.iterations
        if extend_to is not None:
            config = resolve(dataclasses.replace(config, iterations=extend_to))
        try:  # refused before the run directory is named (checked again once the checkpoint is loaded)
            held = run.held_iteration(run.checkpoint_path) if run.has_checkpoint() else None
        except MfaxError:  # (a damaged record: the checkpoint's loading says what is wrong)
            held = None
        if held is not None:
            _check_not_below(config.iterations, held)
    else:
        if jax.config.jax_enable_x64 and not config.x64:  # (the process computes in float64: recorded so)
            config = dataclasses.replace(config, x64=True)
        config = resolve(config)
        planned = config.iterations
        if main:
            run.check_new(overwrite)
    if main:  # (a tracker's package that fails to import: one line before the run directory is opened)
        check_trackers(list(config.log_to), imports=True)
    trainer = Trainer.build(config)
    with run.lock() if main else contextlib.nullcontext():
        if announce is not None:  # the directory exists and is this process's to write
            announce()
        new = main and not resume
        # --overwrite: the run being replaced, set aside (on disk) until the new one has a checkpoint
        aside = False
        if new:
            run.check_new(overwrite)  # again, under the lock (before the old run is set aside)
        if new and not run.is_empty():
            with deferred_signals():  # (renames: milliseconds)
                aside = run.set_aside()
        try:
            if new:
                run.start_new(config, overwrite, checked=True)
            replanned_from = planned if extend_to is not None else None
            return _train_locked(trainer, run, resume, progress, stop_after, replanned_from, stop, extend_to, temporary)
        except BaseException as err:
            if new and not run.has_checkpoint() and (aside or not isinstance(err, KeyboardInterrupt | Terminated)):
                # a new run that failed before its first checkpoint (a defective game with
                # --no-check, a first compilation out of memory) leaves the directory as it
                # found it: empty (but for the lock file), so the same command can simply
                # run again, or holding the run --overwrite was replacing, as it was (also
                # when interrupted: an empty new run's marker stays, for --resume)
                with deferred_signals():
                    if aside:
                        run.restore_aside()
                        err.add_note(RESTORED_NOTE)
                    else:
                        run.remove_own_files()
            if isinstance(err, Exception) and not isinstance(err, MfaxError | TrainingDiverged):
                # a traceback from the game's code or JAX: a defect the training's checks
                # do not look for (a function that breaks under vmap, say) is named instead
                named = defect_behind(err, trainer.games)
                if named is not None:
                    raise named from err
            raise


def _bar_text(rows: list[dict[str, Any]], float64: bool) -> str:
    """The progress bar's exploitability (mean over runs), saying what a value below zero is."""
    value = float(np.mean([r["exploitability"] for r in rows]))
    scale = float(np.mean([r["policy_return"] for r in rows]))
    return f"{value:.4g}{negative_words(value, scale, float64)}"


def _check_not_below(iterations: int, done: int) -> None:
    """A resume's total of ``iterations`` may not be below the ``done`` the run holds."""
    if iterations < done:
        raise GameError(
            f"--iterations {iterations} (or config.json's iterations) is below the {done} iterations this run "
            f"has done; allowed: >= {done}"
        )


def _check_untrained(run: RunDir) -> None:
    """A run resumed without checkpoint.eqx starts again from iteration 0, which is right
    only if it never got past its first evaluation (a kill before the first checkpoint);
    one that trained further (a later evaluation, a best or kept checkpoint) is refused
    rather than overwritten from scratch."""
    trained = max((row["iteration"] for row in run.read_metrics()), default=0)
    if trained > 0 or run.has_other_checkpoints():
        raise GameError(
            f"run {str(run.root)!r} has no checkpoint.eqx but has trained"
            + (f" {trained} iterations" if trained > 0 else " (it keeps other checkpoints)")
            + ": it cannot be resumed from where it stopped; restore checkpoint.eqx, or train into a new directory"
        )


def _kept_words(run: RunDir, iteration: int, temporary: bool, inside: bool = False) -> str:
    """What a stopped training says after "stopped" of the checkpoint it keeps: the last
    good one and where, or (a ``temporary`` folder, which goes with the call) that nothing
    is kept; ``inside``: the words close a parenthesis."""
    if temporary:
        nothing = "nothing kept without out=DIR, which keeps the last good checkpoint"
        return f"; {nothing}" if inside else f" ({nothing})"
    return f", last good checkpoint (iteration {iteration}) kept in {str(run.root)!r}"


def _after_failed_write(run: RunDir, iteration: int, temporary: bool) -> str:
    """What a training that a failed write stopped says it keeps (the checkpoint of
    ``iteration``), and how it goes on once the cause is dealt with."""
    kept = f"stopped{_kept_words(run, iteration, temporary, inside=True)}"
    return kept if temporary else f"{kept}; once that is dealt with, `mfax train --resume {run.root}` goes on from it"


def _train_locked(
    trainer: Trainer,
    run: RunDir,
    resume: bool,
    progress: bool,
    stop_after: int | None,
    replanned_from: int | None,
    stop: Stop | None,
    extend_to: int | None = None,
    temporary: bool = False,
) -> Session:
    """The session; ``replanned_from``: with ``--resume --iterations``, the total the run
    was planned over until now."""
    config = trainer.config
    extended = replanned_from is not None
    main = is_main_process()
    states = trainer.initial_states()
    wall = compile_s = 0.0
    if resume and run.has_checkpoint():
        states = place_runs(run.load_checkpoint(to_host(states)), trainer.mesh)
    elif resume:
        _check_untrained(run)
    start = int(to_host(states.iteration)[0])
    if extended or resume:  # (an edit no summary.json tells of, too)
        _check_not_below(config.iterations, start)
    if main and resume:
        # rewrite the metrics cleanly up to the checkpoint; at iteration 0 the evaluation
        # below runs again (a kill may have cut it short); first, as it may refuse (an
        # edited metric file) before anything else of the run is written
        run.truncate_metrics(start if start > 0 else -1, functools.partial(_swept_values, config))
        wall = _wall_at(run, start, wall)
        compile_s = _earlier_compile_s(run)
        run.keep_checkpoint(start, config.keep)  # a kill may have come before the copies
    # a resume with iterations to train scores its checkpoint again (is it still the game it
    # was trained on?); one process decides, from the provenance before this session's
    # record of it, and only where there is one process (the others would not know)
    rescore = resume and 0 < start < config.iterations and jax.process_count() == 1
    rescore = rescore and same_products(run.provenance_path)
    # the rows recorded up to the checkpoint (written again by trackers), those at it compared by the re-scoring
    recorded = run.read_metrics() if main and resume and start > 0 else []
    at_start = [r for r in recorded if r["iteration"] == start]
    if main:
        plugins = plugin_versions(config.game, config.algo)
        record_provenance(run.provenance_path, config.x64, start if resume else None, plugins)
    # only the solvers with a learning-rate schedule (the structural, PPO and M-OMD ones)
    # read the planned total: the others' iterations are the same whatever it is
    replans = solver_spec(config.algo).uses_lr
    if main and extended and start > 0 and config.iterations != replanned_from and replans:
        stretches = record_schedule(run.provenance_path, start, replanned_from, config.iterations)
        if len(stretches) > 1:
            warn(
                f"the run's schedule was replanned at iteration {start} (over {config.iterations} iterations "
                f"in total, was {replanned_from}): config.json alone no longer reproduces the run; "
                f"{run.provenance_path.name}'s schedule lists each stretch"
            )
    if main and extended:
        run.save_config(config)

    def record(rows: list[dict[str, Any]]) -> None:
        run.append_metrics(rows)
        for tracker in trackers:
            tracker.log(rows)

    # The first chunk compiles in a second thread while the evaluation at the start runs
    # (XLA compiles without the GIL): on a small game most of the time to a first result
    # is these two compilations, side by side on two cores.
    chunks: dict[int, Any] = {}
    first = min(config.eval_every, config.iterations - start)
    if start < config.iterations and (stop_after is None or start < stop_after):
        chunks[first] = _compile_aside(trainer, first, states)

    stopped = False
    # the resumes whose checkpoint scored otherwise than recorded: earlier sessions' and this one's
    rescored: list[dict[str, Any]] = _earlier_rescored(run) if resume else []
    if rescore:
        try:
            again = _eval_rows(trainer, states, start, wall, None)
        except GameError as err:
            raise GameError(
                f"{err} (found scoring the checkpoint of iteration {start} again to resume from it: nothing was "
                "trained, the run is as it was)"
            ) from None
        by_run = {row["run"]: row for row in at_start}  # (read_metrics: every row names its run)
        for row in again:
            differs = None if row["run"] not in by_run else rescored_difference(by_run[row["run"]], row, config.x64)
            if differs is not None:
                warn(
                    f"{str(run.root)!r}: the checkpoint of iteration {start} (run {row['run']}) scores {differs}: "
                    "the game's code, code it imports, or mfax changed since, and the iterations from here train on "
                    "today's game"
                )
                # ... and the run says so in its files (summary.json), not only in this session's warning
                rescored.append({"iteration": start, "run": row["run"], "difference": differs})
                break
    trackers = []
    if main and config.log_to:
        # a resume: the rows up to the checkpoint are recorded, and evaluated again only at 0
        trackers = open_trackers(list(config.log_to), run.root, config.to_dict(), config.num_runs, recorded)

    # several hosts: every process starts the same training from the same iteration, or
    # none trains (after everything process 0 alone checks and writes: one that fails
    # there is heard by the others); the settings only process 0 uses (what it keeps and
    # logs) need not agree; Ctrl-C held over the one collective
    settings = {**config.to_dict(), "resume": resume, "extend_to": extend_to, "stop_after": stop_after}
    devices = len(jax.devices()) if config.devices is None else config.devices  # (left out: all of them)
    settings.update(keep=None, log_to=None, devices=devices, start=start)
    try:
        with deferred_signals():
            agree(settings)
    except BaseException:
        for tracker in trackers:  # (what they hold so far is the run's, written out)
            tracker.close()
        raise
    if start == 0:
        rows = _eval_rows(trainer, states, 0, wall, None)
        message = _nonfinite_evaluation(rows)
        if message is not None:  # the starting policy's figures: nothing to keep, nothing trained
            raise TrainingDiverged(f"{message}, nothing was trained: {overflow_advice(trainer.config.x64)}")
        if main:
            with deferred_signals():
                record(rows)
                run.save_checkpoint(to_host(states), 0)
                run.keep_checkpoint(0, config.keep)
                run.write_summary(_summary(trainer, run, wall, compile_s, 0, rescored))
        stopped = stop is not None and bool(stop(rows, compile_s))

    bar = _progress(config.iterations, start, progress and main)
    session_start = time.perf_counter()  # what the bar counts: training, evaluation, checkpoints, compilation
    last_eval: list[dict[str, Any]] = []
    try:
        iteration = start
        while iteration < config.iterations and not stopped:
            if stop_after is not None and iteration >= stop_after:
                break
            length = min(config.eval_every, config.iterations - iteration)
            if not callable(chunks.get(length)):
                t0 = time.perf_counter()
                aside = chunks.get(length)
                chunks[length] = aside.result() if aside is not None else _compile(trainer, length, states)
                compile_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            new_states, metrics = chunks[length](states)
            jax.block_until_ready(metrics)
            wall += time.perf_counter() - t0
            metrics = to_host(metrics)
            message = driver.first_nonfinite(metrics, iteration, trainer.solver)
            if message is not None:
                raise TrainingDiverged(f"{message}; stopped{_kept_words(run, iteration, temporary)}")
            states = new_states
            iteration += length
            try:
                last_eval = _eval_rows(trainer, states, iteration, wall, metrics)
            except GameError as err:  # a defect of the game where this iterate took the population
                kept = _kept_words(run, iteration - length, temporary, inside=True)
                raise GameError(f"{err} (found evaluating iteration {iteration}; stopped{kept})") from None
            message = _nonfinite_evaluation(last_eval)
            if message is not None:  # finite parameters whose policy is not (logits overflowing)
                raise TrainingDiverged(f"{message}; stopped{_kept_words(run, iteration - length, temporary)}")
            if main:
                kept_at = iteration - length  # (the checkpoint a write that fails here leaves)
                try:
                    with deferred_signals():  # an interrupt waits for the step's last file
                        record(last_eval)
                        run.save_checkpoint(to_host(states), iteration)
                        kept_at = iteration
                        run.keep_checkpoint(iteration, config.keep)
                        run.write_summary(_summary(trainer, run, wall, compile_s, iteration, rescored))
                except GameError as err:  # a full disk, say: what is kept, and the way on
                    raise GameError(
                        f"{err} (writing iteration {iteration}; {_after_failed_write(run, kept_at, temporary)})"
                    ) from None
            if bar is not None:
                bar.update(length)
                bar.set_postfix(exploitability=_bar_text(last_eval, config.x64))
            stopped = stop is not None and bool(stop(last_eval, compile_s))
    finally:
        if bar is not None:
            bar.close()
        for tracker in trackers:
            tracker.close()
    if not main:
        return Session(trainer, states, {})
    summary = _summary(trainer, run, wall, compile_s, int(to_host(states.iteration)[0]), rescored)
    ran = summary["iterations"] - start
    summary["session_seconds_per_iteration"] = (time.perf_counter() - session_start) / ran if ran else None
    summary["session_iterations"] = ran  # trained by this session (a resume of a finished run: 0)
    run.write_summary(summary)
    return Session(trainer, states, summary)


# the note train() adds to an exception after which the run --overwrite was replacing is
# back in the directory (the new run failed, or was stopped, before its first checkpoint)
RESTORED_NOTE = "mfax: the run being replaced is back as it was"


def _compile(trainer: Trainer, length: int, states) -> Any:
    """The compiled chunk of ``length`` iterations for ``states`` (their shapes and types)."""
    return trainer.compiled_chunk(length, states)


def _compile_aside(trainer: Trainer, length: int, states) -> Future:
    """:func:`_compile` in a thread of its own, under the caller's context and thread-local JAX
    settings (``jax.enable_x64`` as a context, say); ``.result()`` gives the chunk or
    raises what compiling it raised."""
    x64 = bool(jax.config.jax_enable_x64)
    future: Future = Future()

    def work():
        try:
            with jax.enable_x64(x64):
                future.set_result(_compile(trainer, length, states))
        except BaseException as err:  # handed to whoever waits for the chunk
            future.set_exception(err)

    # not a daemon: exit waits for XLA; in the caller's context (messages in the command
    # line's words under `mfax`, mfax.errors.advice and warn)
    threading.Thread(target=contextvars.copy_context().run, args=(work,), name="mfax-compile").start()
    return future


def resume(out: Path | str, **kwargs) -> dict[str, Any]:
    return train(TrainConfig(), out, resume=True, **kwargs)


def _progress(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    # smoothing 0: the bar shows the session's average rate, as the ``done:`` line does
    return tqdm(total=total, initial=initial, unit="it", desc="train+eval", smoothing=0, dynamic_ncols=True)


def _earlier_compile_s(run: RunDir) -> float:
    """The earlier sessions' compilation time, from the summary (0 when it has none, or
    is corrupt: the resume rewrites it)."""
    try:
        earlier = run.read_summary().get("compile_s")
    except GameError:
        return 0.0
    return float(earlier) if isinstance(earlier, int | float) else 0.0


def _wall_at(run: RunDir, iteration: int, default: float) -> float:
    rows = [r for r in run.read_metrics() if r["iteration"] == iteration]
    return float(rows[0]["wall_clock_s"]) if rows else default


def _swept_values(config: TrainConfig, r: int) -> dict[str, Any]:
    """Run ``r``'s values of the game parameters its config sweeps."""
    own = config.run_params(r)
    return {name: own[name] for name in sorted(config.swept())}


def _eval_rows(trainer: Trainer, states, iteration: int, wall: float, metrics) -> list[dict[str, Any]]:
    config = trainer.config
    rows = []
    for r in range(config.num_runs):
        row = {
            "iteration": iteration,
            "run": r,
            "seed": config.run_seed(r),
            "lr": config.run_lr(r) if solver_spec(config.algo).uses_lr else None,  # fp/omd: no --lr
            **({PARAMS: _swept_values(config, r)} if config.swept() else {}),
            "wall_clock_s": wall,
            **trainer.evaluate_run(states, r),
            "grad_norm": None,
            "train_exploitability": None,
            "train_policy_return": None,
        }
        for key in ADDED_COLUMNS:  # (after the others, in metrics.jsonl as in metrics.csv)
            row[key] = row.pop(key)
        if metrics is not None:
            row["grad_norm"] = float(np.asarray(metrics.grad_norm)[r, -1])
            row["train_exploitability"] = float(np.asarray(metrics.exploitability)[r].mean())
            row["train_policy_return"] = float(np.asarray(metrics.policy_return)[r].mean())
        rows.append(row)
    return rows


# how far the figures of a checkpoint evaluated again may lie from those recorded when it
# was trained (the same evaluation, possibly compiled with another sharding: rounding), in
# units of max(1, |policy return|, |best-response return|)
RESCORE_RTOL = {False: 1e-4, True: 1e-9}


def rescored_difference(recorded: dict[str, Any], now: dict[str, Any], float64: bool) -> str | None:
    """How a checkpoint's figures scored again (``now``: policy return, exploitability and
    its information-consistent form) differ from those ``recorded`` for it when it was
    trained, on the same paths in the same precision, beyond rounding
    (:data:`RESCORE_RTOL` of the larger of the returns): ``"policy_return X now, Y when it
    was trained"``; ``None`` when they agree or cannot be compared (a figure missing or
    not finite). A difference
    means that what defines the game changed since (code that no record covers: a module
    outside the game's folder, an installed plug-in, mfax itself)."""
    then, current = recorded.get("policy_return"), now.get("policy_return")
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in (then, current)):
        return None
    gap = recorded.get("exploitability")
    best = then + gap if isinstance(gap, int | float) and math.isfinite(gap) else then  # (the best response's)
    scale = RESCORE_RTOL[float64] * max(1.0, abs(then), abs(best))
    for key in ("policy_return", "exploitability", "exploitability_info"):
        was, is_ = recorded.get(key), now.get(key)
        if isinstance(was, int | float) and isinstance(is_, int | float) and abs(is_ - was) > scale:
            return f"{key} {is_:.9g} now, {was:.9g} when it was trained"
    return None


def overflow_advice(float64: bool) -> str:
    """Why an exact evaluation is not finite, and what to do (``float64``: the precision
    it was computed in)."""
    dtype = "float64" if float64 else "float32"
    return (
        f"the rewards summed over the horizon overflow {dtype}, or the game or the policy gives NaN; use smaller "
        "rewards" + ("" if float64 else ", or " + advice("--x64", "float64 (jax_enable_x64)"))
    )


def _nonfinite_evaluation(rows: list[dict[str, Any]]) -> str | None:
    """``None`` when the exact evaluation of every run is finite, else which run's
    evaluation is not, and in what (its parameters may be finite while the policy they
    define is not)."""
    for row in rows:
        for key, label in (("policy_return", "policy return"), ("exploitability", "exploitability")):
            value = row.get(key)
            if value is not None and not np.isfinite(value):
                return f"non-finite {label} in the evaluation at iteration {row['iteration']} (run {row['run']})"
    return None


def _mean_or_none(values: list) -> float | None:
    return None if not values or any(v is None for v in values) else float(np.mean(values))


def _earlier_rescored(run: RunDir) -> list[dict[str, Any]]:
    """What the summary records of earlier resumes whose checkpoint scored otherwise than
    recorded (none when it has none, or is corrupt: the resume rewrites it)."""
    try:
        earlier = run.read_summary().get("rescored_differently")
    except GameError:
        return []
    return [e for e in earlier if isinstance(e, dict)] if isinstance(earlier, list) else []


def _summary(
    trainer: Trainer,
    run: RunDir,
    wall: float,
    compile_s: float,
    iteration: int,
    rescored: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """summary.json's figures at ``iteration``. ``wall_clock_s``: training time up to it
    (evaluation excluded), ``compile_s``: compilation time, both over every session;
    ``noise``: the noise the run trains and is scored on, ``exact`` or ``sample`` (what
    ``auto`` resolved to; summaries of older runs may hold ``auto``);
    ``rescored_differently`` (only when there is one): each resume whose checkpoint
    scored otherwise than when it was trained (its iteration, run and the difference): the
    iterations after it trained on a changed game."""
    config = trainer.config
    rows = run.read_metrics()
    last = [r for r in rows if r["iteration"] == iteration]
    first = [r for r in rows if r["iteration"] == 0]
    finals = [r["exploitability"] for r in last]
    infos = [r["exploitability_info"] for r in last]
    errors = [r.get("exploitability_se") for r in last]
    # a policy whose evaluation is not finite (written as null) is never the best run
    best = int(np.argmin([np.inf if f is None else f for f in finals])) if finals else 0
    best_at = run.best_iteration()
    trained = max(iteration, 1)
    return {
        "game": config.game,
        "algo": config.algo,
        "iterations": iteration,
        "iterations_planned": config.iterations,
        "runs": config.num_runs,
        "swept": sorted(config.swept()),  # game parameters whose values differ between runs
        **({"swept_per_run": [_swept_values(config, r) for r in range(config.num_runs)]} if config.swept() else {}),
        "final_exploitability": _mean_or_none(finals),
        "final_exploitability_info": None if not infos or infos[0] is None else float(np.mean(infos)),
        "final_exploitability_per_run": finals,
        "final_exploitability_info_per_run": infos,
        # estimated on drawn paths: each run's standard error (the runs share their paths;
        # null where the figures are exact, or come from one drawn path)
        "final_exploitability_se_per_run": errors,
        "final_policy_return": _mean_or_none([r["policy_return"] for r in last]),
        "initial_exploitability": _mean_or_none([r["exploitability"] for r in first]),
        "initial_exploitability_info": _mean_or_none([r["exploitability_info"] for r in first]),
        "best_run": best,  # the lowest at this iteration
        "best_iteration": best_at,  # the checkpoint of the lowest of all evaluations (checkpoint-best)
        "best_iteration_run": None if best_at is None else best_run(rows, best_at),  # the run that reached it
        "wall_clock_s": wall,
        "compile_s": compile_s,
        "seconds_per_iteration": wall / trained if iteration else None,
        # how the figures were computed: exact (the whole support, or draws of a game's one
        # noise path, which are that path), or estimated on drawn paths
        "noise": "exact" if exact_figures(trainer.game, trainer.eval_noise) else "sample",
        "dtype": "float64" if config.x64 else "float32",
        **({"rescored_differently": rescored} if rescored else {}),
    }
