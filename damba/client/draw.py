"""Terminal pictures of routes and sessions, and the tables the commands print.

The flows are drawn from the same nodes as the dashboard's SVG
(``damba.dashboard.flow``): one box a node, top to bottom, with the running
sessions on each step as a bar, or with the session's position marked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from damba.dashboard.flow import (
    CURRENT,
    FINISHED,
    PENDING,
    REACHED,
    SKIPPED,
    START,
    STOP,
    STOPPED,
    FlowNode,
    cell_width,
    fit,
)

# Box corners and edges: (top left, top, top right, side, bottom left, bottom,
# bottom right). START is rounded, STOP doubled, a step square, and a step
# not reached yet is dashed.
_ROUND = ("╭", "─", "╮", "│", "╰", "─", "╯")
_SQUARE = ("┌", "─", "┐", "│", "└", "─", "┘")
_DOUBLE = ("╔", "═", "╗", "║", "╚", "═", "╝")
_DASHED = ("┌", "┄", "┐", "┆", "└", "┄", "┘")

_STATE_STYLE = {
    REACHED: "green",
    CURRENT: "bold cyan",
    PENDING: "dim",
    STOPPED: "bold red",
    SKIPPED: "dim",
    FINISHED: "bold green",
}

# Widest box, in columns, and the columns kept beside it for the bar or mark.
MAX_BOX = 48
ASIDE = 22
BAR_MAX = 16


def _edges(node: FlowNode) -> tuple[str, ...]:
    if node.kind == START:
        return _ROUND
    if node.kind == STOP:
        return _DOUBLE
    return _DASHED if node.state in (PENDING, SKIPPED) else _SQUARE


def _aside(node: FlowNode, max_active: int, mode: str, clock) -> Text:
    """Return the text right of a node: a bar of sessions, or the session's mark."""
    if mode == "outline" or (mode == "route" and node.kind == STOP):
        return Text("")
    if mode == "route":
        if not node.active:
            return Text(f"{0:>4}", "dim")
        bar = max(1, round(BAR_MAX * node.active / max_active))
        return Text.assemble((f"{node.active:>4} ", "bold"), ("█" * bar, "cyan"))
    marks = {CURRENT: "◀ here", STOPPED: "■ stopped here", FINISHED: "✔ finished"}
    if node.state in marks:
        return Text(marks[node.state], _STATE_STYLE[node.state])
    if node.reached_at:
        return Text(f"✔ {clock(node.reached_at)}", "green")
    return Text("")


def draw_flow(nodes: Sequence[FlowNode], mode: str, width: int, clock=lambda at: at) -> Text:
    """Draw ``nodes`` as boxes joined by arrows, fitting ``width`` columns.

    ``mode`` is "route" to show the running sessions on each node as a bar,
    "session" to mark where one session is, or "outline" for the boxes
    alone. ``clock`` formats the time a session reached a node.
    """
    widest = max((cell_width(node.title) for node in nodes), default=4)
    inner = max(8, min(widest + 2, MAX_BOX, width - ASIDE - 2))
    max_active = max((node.active for node in nodes), default=0)
    middle = (inner + 2) // 2
    picture = Text()
    for number, node in enumerate(nodes):
        tl, top, tr, side, bl, bottom, br = _edges(node)
        style = _STATE_STYLE.get(node.state, "")
        label = fit(node.title, inner - 2)
        padding = " " * (inner - 2 - cell_width(label))
        picture.append(f" {tl}{top * inner}{tr}\n", style)
        picture.append(f" {side} ", style)
        picture.append(label, f"{style} bold" if node.state == CURRENT else style)
        picture.append(f"{padding} {side}", style)
        aside = _aside(node, max_active, mode, clock)
        if aside.plain:
            picture.append("  ")
            picture.append_text(aside)
        picture.append("\n")
        last = number == len(nodes) - 1
        joint = bottom if last else "┬"
        left, right = bottom * (middle - 1), bottom * (inner - middle)
        picture.append(f" {bl}{left}{joint}{right}{br}\n", style)
        if not last:
            picture.append(" " * (middle + 1) + "▼\n", "dim")
    picture.rstrip()
    return picture


def table(columns: Iterable[str], rows: Iterable[Sequence[Any]],
          wrap: Iterable[str] = ("NAME", "AT", "ROUTE NAME")) -> Table:
    """Build a table with a header row; only the ``wrap`` columns may wrap."""
    flexible = set(wrap)
    grid = Table(header_style="bold", show_edge=False)
    for column in columns:
        if column in flexible:
            grid.add_column(column, overflow="fold")
        else:
            grid.add_column(column, no_wrap=True)
    for row in rows:
        grid.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    return grid
