"""``mirror`` argument parsing: positional words on both sides of an option."""

import pytest

from services.cli.errors import CommandError
from services.cli.main import parse_args
from services.cli.manage import split_get_words


@pytest.mark.parametrize(
    "argv",
    [
        ["get", "7", "--all", "out"],
        ["get", "--all", "7", "out"],
        ["get", "7", "out", "--all"],
    ],
)
def test_get_takes_its_id_and_dest_around_options(argv):
    args = parse_args(argv)
    assert args.all and split_get_words(args.words) == (7, "out")


def test_get_of_a_project_takes_one_word():
    args = parse_args(["get", "out", "--project", "3"])
    assert args.project == 3 and split_get_words(args.words) == (None, "out")


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["x", "out"], "job ID must be an integer, got 'x'"),
        (["1", "2", "3"], "mirror get takes [ID] DEST, got 3 words: 1 2 3"),
    ],
)
def test_get_words_that_make_no_sense_are_refused(words, message):
    with pytest.raises(CommandError, match=message.replace("[", r"\[").replace("]", r"\]")):
        split_get_words(words)


def test_unknown_options_are_still_refused(capsys):
    with pytest.raises(SystemExit):
        parse_args(["get", "7", "out", "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["jobs", "extra"])
    assert "unrecognized arguments: extra" in capsys.readouterr().err
