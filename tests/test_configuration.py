"""The configuration table in the README and .env.example agree with the code."""

from __future__ import annotations

import re

import click
import pytest
from tests.deployment_files import VARIABLE, code_variables
from tests.servers import REPO

from damba.cli import main as cli
from damba.config import Settings


def readme_table() -> dict[str, str]:
    """Return the README configuration table as variable -> default column."""
    rows = {}
    for line in (REPO / "README.md").read_text().splitlines():
        match = re.match(r"^\| `(DAMBA_[A-Z0-9_]+)` \| ([^|]*) \|", line)
        if match:
            rows[match.group(1)] = match.group(2).strip().strip("`")
    return rows


def env_example() -> dict[str, str]:
    """Return .env.example as variable -> value."""
    values = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        match = re.match(r"^(DAMBA_[A-Z0-9_]+)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def code_defaults() -> dict[str, object]:
    """Return the default of each variable as the code has it."""
    settings = Settings()
    defaults: dict[str, object] = {
        "DAMBA_REDIS_URL": settings.redis_url,
        "DAMBA_KEY_PREFIX": settings.key_prefix,
        "DAMBA_MAXUSERS": settings.limits.maxusers,
        "DAMBA_MAXROUTES": settings.limits.maxroutes,
        "DAMBA_MAXSTEPS": settings.limits.maxsteps,
        "DAMBA_MAX_BODY": settings.max_body,
        "DAMBA_REDIS_TIMEOUT": settings.redis_timeout,
        "DAMBA_LOG_LEVEL": settings.log_level,
        "DAMBA_LOG_FORMAT": settings.log_format,
        "DAMBA_GRACEFUL_TIMEOUT": settings.graceful_timeout,
        "DAMBA_KEEPALIVE": settings.keepalive,
    }
    for command in cli.commands.values():
        for parameter in command.params:
            if isinstance(parameter, click.Option) and isinstance(
                parameter.envvar, str
            ):
                defaults[parameter.envvar] = parameter.default
    return defaults


def as_text(value: object) -> str:
    """Write a default the way .env.example does: '' for none, 5 for 5.0."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_code_variables_found():
    """The scan finds the variables that config.py and damba serve read."""
    found = code_variables()
    assert {"DAMBA_REDIS_URL", "DAMBA_LOG_FORMAT", "DAMBA_PORT"} <= found


def test_code_variables_in_readme():
    """Every DAMBA_ variable the code reads has a row in the README table."""
    missing = code_variables() - set(readme_table())
    assert not missing, (
        f"add these to the README configuration table: {sorted(missing)}"
    )


def test_code_variables_in_env_example():
    """Every DAMBA_ variable the code reads is listed in .env.example."""
    missing = code_variables() - set(env_example())
    assert not missing, f"add these to .env.example: {sorted(missing)}"


def test_readme_matches_env_example():
    """The README table and .env.example list the same variables and defaults."""
    table, example = readme_table(), env_example()
    assert set(table) == set(example)
    for name, default in table.items():
        expected = "" if default == "unset" else default
        assert example[name] == expected, (
            f"{name}: README {default!r}, .env.example {example[name]!r}"
        )


def test_no_stale_variables():
    """Every variable in the README table is read by the code or the compose file."""
    compose = (REPO / "docker-compose.yml").read_text()
    used = code_variables() | set(re.findall(r"\$\{(DAMBA_[A-Z0-9_]+)", compose))
    stale = set(readme_table()) - used
    assert not stale, f"nothing reads these any more: {sorted(stale)}"


@pytest.mark.parametrize("name,default", sorted(code_defaults().items()))
def test_documented_default(name, default):
    """.env.example gives each variable the default the code uses."""
    assert env_example()[name] == as_text(default)


def test_defaults_cover_settings():
    """Every variable that config.py reads has its default checked above."""
    read = set(VARIABLE.findall((REPO / "damba" / "config.py").read_text()))
    assert read <= set(code_defaults())
