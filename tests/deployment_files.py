"""Readers for the deployment files: Dockerfile, docker-compose.yml, deploy/k8s.

docker-compose.yml is read the way compose reads it: YAML with anchors and
merge keys, then ``${NAME:-default}`` interpolation of every string value.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from tests.servers import REPO

COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
K8S_BASE = REPO / "deploy" / "k8s" / "base"
K8S_LOAD = REPO / "deploy" / "k8s" / "load"
# The Kubernetes version whose schemas the manifests are checked against.
# They use only apps/v1 and v1 objects, which also pass the schemas of 1.25
# and 1.37, the oldest and newest that kubernetes-validate 1.37.0 ships.
K8S_VERSION = "1.31.0"

VARIABLE = re.compile(r"\bDAMBA_[A-Z0-9_]*[A-Z0-9]\b")
# The Python sources that read settings; reports/ and locustfile.py count
# once they exist.
CODE_PATHS = ("damba", "projections", "reports", "locustfile.py")

# $$, $NAME, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}
_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:(?P<operator>:?[-?])(?P<default>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def code_variables() -> set[str]:
    """Return every DAMBA_ name that appears in the project's Python code."""
    names: set[str] = set()
    for relative in CODE_PATHS:
        path = REPO / relative
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for file in files:
            names |= set(VARIABLE.findall(file.read_text()))
    return names


def interpolate(text: str, env: dict[str, str]) -> str:
    """Expand compose variable references in ``text`` from ``env``."""

    def expand(match: re.Match) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("name") or match.group("bare")
        value = env.get(name)
        operator = match.group("operator") or ""
        if operator.startswith(":") and not value:
            value = None
        if value is None:
            if operator.endswith("?"):
                raise ValueError(f"{name} is required: {match.group('default')}")
            return match.group("default") or ""
        return value

    return _REFERENCE.sub(expand, text)


def _interpolate_all(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, env)
    if isinstance(value, list):
        return [_interpolate_all(item, env) for item in value]
    if isinstance(value, dict):
        return {key: _interpolate_all(item, env) for key, item in value.items()}
    return value


def compose_text() -> str:
    return COMPOSE_FILE.read_text()


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """Load docker-compose.yml with every variable at ``env`` or its default."""
    return _interpolate_all(yaml.safe_load(compose_text()), env or {})


def compose_defaults() -> dict[str, str]:
    """Return each ``${NAME:-default}`` in docker-compose.yml as name -> default."""
    return {
        match.group("name"): match.group("default") or ""
        for match in _REFERENCE.finditer(compose_text())
        if match.group("name")
    }


def environment(service: dict[str, Any]) -> dict[str, str]:
    """Return a compose service's environment as a mapping of strings."""
    entries = service.get("environment") or {}
    if isinstance(entries, list):
        entries = dict(entry.split("=", 1) for entry in entries)
    return {
        name: "" if value is None else str(value) for name, value in entries.items()
    }


def dockerfile_instructions() -> list[tuple[str, str]]:
    """Return the Dockerfile's instructions as (KEYWORD, arguments), lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def manifest_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.yaml") if p.name != "kustomization.yaml")


def manifests(*folders: Path) -> list[dict[str, Any]]:
    """Load every Kubernetes object written in the YAML files of ``folders``."""
    documents = []
    for folder in folders:
        for path in manifest_files(folder):
            documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


def find(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for document in documents:
        if document["kind"] == kind and document["metadata"]["name"] == name:
            return document
    raise AssertionError(f"no {kind} named {name}")


def containers(document: dict[str, Any]) -> list[dict[str, Any]]:
    return document["spec"]["template"]["spec"]["containers"]


def env_file(path: Path) -> dict[str, str]:
    """Read a VARIABLE=value file such as deploy/k8s/base/damba.env."""
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def kustomize(folder: Path) -> list[dict[str, Any]] | None:
    """Render ``folder`` with ``kubectl kustomize``; None when kubectl is missing."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    rendered = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60
    )
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
