"""The access keys the command line keeps, one per server, in the user's config dir.

The file is ``$XDG_CONFIG_HOME/damba/credentials.json`` (``~/.config`` when
the variable is unset), readable and writable by its owner alone (mode
0600), in a folder of mode 0700. A key set in DAMBA_KEY is used instead and
never written.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "credentials.json"


class CredentialsError(Exception):
    """Raised when the credentials file cannot be read or written."""


@dataclass(frozen=True)
class Credential:
    """A participant's access key on one server, and their public name."""

    key: str
    name: str


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    """Return the path of the credentials file, following XDG_CONFIG_HOME."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or ""
    # The XDG base directory spec says to ignore a relative path here.
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "damba" / FILE_NAME


def server_id(url: str) -> str:
    """Return the form of a server URL that keys the file: no trailing slash."""
    return url.strip().rstrip("/")


def _read_all(path: Path) -> dict[str, dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise CredentialsError(f"Cannot read {path}: {error.strerror}.") from None
    try:
        document = json.loads(text)
    except ValueError:
        raise CredentialsError(
            f"{path} is not valid JSON; fix it or delete it and register again."
        ) from None
    servers = document.get("servers") if isinstance(document, dict) else None
    if not isinstance(servers, dict):
        raise CredentialsError(
            f"{path} has no \"servers\" object; fix it or delete it and register again."
        )
    return servers


def load(url: str, env: Mapping[str, str] | None = None) -> Credential | None:
    """Return the saved credential for server ``url``, or None."""
    entry = _read_all(credentials_path(env)).get(server_id(url))
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
        return None
    return Credential(entry["key"], str(entry.get("name", "")))


def loose_permissions(env: Mapping[str, str] | None = None) -> Path | None:
    """Return the credentials file's path if others may read or write it, else None."""
    path = credentials_path(env)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    return path if mode & (stat.S_IRWXG | stat.S_IRWXO) else None


def _write_all(path: Path, servers: dict[str, dict[str, str]]) -> None:
    """Replace the file atomically with a new one created with mode 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = json.dumps({"servers": servers}, indent=2, ensure_ascii=False) + "\n"
    # mkstemp creates the file with mode 0600 whatever the umask.
    handle, temporary = tempfile.mkstemp(prefix=".credentials-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save(url: str, credential: Credential, env: Mapping[str, str] | None = None) -> Path:
    """Save ``credential`` for server ``url``; return the file's path."""
    path = credentials_path(env)
    servers = _read_all(path)
    servers[server_id(url)] = {"key": credential.key, "name": credential.name}
    try:
        _write_all(path, servers)
    except OSError as error:
        raise CredentialsError(f"Cannot write {path}: {error.strerror}.") from None
    return path


def forget(url: str, env: Mapping[str, str] | None = None) -> bool:
    """Delete the saved credential for server ``url``; tell whether there was one."""
    path = credentials_path(env)
    servers = _read_all(path)
    if servers.pop(server_id(url), None) is None:
        return False
    try:
        _write_all(path, servers)
    except OSError as error:
        raise CredentialsError(f"Cannot write {path}: {error.strerror}.") from None
    return True
