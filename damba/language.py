"""The route language: a start event, a linear run of steps, an end event.

    # comments and blank lines are ignored
    START order
    STEP check stock
    STEP take payment
    STOP

Keywords match in any case. A name is the rest of its line, trimmed, and is
1 to 80 characters of any script (see ``damba.names``). A comment is a line
whose first non-blank character is ``#``, and a ``#`` later in a line belongs
to the name. Lines end at ``\n``, ``\r\n`` or ``\r`` only, and a leading
byte order mark is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from damba.errors import DambaError
from damba.names import name_problem, normalize_name


@dataclass(frozen=True)
class RouteDefinition:
    """A parsed route: the START name and the STEP names in order."""

    name: str
    steps: tuple[str, ...]


class RouteSyntaxError(DambaError):
    """Raised for route text that does not follow the language."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__("invalid_route", f"Line {line}: {message}")
        self.line = line


class TooManyStepsError(DambaError):
    """Raised when a route has more STEP statements than the limit allows."""

    def __init__(self, line: int, maxsteps: int) -> None:
        super().__init__(
            "maxsteps_exceeded",
            f"Line {line}: a route may have at most {maxsteps} STEP statements; "
            f"remove steps or ask the operator to raise DAMBA_MAXSTEPS.",
        )
        self.line = line


def check_name(name: str, line: int, keyword: str) -> str:
    """Return ``name`` normalized, or raise if it is not a valid name."""
    name = normalize_name(name)
    if not name:
        raise RouteSyntaxError(line, f"{keyword} needs a name after the keyword.")
    problem = name_problem(name)
    if problem:
        raise RouteSyntaxError(line, f"the {keyword} name {problem}.")
    return name


def _lines(text: str) -> list[str]:
    """Split at line ends only, unlike str.splitlines, which also splits at
    U+2028, form feeds and other separators that may sit inside a name."""
    text = text.removeprefix("\ufeff")
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _statements(text: str):
    """Yield (line number, keyword in upper case, rest of line) for each statement."""
    for number, raw in enumerate(_lines(text), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, *rest = line.split(None, 1)
        # Only ASCII letters make a keyword: "ſtep".upper() would be "STEP".
        shown = keyword.upper() if keyword.isascii() else keyword
        yield number, shown, rest[0] if rest else ""


def parse_route(text: str, maxsteps: int) -> RouteDefinition:
    """Parse route text, raising RouteSyntaxError or TooManyStepsError."""
    name: str | None = None
    steps: list[str] = []
    stopped_at: int | None = None
    last_line = 0

    for number, keyword, rest in _statements(text):
        last_line = number
        if stopped_at is not None:
            raise RouteSyntaxError(
                number,
                f"expected the end of the text after STOP on line {stopped_at}, "
                f"found {keyword}.",
            )
        if name is None:
            if keyword != "START":
                raise RouteSyntaxError(
                    number, f"expected START <name> as the first statement, found {keyword}."
                )
            name = check_name(rest, number, "START")
        elif keyword == "STEP":
            if len(steps) == maxsteps:
                raise TooManyStepsError(number, maxsteps)
            steps.append(check_name(rest, number, "STEP"))
        elif keyword == "STOP":
            if rest.strip():
                raise RouteSyntaxError(number, "STOP takes no name; remove the text after it.")
            if not steps:
                raise RouteSyntaxError(
                    number, "expected at least one STEP <name> before STOP."
                )
            stopped_at = number
        elif keyword == "START":
            raise RouteSyntaxError(number, "expected STEP <name> or STOP, found a second START.")
        else:
            raise RouteSyntaxError(number, f"expected STEP <name> or STOP, found {keyword}.")

    if name is None:
        raise RouteSyntaxError(1, "expected START <name>, found no statements.")
    if stopped_at is None:
        raise RouteSyntaxError(
            last_line + 1, "expected STEP <name> or STOP, found the end of the text."
        )
    return RouteDefinition(name=name, steps=tuple(steps))


def generate_route_text(steps: int) -> str:
    """Write the text of a route with ``steps`` numbered steps."""
    lines = [f"START route of {steps} steps"]
    lines += [f"STEP step {number}" for number in range(1, steps + 1)]
    lines.append("STOP")
    return "\n".join(lines) + "\n"
