"""Render dashboard pages from the jinja2 templates shipped in the package."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from damba.dashboard import flow
from damba.dashboard.formats import (
    clock,
    clock_ms,
    day_or_clock,
    duration,
    file_size,
    moment,
    step_label,
)
from damba.keys import ROUTE_ID_PATTERN, SESSION_ID_PATTERN

# Headers for every dashboard page. The policy lets a page load scripts,
# styles and images from this server alone, so nothing is fetched from the
# internet and an injected inline script would not run.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("damba.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        clock=clock,
        clock_ms=clock_ms,
        day_or_clock=day_or_clock,
        moment=moment,
        file_size=file_size,
        step_label=step_label,
    )
    env.globals.update(duration=duration, layout=flow.layout)
    env.tests.update(
        route_id=lambda value: bool(ROUTE_ID_PATTERN.match(value or "")),
        session_id=lambda value: bool(SESSION_ID_PATTERN.match(value or "")),
    )
    return env


def render(template: str, **context: Any) -> str:
    """Render ``template`` with ``context``; every value is HTML-escaped."""
    return environment().get_template(template).render(**context)
