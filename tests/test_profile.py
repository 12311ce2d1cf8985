"""Named profiles of defaults for ``damba serve --profile``."""

from __future__ import annotations

import pytest

from damba.config import PROFILES, SettingsError, apply_profile, load_settings
from damba.serve import gunicorn_options


def test_load_profile_sets_limits():
    """The load profile fills in the limits and keep-alive time when none is set."""
    environ: dict[str, str] = {}
    applied = apply_profile("load", environ)
    assert applied == PROFILES["load"]
    settings = load_settings(environ)
    assert settings.limits.maxusers == 10000
    assert settings.limits.maxroutes == 100000
    assert settings.limits.maxsteps == 100
    assert settings.keepalive == 30


def test_keepalive_reaches_gunicorn():
    """DAMBA_KEEPALIVE becomes gunicorn's keepalive option; 2 s by default."""
    assert load_settings({}).keepalive == 2
    keepalive = load_settings({"DAMBA_KEEPALIVE": "45"}).keepalive
    options = gunicorn_options("127.0.0.1", 8000, 1, 4, False, keepalive=keepalive)
    assert options["keepalive"] == 45


def test_profile_keeps_set_variables():
    """A variable already set keeps its value; the profile fills in the rest."""
    environ = {"DAMBA_MAXUSERS": "50"}
    applied = apply_profile("load", environ)
    assert "DAMBA_MAXUSERS" not in applied
    assert load_settings(environ).limits.maxusers == 50
    assert load_settings(environ).limits.maxroutes == 100000


def test_profile_fills_empty_variables():
    """An empty variable counts as unset, as it does for the settings."""
    environ = {"DAMBA_MAXSTEPS": " "}
    apply_profile("load", environ)
    assert environ["DAMBA_MAXSTEPS"] == "100"


def test_default_profile_sets_nothing():
    """The default profile leaves the environment as it is."""
    environ: dict[str, str] = {}
    assert apply_profile("default", environ) == {}
    assert environ == {}


def test_unknown_profile_rejected():
    """An unknown profile name is rejected with the valid names."""
    with pytest.raises(SettingsError, match="'soak'.*default, load"):
        apply_profile("soak", {})
