"""Log lines: plain or JSON by DAMBA_LOG_FORMAT, one per record, keys redacted."""

from __future__ import annotations

import logging
import sys

import orjson
import pytest
import requests
from tests.servers import start_damba

from damba.config import SettingsError, load_settings
from damba.web.logs import (
    JSONFormatter,
    PlainFormatter,
    RedactingFilter,
    make_formatter,
    redact_path,
)

KEY = "PVIhS4smnYmRavILTpR55AcTLoLcopZN"


def record(message: str, *args, exc_info=None, **extra) -> logging.LogRecord:
    logger = logging.getLogger("damba.test")
    return logger.makeRecord(
        "damba.test", logging.INFO, __file__, 1, message, args, exc_info, extra=extra
    )


def test_json_line_fields():
    """A JSON line is one object with time, level, logger, pid and message."""
    line = JSONFormatter().format(record("GET %s %d", "/info", 200))
    assert "\n" not in line
    entry = orjson.loads(line)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "damba.test"
    assert entry["message"] == "GET /info 200"
    assert isinstance(entry["pid"], int)
    assert entry["time"].endswith("Z")


def test_json_line_extra_fields():
    """Fields passed with extra= appear as keys of the JSON object."""
    entry = orjson.loads(JSONFormatter().format(record("done", status=201, sid="s1")))
    assert entry["status"] == 201
    assert entry["sid"] == "s1"


def test_json_redacts_keys():
    """An access key in the message or in an extra field never reaches a JSON line."""
    line = JSONFormatter().format(
        record("POST %s", f"/api/v1/join/uid/{KEY}/route/r1", path=f"/info/user/{KEY}")
    )
    assert KEY not in line
    entry = orjson.loads(line)
    assert entry["message"] == "POST /api/v1/join/uid/***/route/r1"
    assert entry["path"] == "/info/user/***"


def test_json_exception_one_line():
    """A traceback stays inside the one JSON line, under exception."""
    try:
        raise ValueError(f"bad /uid/{KEY}")
    except ValueError:
        line = JSONFormatter().format(record("failed", exc_info=sys.exc_info()))
    assert "\n" not in line
    entry = orjson.loads(line)
    assert "ValueError" in entry["exception"]
    assert KEY not in entry["exception"]


def test_plain_redacts_keys():
    """A plain line names the level and logger, with the key redacted."""
    line = PlainFormatter().format(record("POST /api/v1/step/uid/%s/route/r1", KEY))
    assert KEY not in line
    assert " INFO damba.test " in line
    assert line.endswith("POST /api/v1/step/uid/***/route/r1")


def test_unknown_formatter_rejected():
    """make_formatter names the valid formats when given another."""
    with pytest.raises(ValueError, match="plain or json"):
        make_formatter("xml")


@pytest.mark.parametrize(
    "value,expected",
    [("", "plain"), ("json", "json"), ("JSON", "json"), ("plain", "plain")],
)
def test_log_format_setting(value, expected):
    """DAMBA_LOG_FORMAT accepts plain and json in any case, plain by default."""
    assert load_settings({"DAMBA_LOG_FORMAT": value}).log_format == expected


def test_log_format_invalid():
    """An unknown DAMBA_LOG_FORMAT is rejected with the valid choices."""
    with pytest.raises(SettingsError, match="plain, json.*'xml'"):
        load_settings({"DAMBA_LOG_FORMAT": "xml"})


def test_graceful_timeout_setting():
    """DAMBA_GRACEFUL_TIMEOUT is whole seconds, 20 by default, at least 1."""
    assert load_settings({}).graceful_timeout == 20
    assert load_settings({"DAMBA_GRACEFUL_TIMEOUT": "45"}).graceful_timeout == 45
    with pytest.raises(SettingsError, match="DAMBA_GRACEFUL_TIMEOUT"):
        load_settings({"DAMBA_GRACEFUL_TIMEOUT": "0"})
    with pytest.raises(SettingsError, match="whole number"):
        load_settings({"DAMBA_GRACEFUL_TIMEOUT": "2.5"})


def test_serve_json_logs(redis_url, key_prefix, tmp_path):
    """With DAMBA_LOG_FORMAT=json, damba serve writes only JSON lines and no key."""
    process = start_damba(
        "wsgi",
        redis_url,
        key_prefix,
        tmp_path,
        workers=1,
        DAMBA_LOG_FORMAT="json",
        DAMBA_ACCESS_LOG="true",
    )
    base = process.url
    with process:
        key = requests.post(base + "/api/v1/user/addme", timeout=10).json()["uid"]
        route = requests.post(
            f"{base}/api/v1/addroute/uid/{key}/steps/2", timeout=10
        ).json()["rid"]
        assert (
            requests.post(
                f"{base}/api/v1/join/uid/{key}/route/{route}", timeout=10
            ).status_code
            == 201
        )
        assert (
            requests.get(f"{base}/api/v1/info/user/{key}", timeout=10).status_code
            == 200
        )
    output = process.output()

    lines = output.splitlines()
    entries = [orjson.loads(line) for line in lines]
    assert key not in output
    loggers = {entry["logger"] for entry in entries}
    assert {
        "damba.serve",
        "damba.web",
        "damba.store",
        "gunicorn.error",
        "gunicorn.access",
    } <= loggers
    requests_logged = [e["message"] for e in entries if e["logger"] == "damba.web"]
    assert "GET /api/v1/info/user/*** 200" in " ".join(requests_logged)
    events_logged = [e["message"] for e in entries if e["logger"] == "damba.store"]
    assert any(" startsess ok " in message for message in events_logged)


ENCODED_KEY = "Xq3_ab-CDefGhijKLmnOPqrsTUvwxYZ01"


@pytest.mark.parametrize(
    "text",
    [
        f"/api/v1/step/uid/{ENCODED_KEY}/route/r1",
        f"/api/v1/step/uid%2F{ENCODED_KEY}/route/r1",
        f"/api/v1/info/%75ser/{ENCODED_KEY}",
        f"/api/v1/info/user%252F{ENCODED_KEY}",
        f"/api/v1/user/killme/{ENCODED_KEY}",
        f"http://dash/me?uid={ENCODED_KEY}",
    ],
)
def test_redact_hides_keys_anywhere(text):
    assert ENCODED_KEY not in redact_path(text)
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
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "GET %s", (f"/uid/{ENCODED_KEY}\nz",), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "GET /uid/***\\nz"
