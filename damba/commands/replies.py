"""The shapes of replies that several commands and queries share."""

from __future__ import annotations

from typing import Any


def plural(count: int, noun: str) -> str:
    """Return "1 step", "2 steps": a count with its noun."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def public_route(route: dict[str, Any]) -> dict[str, Any]:
    """Return a route document as the API shows it: the owner by name only."""
    return {
        "rid": route["rid"],
        "name": route["name"],
        "owner": route["owner_name"],
        "text": route["text"],
        "steps": route["steps"],
        "created": route["created"],
    }


def session_reply(session: dict[str, Any], desc: str) -> dict[str, Any]:
    return {
        "desc": desc,
        "sid": session["sid"],
        "rid": session["rid"],
        "step": session["step"],
        "name": session["name"],
        "status": session["status"],
    }
