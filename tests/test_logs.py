"""What reaches a log line: keys hidden, one line per record."""

from __future__ import annotations

import logging

import pytest

from damba.web.logs import RedactingFilter, redact_path

KEY = "Xq3_ab-CDefGhijKLmnOPqrsTUvwxYZ01"


@pytest.mark.parametrize(
    "text",
    [
        f"/api/v1/step/uid/{KEY}/route/r1",
        f"/api/v1/step/uid%2F{KEY}/route/r1",
        f"/api/v1/info/%75ser/{KEY}",
        f"/api/v1/info/user%252F{KEY}",
        f"/api/v1/user/killme/{KEY}",
        f"http://dash/me?uid={KEY}",
    ],
)
def test_redact_hides_keys_anywhere(text):
    assert KEY not in redact_path(text)
    assert "***" in redact_path(text)


def test_redact_keeps_ids_readable():
    text = "/api/v1/info/session/s0123456789abcdef event 1796399724681-0"
    assert redact_path(text) == text


def test_redact_escapes_line_breaks():
    forged = redact_path("/api/v1/info/route/x%0A2026-12-04 INFO damba.web forged\x00")
    assert "\n" not in forged
    assert "\x00" not in forged
    assert "\\n2026-12-04" in forged


def test_filter_rewrites_formatted_message():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "GET %s", (f"/uid/{KEY}\nz",), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "GET /uid/***\\nz"
