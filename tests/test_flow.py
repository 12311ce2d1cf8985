"""Flows of routes and sessions, their SVG layout and their terminal drawing."""

from __future__ import annotations

from damba.client.draw import draw_flow
from damba.dashboard import flow
from damba.dashboard.flow import FlowNode, layout, route_flow, session_flow

STEPS = ["check stock", "take payment"]


def _session(status, step, trace_steps, name="check stock"):
    trace = [{"step": s, "name": f"n{s}", "at": f"2026-01-01T00:00:0{i}.000000Z"}
             for i, s in enumerate(trace_steps)]
    return {"route": "order", "status": status, "step": step, "name": name, "trace": trace}


def test_route_flow_nodes():
    """A route gives START, one node a STEP, and STOP, with counts by step number."""
    nodes = route_flow("order", STEPS, {"0": 2, "2": 5})
    assert [node.kind for node in nodes] == ["start", "step", "step", "stop"]
    assert [node.step for node in nodes] == [0, 1, 2, 999]
    assert [node.active for node in nodes] == [2, 0, 5, 0]
    assert nodes[0].title == "START order"
    assert nodes[2].title == "2. take payment"
    assert nodes[3].title == "STOP"


def test_session_flow_running():
    """A running session has passed the nodes before its step and is on its step."""
    nodes = session_flow(_session("running", 1, [0, 1]), STEPS)
    assert [node.state for node in nodes] == ["reached", "current", "pending", "pending"]
    assert nodes[0].reached_at == "2026-01-01T00:00:00.000000Z"
    assert nodes[2].reached_at is None


def test_session_flow_finished():
    """A finished session has reached every node and finished at STOP."""
    nodes = session_flow(_session("finished", 999, [0, 1, 2, 999], "STOP"), STEPS)
    assert [node.state for node in nodes] == ["reached", "reached", "reached", "finished"]
    assert nodes[3].reached_at == "2026-01-01T00:00:03.000000Z"


def test_session_flow_stopped():
    """A stopped session is marked on the step it stopped at; later nodes are skipped."""
    session = _session("stopped", 999, [0, 1, 999], "STOP")
    nodes = session_flow(session, STEPS)
    assert [node.state for node in nodes] == ["reached", "stopped", "skipped", "skipped"]
    assert flow.stopped_from(session) == 1
    assert nodes[3].reached_at is None


def test_session_flow_stopped_at_start():
    """A session stopped at START marks START as the place it stopped."""
    nodes = session_flow(_session("stopped", 999, [0, 999], "STOP"), STEPS)
    assert [node.state for node in nodes] == ["stopped", "skipped", "skipped", "skipped"]


def test_fit_cuts_wide_text():
    """Cutting counts East Asian wide characters as two columns and adds an ellipsis."""
    assert flow.cell_width("支付") == 4
    assert flow.fit("abc", 3) == "abc"
    assert flow.fit("abcdef", 4) == "abc…"
    assert flow.fit("支付支付", 5) == "支付…"


def test_layout_bars_scale():
    """Bars scale to the busiest node, an idle node gets none, and arrows join the rows."""
    placed = layout(route_flow("order", STEPS, {"1": 4, "2": 1}))
    bars = [node.bar_width for node in placed.nodes]
    assert bars[0] == 0
    assert bars[1] == flow.BAR_MAX
    assert 0 < bars[2] < bars[1]
    assert len(placed.arrows()) == 3
    assert placed.height > placed.nodes[-1].y + placed.nodes[-1].height


def test_layout_long_label_cut():
    """A long step name is cut to fit its box."""
    placed = layout(route_flow("order", ["x" * 80]))
    assert placed.nodes[1].label.endswith("…")
    assert flow.cell_width(placed.nodes[1].label) <= flow.LABEL_COLUMNS


def test_draw_route_counts():
    """The terminal route drawing shows every node and a count beside each step."""
    text = draw_flow(route_flow("order", STEPS, {"1": 3}), "route", 80).plain
    lines = text.splitlines()
    assert "START order" in text
    assert "2. take payment" in text
    assert "STOP" in text
    assert any("1. check stock" in line and "3 █" in line for line in lines)
    assert all(len(line) <= 80 for line in lines)


def test_draw_session_marks():
    """The terminal session drawing marks the session's node with 'here'."""
    nodes = session_flow(_session("running", 2, [0, 1, 2], "take payment"), STEPS)
    lines = draw_flow(nodes, "session", 80).plain
    here = [line for line in lines.splitlines() if "◀ here" in line]
    assert len(here) == 1
    assert "2. take payment" in here[0]


def test_draw_fits_narrow_terminal():
    """A narrow terminal gets narrower boxes with cut labels."""
    nodes = [FlowNode("start", 0, "a very long route name indeed, longer than the box")]
    lines = draw_flow(nodes, "outline", 40).plain.splitlines()
    assert all(len(line) <= 40 for line in lines)
    assert "…" in lines[1]
