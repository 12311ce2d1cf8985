"""A route as a flow of nodes (START, each STEP, STOP), for pictures of it.

The dashboard draws these nodes as SVG and the command line draws them as
text. Both take them from the functions here, which perform no I/O.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from damba.events import END_STEP

START, STEP, STOP = "start", "step", "stop"

# Where a session is, relative to a node: it has passed the node (reached),
# is on it (current), has not got there yet (pending), was stopped on it
# (stopped), will never get there because it was stopped earlier (skipped),
# or ended there by reaching STOP (finished). Route views use "" throughout.
REACHED, CURRENT, PENDING = "reached", "current", "pending"
STOPPED, SKIPPED, FINISHED = "stopped", "skipped", "finished"


@dataclass(frozen=True)
class FlowNode:
    """One node of a route: its kind, step number, name and the sessions on it."""

    kind: str
    # 0 for START, 1..n for the STEPs, END_STEP for STOP.
    step: int
    name: str
    # Running sessions standing on this node; always 0 for STOP.
    active: int = 0
    # The session's position relative to this node, in session views.
    state: str = ""
    # When the session reached this node, as ISO 8601 UTC.
    reached_at: str | None = None

    @property
    def title(self) -> str:
        """Return the node's label: the keyword or step number, then the name."""
        if self.kind == START:
            return f"START {self.name}"
        if self.kind == STOP:
            return "STOP"
        return f"{self.step}. {self.name}"


def route_flow(
    name: str, steps: Sequence[str], active_by_step: Mapping[str, int] | None = None
) -> list[FlowNode]:
    """Return the nodes of a route, each with the running sessions standing on it.

    ``active_by_step`` maps a step number, as a string, to a count, which is
    how ``/info/route`` returns it.
    """
    counts = active_by_step or {}
    nodes = [FlowNode(START, 0, name, counts.get("0", 0))]
    for number, step_name in enumerate(steps, start=1):
        nodes.append(FlowNode(STEP, number, step_name, counts.get(str(number), 0)))
    nodes.append(FlowNode(STOP, END_STEP, "STOP"))
    return nodes


def stopped_from(session: Mapping[str, Any]) -> int | None:
    """Return the step a stopped session was on when it stopped, else None."""
    trace = session["trace"]
    if session["status"] != "stopped" or len(trace) < 2:
        return None
    return trace[-2]["step"]


def _session_state(node: FlowNode, session: Mapping[str, Any]) -> str:
    status, step = session["status"], session["step"]
    if status == "finished":
        return FINISHED if node.kind == STOP else REACHED
    if status == "stopped":
        stopped_on = stopped_from(session)
        if stopped_on is None or node.step > stopped_on:
            return SKIPPED
        return STOPPED if node.step == stopped_on else REACHED
    if node.step < step:
        return REACHED
    return CURRENT if node.step == step else PENDING


def session_flow(session: Mapping[str, Any], step_names: Sequence[str]) -> list[FlowNode]:
    """Return the nodes of a session's route, each marked with where the session is.

    ``session`` is a session as ``/info/session`` returns it, with its trace.
    """
    reached = {}
    for entry in session["trace"]:
        reached.setdefault(entry["step"], entry["at"])
    nodes = []
    for node in route_flow(session["route"], step_names):
        at = reached.get(node.step)
        if node.kind == STOP and session["status"] != "finished":
            at = None
        nodes.append(
            FlowNode(node.kind, node.step, node.name, 0, _session_state(node, session), at)
        )
    return nodes


def cell_width(text: str) -> int:
    """Return the columns ``text`` takes in a terminal: East Asian wide forms take 2."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def fit(text: str, width: int) -> str:
    """Cut ``text`` to at most ``width`` columns, ending it with an ellipsis if cut."""
    if cell_width(text) <= width:
        return text
    chars, used = [], 0
    for ch in text:
        used += cell_width(ch)
        if used > width - 1:
            break
        chars.append(ch)
    return "".join(chars) + "…"


# ---------------------------------------------------------------- SVG layout

# Sizes in SVG user units; the picture scales to the width of the page.
SVG_WIDTH = 480
NODE_X, NODE_WIDTH, NODE_HEIGHT = 8, 290, 44
ROW_GAP = 26
BAR_X, BAR_MAX = 314, 120
# Columns of label that fit in a node at the stylesheet's 14-unit font.
LABEL_COLUMNS = 32


@dataclass(frozen=True)
class PlacedNode:
    """A flow node with its box and its bar of running sessions, in SVG units."""

    node: FlowNode
    x: int
    y: int
    width: int
    height: int
    label: str
    bar_width: int

    @property
    def middle(self) -> int:
        return self.y + self.height // 2


@dataclass(frozen=True)
class FlowLayout:
    """Every node placed top to bottom, and the size of the whole picture."""

    nodes: list[PlacedNode]
    width: int
    height: int
    # Where the column beside the nodes starts: the bars, counts or marks.
    aside_x: int = BAR_X

    def arrows(self) -> list[tuple[int, int, int]]:
        """Return (x, y from, y to) for the arrow between each pair of nodes."""
        x = NODE_X + NODE_WIDTH // 2
        return [
            (x, upper.y + upper.height, lower.y)
            for upper, lower in zip(self.nodes, self.nodes[1:])
        ]


def layout(nodes: Sequence[FlowNode]) -> FlowLayout:
    """Place ``nodes`` in one column, each with a bar whose length is its share
    of the largest number of sessions on any node."""
    max_active = max((node.active for node in nodes), default=0)
    placed = []
    for row, node in enumerate(nodes):
        bar = round(BAR_MAX * node.active / max_active) if max_active else 0
        placed.append(
            PlacedNode(
                node=node,
                x=NODE_X,
                y=8 + row * (NODE_HEIGHT + ROW_GAP),
                width=NODE_WIDTH,
                height=NODE_HEIGHT,
                label=fit(node.title, LABEL_COLUMNS),
                bar_width=max(bar, 2) if node.active else 0,
            )
        )
    height = 16 + len(nodes) * NODE_HEIGHT + max(len(nodes) - 1, 0) * ROW_GAP
    return FlowLayout(placed, SVG_WIDTH, height)
