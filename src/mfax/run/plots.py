"""Plots of a run: figures (matplotlib ``Figure`` objects, built outside pyplot, so no
display is needed) and the PNG files of a run directory.

* ``exploitability.png``: exploitability (both definitions) vs wall-clock and vs iteration,
  on a log axis, or a symlog one (stated on the axis) when a value is at or below zero;
* ``mean_field.png``: the mean field over time as a heat map for a few noise paths, each
  described in the game's words (``Game.describe_noise``);
* ``mean_field_grid.png``, for a game whose states are the cells of a map
  (``Game.state_grid``): the mean field on the map at a few times;
* ``policy.png``: the learned policy (mean action per state over time on those paths);
* ``aggregates.png``, for a game that declares aggregates (``Game.aggregates``): one
  panel per named series over time on those paths (the macro game: prices, capital,
  productivity, wealth quantiles);
* ``profiles.png``, for a game that declares profiles (``Game.profiles``): one panel
  per cross-section of the first of those paths (the macro game: the wealth
  distribution at several times, the savings policy by wealth and income);
* ``moments.png``, for a game that declares moments (``Game.moment_specs``): one panel
  per scalar moment over time on all the run's evaluation paths: the expectation and
  bands between the 25th and 75th, and the 5th and 95th percentiles over the paths;
* ``moment_curves.png``: each moment that is a curve (one axis: the macro game's Lorenz
  curve of wealth, its saving rate by income), in expectation at chosen times;
* ``irf.png`` (``mfax irf``): the impulse response of every scalar moment, the deviation
  from the path without shocks in percent or points.

What a game shows beyond the mean field and the policy comes from its own declarations;
nothing here depends on which game it is.
"""

from __future__ import annotations

import io
import itertools
import re
import textwrap
from pathlib import Path

import jax
import numpy as np

from mfax import params
from mfax.dynamics.noise import NoiseBatch
from mfax.dynamics.pushforward import rollout_batch
from mfax.errors import GameError
from mfax.games.base import aggregate_paths, noise_words
from mfax.games.plugins import short_name
from mfax.run.rundir import (
    NO_CODE,
    Consent,
    RunDir,
    _disk,
    _replace_with,
    output_writable,
    png_tags,
    read_only_folder,
    warn,
)


def _figure(rows: int, cols: int, figsize: tuple[float, float]):
    """A figure and its grid of axes, outside pyplot's global state (no backend is
    chosen, nothing to close; a notebook shows the returned figure as it is)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, squeeze=False)


def retitle(fig, first: str) -> None:
    """``first`` as the first line of ``fig``'s title (which run of several it shows); the
    figure grows by the lines it adds, so its panels keep their size (a sweep's long run
    line, wrapped to a one-panel figure's width, squeezed the panel)."""
    before, fontsize = fig.get_suptitle().count("\n") + 1, fig._suptitle.get_fontsize()
    _suptitle(fig, f"{first}\n{fig.get_suptitle()}", fontsize)
    lines = fig.get_suptitle().count("\n") + 1
    line = 1.3 * fontsize / 72  # inches
    fig.set_figheight(fig.get_figheight() + (lines - before) * line)
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    # (a constrained layout makes room itself, and tight_layout would raise there)
    if not isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
        fig.tight_layout()  # (it makes room for the title, in the height just added)


def fill(text: str, width: int) -> str:
    """``text`` wrapped to lines of at most ``width`` characters where it can be, never
    inside ``name = value`` (beach bar's ``closes at t = 3`` ended a panel title with a
    line holding ``3`` alone, or ``= 3``)."""
    # (a group longer than a line is left to break as words do: bound, it was cut mid-name)
    bound = re.sub(r"(\S+) = (\S+)", lambda m: f"{m[1]}\0=\0{m[2]}" if len(m[0]) <= width else m[0], text)
    return textwrap.fill(bound, width).replace("\0", " ")


def _suptitle(fig, text: str, fontsize: float = 12.0) -> None:
    """``fig``'s title, each line wrapped to the figure's width (matplotlib's own
    ``wrap=True`` let a title one word too long run past a narrow figure's edges)."""
    chars = max(20, int(fig.get_figwidth() * 72 / (0.6 * fontsize)))
    lines = [fill(line, chars) for line in text.split("\n")]
    fig.suptitle("\n".join(lines), fontsize=fontsize)


def plot_run(
    run: RunDir,
    num_paths: int = 3,
    consent: Consent = NO_CODE,
    curve_times: list[int] | None = None,
    run_index: int | None = None,
) -> list[Path]:
    """Write every plot of the run; returns the files written. ``consent``: the code
    outside mfax the run's config may import (:class:`~mfax.run.rundir.Consent`).
    ``curve_times``: the times of ``moment_curves.png`` (default: :func:`default_times`).
    ``run_index``: the run of several whose figures to draw (default: the best at the
    last checkpoint); the exploitability figure shows every run."""
    from mfax.run.train import load_policy_at

    # (validates the run, and the run index, before anything is written)
    trainer, policy, r, held = load_policy_at(run, run_index, consent=consent)
    game = trainer.game_of(r)
    # (a game without curves first: their times' range would mislead about an option that never applies)
    if curve_times is not None and not any(len(spec.axes) == 1 for spec in game.moment_specs().values()):
        raise GameError(
            f"curve times (--curves-at) choose where moment_curves.png draws a game's curve moments (a Lorenz "
            f"curve); {game.name} declares none"
        )
    check_curve_times(curve_times, game.horizon)
    folder = run.plots_dir  # said before anything is drawn (a file of that name: "File exists")
    if folder.exists() and not folder.is_dir():
        raise GameError(f"cannot draw the plots: {str(folder)!r} is a file, not a folder; move it")
    with _disk("create", folder):
        folder.mkdir(parents=True, exist_ok=True)
    if read_only_folder(folder) is not None:  # (the figures were "kept: mfax did not write it")
        raise GameError(f"cannot draw the plots: the folder {str(folder)!r} is read-only")
    from mfax.evaluation.exploitability import exact_figures

    drawn = not exact_figures(game, trainer.eval_noise_of(r))
    figures = {"exploitability": exploitability_figure(run.read_metrics(), trainer.config, drawn)}
    traj, sub, titles = sample_trajectories(game, policy, trainer.eval_noise_of(r), num_paths)
    figures["mean_field"] = mean_field_figure(game, traj, titles)
    figures["mean_field_grid"] = grid_figure(game, traj, titles)
    figures["policy"] = policy_figure(game, traj, titles)
    figures["aggregates"] = aggregates_figure(game, traj, sub, titles)
    figures["profiles"] = profiles_figure(game, traj, sub, titles)
    if game.moment_specs():
        from mfax.evaluation.moments import path_moments

        moments = path_moments(game, policy, trainer.eval_noise_of(r))
        figures["moments"] = moments_figure(game, moments)
        figures["moment_curves"] = moment_curves_figure(game, moments, curve_times)
    # the figures of one checkpoint (the last: they said not which) and, of several runs, of
    # one run: say which, and how it was picked
    which = f"the policy at iteration {held}, the last checkpoint"
    if trainer.config.num_runs > 1:
        picked = run_words(trainer.config, r, f"at iteration {held}" if run_index is None else None)
        which = picked if run_index is None else f"{picked}, at iteration {held}, the last checkpoint"
    for name, fig in figures.items():
        if fig is not None and name != "exploitability":
            retitle(fig, which)
    written = []
    for name, fig in figures.items():
        path = run.plots_dir / f"{name}.png"
        if fig is None:
            continue
        try:
            output_writable(path)
        except GameError:  # a user's own file under a figure's name: kept, the figure not written
            warn(f"kept {str(path)!r}: mfax did not write it (its {name} figure not written)")
            continue
        written.append(_save(fig, path, kind=name))
    return written


def sample_trajectories(game, policy, noise: NoiseBatch, num_paths: int = 3):
    """The population's trajectories (mean field and action probabilities,
    :func:`~mfax.dynamics.pushforward.rollout_batch`) under ``policy`` on up to
    ``num_paths`` paths spread over the batch ``noise``, on the host: ``(traj, the
    paths' noise, their titles)``."""
    pick = _spread(noise.num_paths, num_paths)
    sub = jax.tree.map(lambda x: x[pick], noise.noise)
    traj = jax.device_get(rollout_batch(game, policy, sub))
    return traj, sub, [path_title(game, sub, i, int(p)) for i, p in enumerate(pick)]


def path_title(game, noise, i: int, number: int) -> str:
    """``noise path <number>: <the game's words for path i of the batch noise>``."""
    words = noise_words(game, jax.tree.map(lambda x: np.asarray(x[i]), noise))
    return f"noise path {number}" + (f": {words}" if words else "")


def exploitability_scale(values) -> tuple[str, float | None]:
    """``("log", None)`` when every value is positive; else ``("symlog", linthresh)``: an
    exploitability at or below zero (a converged solver in floating point) would turn a
    log axis into a vertical drop, so the axis is linear within ``+-linthresh`` (the
    smallest nonzero magnitude, rounded down to a power of ten) and logarithmic outside."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if all(v > 0 for v in finite):
        return "log", None
    small = min((abs(v) for v in finite if v != 0), default=1.0)
    return "symlog", float(10.0 ** np.floor(np.log10(small)))


def _se_band(rows: list[dict]) -> tuple[np.ndarray, np.ndarray] | None:
    """The per-path exploitability of one run's rows ± one standard error (NaN, a gap in
    the band, where a row records none: rows written before mfax kept them), ``None``
    when no row records one (exact figures). The band stops at 0 (at the figure, if
    rounding put it below): each path's gap is at least 0, and so is their mean."""
    se = [row.get("exploitability_se") for row in rows]
    if all(v is None for v in se):
        return None
    ex = np.asarray([np.nan if row["exploitability"] is None else row["exploitability"] for row in rows], dtype=float)
    se = np.asarray([np.nan if v is None else v for v in se], dtype=float)
    return np.maximum(ex - se, np.minimum(ex, 0.0)), ex + se


def _log_floor(ax, values) -> float | None:
    """On a log axis, how low a band may reach: a tenth of the lowest curve's value (a
    band's foot near 0 stretched the axis over decades the curves do not use); ``None``
    on another scale."""
    if ax.get_yscale() != "log":
        return None
    finite = [v for v in values if v is not None and np.isfinite(v) and v > 0]
    return min(finite) / 10.0 if finite else None


def _plain_minor_labels():
    """A log axis's minor-tick formatter that labels the ticks matplotlib's own labels
    (all on a range narrower than a decade, some on a decade or two, none beyond), as
    plain numbers: ``11.5``, ``0.035`` (matplotlib wrote ``1.15x10^1``, ``3.5x10^-2``)."""
    from matplotlib.ticker import LogFormatterSciNotation

    class PlainMinorLabels(LogFormatterSciNotation):
        def __call__(self, x, pos=None):
            return f"{x:.4g}" if super().__call__(x, pos) else ""

    return PlainMinorLabels()


def _set_exploitability_axis(ax, values, label: str) -> None:
    scale, linthresh = exploitability_scale(values)
    if scale == "log":
        ax.set(yscale="log", ylabel=label + " (log scale)")
        ax.yaxis.set_minor_formatter(_plain_minor_labels())
    else:
        ax.set_yscale("symlog", linthresh=linthresh)
        # the scale's note over the panel: in the label (even at 8 points, on one line) it
        # was taller than the 4.4-inch panel and ran out of the figure; at the panel's foot
        # the converged curve ran over it
        ax.set_ylabel(f"{label} (symlog scale)")
        note = f"values <= 0 reached: linear within ±{linthresh:.0e}, logarithmic outside"
        ax.set_title(note, fontsize=8, color="0.35", loc="left")


def _spread(total: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, total - 1, min(k, total)).round().astype(int))


def run_label(row: dict, config=None) -> str:
    """``run 0 (seed 0, lr 0.001)``; no learning rate for solvers without one (fp, omd);
    with the run's ``config``, the values of the game parameters it sweeps too
    (``run 1 (seed 0, lr 0.01, kappa 3)``)."""
    lr = "" if row.get("lr") is None else f", lr {row['lr']:g}"
    swept = {} if config is None else config.swept()
    own = config.run_params(row["run"]) if swept else {}
    values = "".join(f", {k} {own[k]:g}" if isinstance(own[k], float) else f", {k} {own[k]}" for k in swept)
    return f"run {row['run']} (seed {row['seed']}{lr}{values})"


def run_words(config, r: int, chosen: str | None) -> str:
    """``run 1 (seed 0, lr 0.01, crra 3) of 2``: which run of a multi-run directory a
    figure or command shows; with ``chosen`` (``"at iteration 40"``) how it was picked,
    the lowest exploitability there, and, in a sweep of game parameters, that this is no
    ranking (the runs play different games)."""
    from mfax.solvers import solver_spec

    lr = config.run_lr(r) if solver_spec(config.algo).uses_lr else None
    text = f"{run_label({'run': r, 'seed': config.run_seed(r), 'lr': lr}, config)} of {config.num_runs}"
    if chosen is not None:
        if config.swept():  # (it said "the lowest exploitability", then that they do not compare)
            text += f": the lowest exploitability {chosen}, though the runs play different games (not a ranking)"
        else:
            text += f": the lowest exploitability {chosen}"
    return text


def picked_run_words(config, r: int, named: bool) -> str:
    """:func:`run_words` for the run a command shows: named by ``--run-index``, or picked
    as the lowest exploitability at the checkpoint."""
    return run_words(config, r, None if named else "at the checkpoint (--run-index picks another)")


def shock_words(shock: float, at: int, innovations) -> str:
    """What an impulse response's title says of its shock (as ``mfax irf`` has it)."""
    return f", shock {shock:+g} sd at t = {at}" if innovations is None else ", chosen innovations"


RUN_MARKERS = (".", "o", "s", "^", "v", "D", "x", "+")


def run_colours(k: int) -> list:
    """One colour per run, distinct for every ``k`` (matplotlib's cycle repeats after 10,
    and a panel of two lines per run after 5): tab10, then tab20, then ``k`` evenly spaced
    hues of a perceptually ordered map; a run's lines share its colour in every panel."""
    from matplotlib import colormaps

    if k <= 10:
        return [colormaps["tab10"](i) for i in range(k)]
    if k <= 20:
        return [colormaps["tab20"](i) for i in range(k)]
    return [colormaps["turbo"](x) for x in np.linspace(0.05, 0.95, k)]


def exploitability_figure(rows: list[dict], config, drawn: bool = False):
    """Exploitability (both definitions) of every run vs training wall-clock and vs
    iteration, from a run's metric rows and its config (``drawn``: evaluated on drawn
    noise paths, estimates, which the title says)."""
    from matplotlib.ticker import MaxNLocator

    fig, grid = _figure(1, 2, (11, 4.4))
    axes = grid[0]
    runs = sorted({row["run"] for row in rows})
    colours = run_colours(len(runs))
    bands = []  # (wall-clock, iterations, colour, band or None) of each run
    has_info = False  # an information-consistent curve drawn (dashed)
    for r, colour, marker in zip(runs, colours, itertools.cycle(RUN_MARKERS), strict=False):
        mine = [row for row in rows if row["run"] == r]
        it = [row["iteration"] for row in mine]
        wall = [row["wall_clock_s"] for row in mine]
        ex = [row["exploitability"] for row in mine]
        label = run_label(mine[0], config)
        axes[0].plot(wall, ex, marker=marker, color=colour, label=label)
        axes[1].plot(it, ex, marker=marker, color=colour, label=label + " per path")
        bands.append((wall, it, colour, _se_band(mine)))
        info = [row["exploitability_info"] for row in mine]
        if info and info[0] is not None:
            axes[1].plot(it, info, linestyle="--", color=colour, label=label + " info-consistent")
            has_info = True
    per_path = [row["exploitability"] for row in rows]
    both = per_path + [row["exploitability_info"] for row in rows]
    axes[0].set(xlabel="training wall-clock (s), evaluation excluded")
    _set_exploitability_axis(axes[0], per_path, "exploitability (per path)")
    axes[1].set(xlabel="iteration")
    axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))  # no 0.25, 0.5 ticks on a short run
    _set_exploitability_axis(axes[1], both, "exploitability")
    # the bands after the scales, which the curves alone choose (a band's foot at 1e-18,
    # rounding, made the axis symlog and squeezed the curves into its top sixth)
    for k, (ax, values) in enumerate(((axes[0], per_path), (axes[1], both))):
        floor = _log_floor(ax, values)
        for *xs, colour, band in bands:
            if band is not None:
                low = band[0] if floor is None else np.maximum(band[0], floor)
                ax.fill_between(xs[k], low, band[1], color=colour, alpha=0.2, linewidth=0)
    for ax in axes:
        ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D

    kinds = [Line2D([], [], color="grey", marker="."), Line2D([], [], color="grey", linestyle="--")]
    below = 0.0  # inches of legend under the panels
    if len(runs) == 1:
        for ax in axes:
            ax.legend(fontsize=7)
    else:  # the runs named once; the right panel's line styles explained
        if len(runs) <= RUNS_NAMED_INSIDE:
            axes[0].legend(fontsize=7)
        elif len(runs) <= 20:  # under both panels, where it covers no curve (inside, 6 to 20 names did)
            below = _legend_below(fig, axes[0])
        else:  # too many to name: the run index by colour (labels in metrics.csv, summary.json)
            from matplotlib.cm import ScalarMappable
            from matplotlib.colors import BoundaryNorm, ListedColormap

            norm = BoundaryNorm(np.arange(len(runs) + 1) - 0.5, len(runs))
            bar = fig.colorbar(ScalarMappable(norm, ListedColormap(colours)), ax=axes[0], fraction=0.046, label="run")
            bar.set_ticks(list(range(0, len(runs), -(-len(runs) // 20))))  # (run numbers: it ticked -0.5, 2.5, ...)
        if has_info:  # (without the dashed curves the colours alone say which run)
            axes[1].legend(kinds, ["per path (each run's colour)", "info-consistent"], fontsize=7)
    if any(band is not None for *_, band in bands):
        how = "; estimated on drawn noise paths, shaded: ± one standard error"
    else:  # (a run recorded before mfax kept them, or one evaluated on one drawn path)
        how = "; estimated on drawn noise paths, no standard errors recorded" if drawn else ""
    _suptitle(fig, f"{short_name(config.game)}, {short_name(config.algo)}: exploitability (lower is better{how})")
    fig.tight_layout(rect=(0.0, below / fig.get_figheight(), 1.0, 1.0))
    return fig


RUNS_NAMED_INSIDE = 5  # runs a panel's own legend names; more go under the panels


def _legend_below(fig, ax, fontsize: float = 7.0) -> float:
    """``ax``'s legend entries as a legend under the figure's panels, in as many columns
    as the figure's width holds; the figure grows by its height, so the panels keep theirs.
    Returns that height (inches), for the layout's bottom margin."""
    handles, labels = ax.get_legend_handles_labels()
    longest = max(len(label) for label in labels)
    entry = (longest * 0.6 * fontsize + 3.5 * fontsize) / 72  # the text and its marker's sample, inches
    ncol = max(1, min(len(labels), int(fig.get_figwidth() * 0.95 // entry)))
    rows = -(-len(labels) // ncol)
    height = rows * 1.5 * fontsize / 72 + 0.15
    fig.set_figheight(fig.get_figheight() + height)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=fontsize, frameon=False)
    return height


def _save(fig, path: Path, dpi: int = 110, kind: str | None = None) -> Path:
    # the tags tell mfax's figures from others, and which figure it is (``kind``: an
    # output another command must not replace); the format named, so that matplotlib never
    # writes to another name than ``path`` (it adds ".png" to a name without a suffix);
    # written whole and swapped in, so that a link at ``path`` is replaced, not written through
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, metadata=png_tags(kind), format="png")
    _replace_with(path, buffer.getvalue())
    return path


PANEL_TITLE_CHARS = 44  # characters of a 9-point title line over a 4-inch heat-map panel


def _paths(titles: list[str]) -> str:
    return f"{len(titles)} evaluation noise path" + ("s" if len(titles) != 1 else "")


HEATMAP_COLUMNS = 4  # panels per row of a heat-map figure
HEATMAP_PANELS = 16  # paths drawn as heat maps in one figure, at most (512 made a 225280-pixel PNG)
HEATMAP_MAX_INCHES = 12.0  # the tallest panel: 1320 pixel rows at the default 110 dpi


def _heatmap_height(n_states: int, dpi: float = 110.0) -> float:
    """A panel's height in inches: at least one pixel row per state up to
    :data:`HEATMAP_MAX_INCHES` (401 states in a 3.6-inch panel were drawn into about 237
    rows, and the smoothing halved one-state peaks below what the colour bar promises)."""
    return float(np.clip(n_states / (0.75 * dpi) + 0.9, 3.6, HEATMAP_MAX_INCHES))


def _heatmaps(images, titles, cmap, suptitle: str, label: str, limits=(None, None), colorbar=None):
    """One time x state heat map per noise path, :data:`HEATMAP_COLUMNS` to a row, one
    colour scale for all (``limits``, else the images' joint range); each array entry one
    block of pixels (no smoothing between states). ``images``: ``(P, T, n)`` values, or
    ``(P, T, n, 3)`` colours with ``colorbar`` a function of ``(fig, ax)`` drawing the key."""
    images = np.asarray(images)
    k, n_states = len(images), images.shape[2]
    cols = min(k, HEATMAP_COLUMNS)
    rows = -(-k // cols)
    fig, axes = _figure(rows, cols, (4 * cols, _heatmap_height(n_states) * rows))
    if images.ndim == 3 and None in limits:
        finite = images[np.isfinite(images)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        limits = (low if limits[0] is None else limits[0], high if limits[1] is None else limits[1])
    from matplotlib.ticker import MaxNLocator

    for ax, image, title in zip(axes.flat, images, titles, strict=False):
        shown = np.swapaxes(image, 0, 1)  # state along y, time along x
        im = ax.imshow(
            shown, aspect="auto", origin="lower", cmap=cmap, vmin=limits[0], vmax=limits[1], interpolation="nearest"
        )
        # a long path title (macro's productivity range) wrapped to the panel, not clipped
        ax.set_title(fill(title, PANEL_TITLE_CHARS), fontsize=9)
        ax.set(xlabel="time t", ylabel="state index")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if colorbar is None:
            fig.colorbar(im, ax=ax, fraction=0.046, label=label)
        else:
            colorbar(fig, ax)
    for ax in axes.flat[k:]:
        ax.set_visible(False)
    _suptitle(fig, suptitle)
    fig.tight_layout()
    return fig


def mean_field_figure(game, traj, titles: list[str]):
    """The mean field over time, one heat map per path of ``traj`` (one colour scale)."""
    return _heatmaps(
        traj.mu,
        titles,
        "viridis",
        f"{game.name}: mean field over time on {_paths(titles)}",
        label="population share in the state",
        limits=(0.0, None),  # (the darkest colour is nobody there, as on the grid maps)
    )


GRID_PATHS = 3  # paths drawn on a two-axis state grid (a row of maps each)
GRID_FLOORS = 8  # maps of a three-axis grid drawn per time, at most (evenly spaced)


def grid_figure(game, traj, titles: list[str], times: list[int] | None = None):
    """The mean field on the game's :attr:`~mfax.games.base.Game.state_grid` at ``times``
    (default ``0, T/4, T/2, T``; drawn in order, each once), one colour scale. A two-axis
    grid: a row of maps per path (the first :data:`GRID_PATHS`), the first axis up, the
    second across. A three-axis grid (floors of maps): the first path only, a row per
    time, a map per value of the first axis (at most :data:`GRID_FLOORS`, evenly spaced,
    said in the title). ``None`` for a game whose states are not the cells of a grid."""
    if game.state_grid is None:
        return None
    from matplotlib.ticker import MaxNLocator

    names = [str(name) for name, _ in game.state_grid]
    shape = [int(size) for _, size in game.state_grid]
    times = sorted({int(t) for t in (default_times(game.horizon) if times is None else times)})
    mu = np.asarray(traj.mu, dtype=float)
    if len(shape) == 2:
        k = min(len(titles), GRID_PATHS)
        shortened = [textwrap.shorten(titles[i], 2 * PANEL_TITLE_CHARS, placeholder=" ...") for i in range(k)]
        rows = [(mu[i], fill(title, PANEL_TITLE_CHARS)) for i, title in enumerate(shortened)]
        panels = [
            [(path[t].reshape(shape), (title if j == 0 else "") + f"\nt = {t}") for j, t in enumerate(times)]
            for path, title in rows
        ]
        what = _paths(titles[:k])
    else:
        floors = _spread(shape[0], GRID_FLOORS)
        panels = [[(mu[0, t].reshape(shape)[f], f"t = {t}, {names[0]} {f}") for f in floors] for t in times]
        which = "" if len(floors) == shape[0] else f" ({len(floors)} of 0..{shape[0] - 1}, evenly spaced)"
        what = f"a row per time, a map per {names[0]}{which}, on {titles[0]}"
    finite = [image[np.isfinite(image)] for row in panels for image, _ in row]
    top = max((float(x.max()) for x in finite if x.size), default=1.0)  # (a NaN scaled every map to nan)
    height, width = panels[0][0][0].shape
    side, tall = 3.0 * min(max(width / height, 0.5), 2.0), 3.0 * min(max(height / width, 0.5), 2.0)
    # a map takes about 0.85 of its column (labels beside it), its titles (two lines, a
    # floor's one) and labels above and below it; more height was left blank
    extra = 0.9 if len(shape) == 2 else 0.6
    size = (side * len(panels[0]) + 1.6, (0.85 * tall + extra) * len(panels) + 0.6)
    fig, axes = _figure(len(panels), len(panels[0]), size)
    fig.set_layout_engine("constrained")  # (the colour bar beside the whole grid of maps)
    for ax, (image, title) in zip(axes.flat, (p for row in panels for p in row), strict=True):
        im = ax.imshow(image, origin="lower", cmap="viridis", vmin=0.0, vmax=top, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(names[-1])
        upright = len(names[-2]) <= 2  # ("l" upright, not a dash)
        ax.set_ylabel(names[-2], rotation=0 if upright else 90, labelpad=10 if upright else 4)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    fig.colorbar(im, ax=axes, fraction=0.02, label="population share in the cell")
    _suptitle(fig, f"{game.name}: mean field on the ({', '.join(names)}) grid, {what}")
    return fig


def policy_figure(game, traj, titles: list[str]):
    """The policy per state over time, one heat map per path: its mean action value, or,
    for a game whose actions are categories (:attr:`~mfax.games.base.Game.actions_categorical`),
    its most likely action, paler the less sure (white: uniform)."""
    probs = np.asarray(traj.probs)
    if not game.actions_categorical:
        values = np.asarray(game.action_values())
        means = probs @ values  # (P, T, n)
        title = f"{game.name}: learned policy on {_paths(titles)}"
        if values.min() < 0.0 < values.max():  # a signed action (a move): white at 0, the scale symmetric
            finite = np.abs(means[np.isfinite(means)])
            top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
            # (the data's range put white at its middle: moves down drawn red, as up)
            return _heatmaps(means, titles, "coolwarm", title, "expected action value (white: 0)", (-top, top))
        # (an unsigned one, a share or a probability: no middle to split at)
        return _heatmaps(means, titles, "viridis", title, label="expected action value")
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import BoundaryNorm, ListedColormap

    m = probs.shape[-1]
    palette = np.asarray(run_colours(m))[:, :3]
    top = np.argmax(probs, axis=-1)
    # 0 uniform, 1 one action (one action: always sure)
    sure = (np.max(probs, axis=-1) - 1.0 / m) / (1.0 - 1.0 / m) if m > 1 else np.ones(probs.shape[:-1])
    colours = 1.0 - np.clip(sure, 0.0, 1.0)[..., None] * (1.0 - palette[top])

    def key(fig, ax):
        mappable = ScalarMappable(BoundaryNorm(np.arange(m + 1) - 0.5, m), ListedColormap(palette))
        bar = fig.colorbar(mappable, ax=ax, fraction=0.046, label="most likely action (paler: less sure)")
        bar.set_ticks(list(range(m)) if m <= 20 else list(range(0, m, -(-m // 20))))

    return _heatmaps(colours, titles, None, f"{game.name}: learned policy on {_paths(titles)}", label="", colorbar=key)


def aggregates_figure(game, traj, noise, titles: list[str]):
    """The game's named aggregates over ``t = 0..T``, one panel each (in name order), one
    line per path (``None`` when the game declares none)."""
    series = jax.device_get(aggregate_paths(game, traj.mu, noise))
    if not series:
        return None
    cols = min(len(series), 3)
    rows = -(-len(series) // cols)
    fig, axes = _figure(rows, cols, (4.2 * cols, 3.4 * rows))
    colours = run_colours(len(titles))  # one colour per path (the 10-colour cycle repeated)
    for ax, (name, values) in zip(axes.flat, series.items(), strict=False):
        for i, title in enumerate(titles):
            row = np.asarray(values)[i]
            t = np.flatnonzero(np.isfinite(row))  # NaN: not defined at that step; join the others
            ax.plot(t, row[t], marker="." if t.size < row.size else None, color=colours[i], label=title)
        ax.set(xlabel="time t", ylabel=name, title=name)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=6)
    for ax in axes.flat[len(series) :]:
        ax.set_visible(False)
    _suptitle(fig, f"{game.name}: aggregates on {_paths(titles)}")
    fig.tight_layout()
    return fig


def profiles_figure(game, traj, noise, titles: list[str]):
    """The game's cross-sections of the first path, one panel each (``None`` when the
    game declares none)."""
    one = jax.tree.map(lambda x: np.asarray(x[0]), noise)
    profiles = game.profiles(np.asarray(traj.mu[0]), np.asarray(traj.probs[0]), one)
    if not profiles:
        return None
    fig, axes = _figure(1, len(profiles), (5 * len(profiles), 3.8))
    for ax, profile in zip(axes[0], profiles, strict=True):
        for label, values in profile.curves.items():
            ax.plot(profile.x, values, label=label)
        scaled = f" ({profile.x_scale} scale)" if profile.x_scale != "linear" else ""
        ax.set(xscale=profile.x_scale, xlabel=profile.x_label + scaled, ylabel=profile.y_label, title=profile.title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _suptitle(fig, f"{game.name} on {titles[0]}", fontsize=10)
    fig.tight_layout()
    return fig


# -- moments and impulse responses -----------------------------------------------------------
def default_times(horizon: int) -> list[int]:
    """``0, T/4, T/2, T``: where curves are drawn unless times are chosen."""
    return sorted({0, horizon // 4, horizon // 2, horizon})


def _grid(count: int, width: float = 4.2, height: float = 3.3):
    cols = min(count, 4)
    rows = -(-count // cols)
    fig, axes = _figure(rows, cols, (width * cols, height * rows))
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, axes.flat


def moments_figure(game, moments):
    """Every scalar moment over time: the expectation over the noise paths and bands of
    the 25-75th and 5-95th percentiles over them (:class:`~mfax.evaluation.moments.Moments`)."""
    names = moments.scalar_names()
    if not names:
        return None
    expected = moments.expected()
    levels = {q: moments.quantile(q) for q in (0.05, 0.25, 0.75, 0.95)}
    fig, axes = _grid(len(names))
    from matplotlib.ticker import MaxNLocator

    from mfax.evaluation.moments import IRF_ROUNDING_UNITS

    for ax, name in zip(axes, names, strict=False):
        t = moments.times(name)
        values = np.asarray(moments.values[name])
        title = moments.specs[name].label
        finite = values[np.isfinite(values)]
        eps = np.finfo(values.dtype).eps if np.issubdtype(values.dtype, np.floating) else 0.0
        scale = float(np.max(np.abs(finite))) if finite.size else 0.0
        if finite.size and float(np.ptp(finite)) <= IRF_ROUNDING_UNITS * eps * max(scale, 1e-300):
            # the same on every path and date up to the precision's rounding (labour L_t in
            # float32 wandered over 3.6 ulps on a "1e-7 + 8.4155e-1" axis): drawn flat
            level = float(np.mean(finite))
            ax.plot(t, np.full(len(t), level), color="tab:blue", label="expectation")
            ax.set_ylim(level - 0.05 * abs(level) - 1e-12, level + 0.05 * abs(level) + 1e-12)
            title += " (constant up to rounding)"
        else:
            ax.fill_between(t, levels[0.05][name], levels[0.95][name], alpha=0.15, color="tab:blue", label="5-95%")
            ax.fill_between(t, levels[0.25][name], levels[0.75][name], alpha=0.3, color="tab:blue", label="25-75%")
            ax.plot(t, expected[name], color="tab:blue", label="expectation")
        ax.set(xlabel="time t")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # times are whole steps
        ax.set_title(fill(title, PANEL_TITLE_CHARS), fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    how = "exact over the noise support" if moments.exact else f"{moments.num_paths} sampled noise paths"
    _suptitle(fig, f"{game.name}: moments, expectation and percentile bands over the paths ({how})")
    fig.tight_layout()
    return fig


def check_curve_times(times, horizon: int, what: str = "the times of the curves") -> None:
    """Curve times (``None``: the defaults) must be integers in ``0..T``: -1 drew the last
    date labelled "t = -1", and a time past ``T`` was drawn at ``T``."""
    if times is None:
        return
    if (
        not isinstance(times, list | tuple)
        or not times
        or not all(params.is_integer_from(t, 0) and t <= horizon for t in times)
    ):
        raise GameError(f"{what} must be integers in 0..{horizon} (the horizon T), got {times!r}")


def moment_curves_figure(game, moments, times: list[int] | None = None):
    """Each moment that is a curve over one axis (a Lorenz curve), in expectation over
    the noise paths, at ``times`` (default :func:`default_times`; a moment of the
    decisions, defined up to ``T - 1``, at ``0, T/4, T/2, 3T/4`` by default: at the last
    decision the macro households consume everything, a saving rate near -14 that
    flattened the other curves; a chosen time past ``T - 1`` is drawn at ``T - 1``).
    ``None`` when there is none."""
    names = [name for name, spec in moments.specs.items() if len(spec.axes) == 1]
    if not names:
        return None
    check_curve_times(times, game.horizon)
    chosen = times
    expected = moments.expected()
    fig, axes = _grid(len(names), 4.6, 3.8)
    for ax, name in zip(axes, names, strict=False):
        spec = moments.specs[name]
        (axis, coords), values = spec.axes[0], expected[name]
        decisions = values.shape[0] <= game.horizon  # defined at t = 0..T-1
        if chosen is None:
            times = default_times(game.horizon)
            if decisions:
                times = sorted({*times[:-1], 3 * game.horizon // 4})
        else:
            times = chosen
        last = values.shape[0] - 1
        for t in sorted({min(t, last) for t in times}):
            ax.plot(coords, values[t], label=f"t = {t}" + (" (the last decision)" if decisions and t == last else ""))
        ax.set(xlabel=axis, title=spec.label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _suptitle(fig, f"{game.name}: expectation over the noise paths at chosen times")
    fig.tight_layout()
    return fig


def irf_figure(game, response, title: str = ""):
    """The impulse response of every scalar moment (:class:`~mfax.evaluation.moments.ImpulseResponse`):
    deviation from the path without shocks, ``100 (x / b - 1)`` percent for levels,
    ``100 (x - b)`` points for rates, shares and logarithms."""
    deviation = response.deviation()
    names = [name for name, spec in response.specs.items() if not spec.axes]
    fig, axes = _grid(len(names), 3.8, 3.0)
    shocked = np.flatnonzero(response.innovations)
    for ax, name in zip(axes, names, strict=False):
        spec = response.specs[name]
        ax.axhline(0.0, color="grey", linewidth=0.8)
        for t0 in shocked:
            ax.axvline(t0, color="tab:red", linewidth=0.8, linestyle=":")
        ax.plot(np.arange(len(deviation[name])), deviation[name], color="tab:blue")
        unit = "% deviation" if spec.deviation == "percent" else "deviation, 100 (x - baseline)"
        ax.set(xlabel="time t", ylabel=unit, title=spec.label)
        ax.grid(alpha=0.3)
    _suptitle(fig, f"{game.name}: impulse response (deviation from the path without shocks){title}")
    fig.tight_layout()
    return fig


def save_figure(fig, path: Path, dpi: int = 110, kind: str | None = None) -> Path:
    """Write ``fig`` to ``path`` (a PNG carrying :func:`~mfax.run.rundir.png_tags`: mfax's,
    and which figure, ``kind``), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return _save(fig, path, dpi, kind)
