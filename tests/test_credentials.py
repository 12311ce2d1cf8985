"""The command line's credentials file: where it lives and who may read it."""

from __future__ import annotations

import os
import stat

import pytest

from damba.client import credentials
from damba.client.credentials import Credential, CredentialsError


@pytest.fixture
def env(tmp_path):
    return {"XDG_CONFIG_HOME": str(tmp_path / "config")}


def test_path_follows_xdg(env, tmp_path):
    """The file lives under XDG_CONFIG_HOME, and under ~/.config when it is relative."""
    assert credentials.credentials_path(env) == tmp_path / "config" / "damba" / "credentials.json"
    relative = credentials.credentials_path({"XDG_CONFIG_HOME": "relative/dir"})
    assert relative.parts[-3:] == (".config", "damba", "credentials.json")


def test_saved_owner_only(env):
    """A saved file is mode 0600 in a folder of mode 0700, even under a lax umask."""
    old = os.umask(0)
    try:
        path = credentials.save("http://h:1/", Credential("k" * 32, "alice"), env)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert credentials.loose_permissions(env) is None


def test_one_key_per_server(env):
    """Keys are kept per server URL, and a trailing slash names the same server."""
    credentials.save("http://a:1", Credential("a" * 32, "alice"), env)
    credentials.save("http://b:2/", Credential("b" * 32, "bob"), env)
    assert credentials.load("http://a:1/", env) == Credential("a" * 32, "alice")
    assert credentials.load("http://b:2", env).name == "bob"
    assert credentials.forget("http://a:1", env) is True
    assert credentials.forget("http://a:1", env) is False
    assert credentials.load("http://a:1", env) is None
    assert credentials.load("http://b:2", env) is not None


def test_loose_permissions_found(env):
    """A file that others may read is reported."""
    path = credentials.save("http://a:1", Credential("a" * 32, "alice"), env)
    path.chmod(0o644)
    assert credentials.loose_permissions(env) == path


def test_corrupt_file(env):
    """A file that is not valid JSON raises an error that names it and the fix."""
    path = credentials.credentials_path(env)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(CredentialsError, match="delete it and register again"):
        credentials.load("http://a:1", env)
