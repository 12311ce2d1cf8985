"""The statistics reports on disk: list them, and find a file in one safely.

``damba report`` writes each report into its own folder under the reports
folder (DAMBA_REPORTS_DIR), with an index.html, tables as CSV and a
summary.json. The dashboard lists those folders and serves their files
read-only. Every name that comes from a URL is checked here, so that no
request reads a file outside the reports folder.
"""

from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from damba.errors import DambaError

INDEX = "index.html"
SUMMARY = "summary.json"
# Scalar fields of summary.json shown on the list of reports.
SUMMARY_FIELDS_SHOWN = 8
# Bytes of summary.json read at most; a larger one is not summarised.
SUMMARY_MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class ReportFile:
    """A file of a report, by its path inside the report folder."""

    path: str
    size: int
    content_type: str


@dataclass(frozen=True)
class Report:
    """One report folder: its name, when it last changed, and what it holds."""

    name: str
    modified: str
    has_index: bool
    files: list[ReportFile] = field(default_factory=list)
    summary: list[tuple[str, Any]] = field(default_factory=list)


def content_type(path: Path) -> str:
    """Guess a file's media type from its name; unknown types are served as bytes."""
    guessed, _encoding = mimetypes.guess_type(path.name)
    if guessed is None:
        return "application/octet-stream"
    if guessed.startswith("text/") or guessed in ("application/json", "image/svg+xml"):
        return f"{guessed}; charset=utf-8"
    return guessed


def _modified(path: Path) -> str:
    stamp = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return stamp.isoformat(timespec="seconds").replace("+00:00", "Z")


def _summary(folder: Path) -> list[tuple[str, Any]]:
    """Return the first scalar fields of a report's summary.json, if it is readable."""
    path = folder / SUMMARY
    try:
        if not path.is_file() or path.stat().st_size > SUMMARY_MAX_BYTES:
            return []
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(document, dict):
        return []
    scalars = [
        (str(name), value)
        for name, value in document.items()
        if isinstance(value, str | int | float | bool) or value is None
    ]
    return scalars[:SUMMARY_FIELDS_SHOWN]


def _files(root: Path, folder: Path) -> list[ReportFile]:
    """List the regular files under ``folder`` that resolve inside ``root``."""
    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if not path.resolve().is_relative_to(root):
            continue
        files.append(ReportFile(relative.as_posix(), path.stat().st_size, content_type(path)))
    return files


def list_reports(reports_dir: Path) -> list[Report]:
    """List the report folders, newest first; none if the folder does not exist."""
    root = reports_dir.resolve()
    if not root.is_dir():
        return []
    reports = []
    for folder in root.iterdir():
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        if not folder.resolve().is_relative_to(root):
            continue
        reports.append(
            Report(
                name=folder.name,
                modified=_modified(folder),
                has_index=(folder / INDEX).is_file(),
                summary=_summary(folder),
            )
        )
    reports.sort(key=lambda report: (report.modified, report.name), reverse=True)
    return reports


def _check_part(part: str, whole: str) -> None:
    if part in ("", ".", "..") or part.startswith(".") or "\\" in part or "\0" in part:
        raise DambaError(
            "invalid_path",
            f"The report path {whole[:120]!r} is not allowed: it must name a file "
            f"inside a report folder, with no '..' and no hidden names.",
        )


def open_report(reports_dir: Path, name: str) -> Report:
    """Return report ``name`` with its files, or raise unknown_report."""
    _check_part(name, name)
    root = reports_dir.resolve()
    folder = (root / name).resolve()
    if not folder.is_relative_to(root) or not folder.is_dir():
        raise DambaError(
            "unknown_report",
            f"There is no report {name[:120]!r} in {reports_dir}; "
            f"the reports page lists those there are.",
        )
    return Report(
        name=name,
        modified=_modified(folder),
        has_index=(folder / INDEX).is_file(),
        files=_files(root, folder),
        summary=_summary(folder),
    )


def report_file(reports_dir: Path, name: str, path: str) -> Path:
    """Return the file at ``path`` inside report ``name``.

    Raises invalid_path for a path that climbs out or names a hidden file,
    and unknown_report when no such regular file resolves inside the
    reports folder, symbolic links included.
    """
    whole = f"{name}/{path}"
    _check_part(name, whole)
    for part in path.split("/"):
        _check_part(part, whole)
    root = reports_dir.resolve()
    target = (root / name / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise DambaError(
            "unknown_report",
            f"There is no file {whole[:120]!r} among the reports; "
            f"open the report's page to see its files.",
        )
    return target
