"""One user-error type under every layer: what the library raises for bad input is an
``MfaxError`` (``GameError`` its subclass, still a ``ValueError``), and the command line
turns any of them into one ``mfax: error:`` line with exit status 2."""

from __future__ import annotations

import pytest
import typer

import mfax
import mfax.errors
import mfax.games
import mfax.games.base
from mfax.run.cli_common import user_errors
from mfax.run.config import from_dict


def test_game_error_is_one_class_under_every_name():
    assert mfax.GameError is mfax.errors.GameError is mfax.games.GameError is mfax.games.base.GameError
    assert mfax.MfaxError is mfax.errors.MfaxError
    assert issubclass(mfax.GameError, mfax.MfaxError) and issubclass(mfax.GameError, ValueError)


@pytest.mark.parametrize(
    "bad",
    [lambda: mfax.make("no_such_game"), lambda: from_dict({"no_such_key": 1})],
    ids=["unknown game", "unknown config key"],
)
def test_bad_input_raises_an_mfax_error_that_is_a_value_error(bad):
    with pytest.raises(mfax.MfaxError) as caught:
        bad()
    assert isinstance(caught.value, ValueError) and "\n" not in str(caught.value)


def test_cli_prints_any_mfax_error_as_one_line_and_exits_2(capsys):
    with pytest.raises(typer.Exit) as stopped, user_errors():
        raise mfax.MfaxError("--thing must be one of a, b; got c")
    assert stopped.value.exit_code == 2
    assert capsys.readouterr().err == "mfax: error: --thing must be one of a, b; got c\n"


def test_advice_is_in_the_words_of_the_interface_in_use():
    """A lower layer's advice says the option as typed under the ``mfax`` command and the
    keyword argument from Python (an API user told ``--devices`` has no such flag)."""
    from mfax.sharding import make_mesh

    with pytest.raises(mfax.GameError, match=r"^devices must lie in 1\.\.\d+ \(devices available\), got 999$"):
        make_mesh(999)
    assert mfax.errors.advice("--noise exact", 'noise="exact"') == 'noise="exact"'
    with mfax.errors.command_line_words():
        assert mfax.errors.advice("--noise exact", 'noise="exact"') == "--noise exact"
    assert mfax.errors.advice("--noise exact", 'noise="exact"') == 'noise="exact"'
