"""The route language parser and generator."""

from __future__ import annotations

import pytest

from damba.language import (
    RouteSyntaxError,
    TooManyStepsError,
    generate_route_text,
    parse_route,
)


def test_parse_minimal_route():
    """A START, one STEP and a STOP give a one-step route."""
    route = parse_route("START a\nSTEP b\nSTOP", maxsteps=10)
    assert route.name == "a"
    assert route.steps == ("b",)


def test_parse_ignores_comments_and_blank_lines():
    """Comment lines and blank lines carry no statements."""
    text = "# order flow\n\n  START order  \n# the check\nSTEP check stock\n\nSTOP\n# end\n"
    route = parse_route(text, maxsteps=10)
    assert route.name == "order"
    assert route.steps == ("check stock",)


@pytest.mark.parametrize("start,step,stop", [("start", "step", "stop"), ("Start", "sTeP", "Stop")])
def test_parse_keywords_any_case(start, step, stop):
    """Keywords match in any case."""
    route = parse_route(f"{start} x\n{step} y\n{stop}\n", maxsteps=10)
    assert route.steps == ("y",)


def test_parse_unicode_names():
    """Names may be Cyrillic or any printable text, and keep a '#' inside them."""
    route = parse_route("START заказ\nSTEP проверка склада #1\nSTEP 支付\nSTOP", maxsteps=10)
    assert route.name == "заказ"
    assert route.steps == ("проверка склада #1", "支付")


def test_parse_tab_separates_keyword():
    """A tab between keyword and name works like a space."""
    route = parse_route("START\tа\nSTEP\tб\nSTOP", maxsteps=10)
    assert route.name == "а"


@pytest.mark.parametrize(
    "text,line,fragment",
    [
        ("", 1, "found no statements"),
        ("# only a comment\n", 1, "found no statements"),
        ("STEP a\nSTOP", 1, "expected START"),
        ("START\nSTEP a\nSTOP", 1, "START needs a name"),
        ("START a\nSTOP", 2, "at least one STEP"),
        ("START a\nSTEP b", 3, "found the end of the text"),
        ("START a\nSTEP b\nSTOP\nSTEP c", 4, "after STOP on line 3"),
        ("START a\nSTART b\nSTOP", 2, "second START"),
        ("START a\nGO b\nSTOP", 2, "found GO"),
        ("START a\nSTEPb\nSTOP", 2, "found STEPB"),
        ("START a\nSTEP b\nSTOP now", 3, "STOP takes no name"),
        ("START a\nSTEP " + "x" * 81 + "\nSTOP", 2, "81 characters"),
        ("START a\nSTEP b\u0007c\nSTOP", 2, "U+0007"),
        ("START a\nSTEP b\u202ec\nSTOP", 2, "U+202E"),
        ("ſtart a\nSTEP b\nSTOP", 1, "found ſtart"),
        ("START a\nSTEP b\u2028\nSTEP c\nSTOOP", 4, "found STOOP"),
    ],
)
def test_parse_rejects_invalid_text(text, line, fragment):
    """Invalid text is rejected with its line number and what was expected."""
    with pytest.raises(RouteSyntaxError) as caught:
        parse_route(text, maxsteps=10)
    assert caught.value.line == line
    assert caught.value.code == "invalid_route"
    assert caught.value.message.startswith(f"Line {line}: ")
    assert fragment in caught.value.message


def test_parse_name_of_80_characters_is_accepted():
    """80 characters is the longest name allowed."""
    route = parse_route("START a\nSTEP " + "я" * 80 + "\nSTOP", maxsteps=10)
    assert len(route.steps[0]) == 80


def test_parse_rejects_steps_over_limit():
    """One STEP more than maxsteps is a limit error naming its line."""
    text = "START a\n" + "STEP s\n" * 4 + "STOP"
    with pytest.raises(TooManyStepsError) as caught:
        parse_route(text, maxsteps=3)
    assert caught.value.code == "maxsteps_exceeded"
    assert caught.value.line == 5


def test_parse_accepts_exactly_maxsteps():
    text = "START a\n" + "STEP s\n" * 3 + "STOP"
    assert len(parse_route(text, maxsteps=3).steps) == 3


def test_generated_text_parses_back():
    """Generated text for n steps parses into n numbered steps."""
    route = parse_route(generate_route_text(4), maxsteps=10)
    assert route.steps == ("step 1", "step 2", "step 3", "step 4")
    assert route.name == "route of 4 steps"


def test_parse_splits_lines_only_at_line_ends():
    """U+2028 stays inside its comment line; CR and CRLF end a line."""
    route = parse_route("# note\u2028more\nSTART a\r\nSTEP b\rSTEP c\nSTOP", maxsteps=10)
    assert route.name == "a"
    assert route.steps == ("b", "c")


def test_parse_ignores_byte_order_mark():
    route = parse_route("\ufeffSTART a\nSTEP b\nSTOP", maxsteps=10)
    assert route.name == "a"


def test_parse_normalizes_names_to_nfc():
    """A decomposed accent and a precomposed one give the same name."""
    route = parse_route("START Ame\u0301lie\nSTEP b\nSTOP", maxsteps=10)
    assert route.name == "Am\u00e9lie"


def test_parse_allows_joiners_in_names():
    """Zero-width joiners that Persian and emoji sequences need are allowed."""
    route = parse_route("START \u0645\u06cc\u200c\u062e\nSTEP \U0001f469\u200d\U0001f4bb\nSTOP", 10)
    assert route.steps == ("\U0001f469\u200d\U0001f4bb",)
