"""Read the CSV files that ``locust --csv PREFIX`` writes.

Locust rounds each response time into a bucket before it counts it (to
about two significant digits above 100 ms), so its percentiles are
approximate. The report shows them as Locust's, beside the exact times it
computes from the stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from reports.stream import ReportError

# Locust's CSV columns, and the names the report gives them.
REQUEST_COLUMNS = {
    "Type": "method",
    "Name": "name",
    "Request Count": "requests",
    "Failure Count": "failures",
    "Average Response Time": "mean",
    "50%": "p50",
    "90%": "p90",
    "99%": "p99",
    "100%": "max",
    "Requests/s": "per_second",
}
FAILURE_COLUMNS = {"Method": "method", "Name": "name", "Error": "error",
                   "Occurrences": "occurrences"}
TOTAL_NAME = "Aggregated"


@dataclass
class LocustStats:
    """Locust's request statistics: one row per request name, and the failures."""

    requests: pd.DataFrame
    failures: pd.DataFrame
    total: dict[str, float | int | None]


def _read(path: Path, columns: dict[str, str]) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, na_values=["N/A"], keep_default_na=False)
    except FileNotFoundError:
        raise ReportError(
            f"No Locust CSV file at {path}; pass the same prefix as `locust --csv`."
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ReportError(f"The Locust CSV file {path} is unreadable: {error}.") from None
    missing = sorted(set(columns) - set(table.columns))
    if missing:
        raise ReportError(
            f"The Locust CSV file {path} lacks the columns {', '.join(missing)}; "
            f"was it written by `locust --csv` 2.x?"
        )
    return table[list(columns)].rename(columns=columns)


def _total(row: pd.Series) -> dict[str, float | int | None]:
    total: dict[str, float | int | None] = {}
    for name in ("requests", "failures"):
        total[name] = int(row[name])
    for name in ("mean", "p50", "p90", "p99", "max", "per_second"):
        total[name] = None if pd.isna(row[name]) else float(row[name])
    return total


def read_locust_csv(prefix: str | Path) -> LocustStats:
    """Read ``PREFIX_stats.csv`` and ``PREFIX_failures.csv``."""
    prefix = str(prefix)
    requests = _read(Path(f"{prefix}_stats.csv"), REQUEST_COLUMNS)
    failures = _read(Path(f"{prefix}_failures.csv"), FAILURE_COLUMNS)
    is_total = requests["name"] == TOTAL_NAME
    total = _total(requests[is_total].iloc[0]) if is_total.any() else None
    requests = requests[~is_total].reset_index(drop=True)
    requests["method"] = requests["method"].fillna("")
    if total is None:
        total = _total(requests[["requests", "failures"]].sum().reindex(
            REQUEST_COLUMNS.values()))
    failures = failures.sort_values("occurrences", ascending=False, ignore_index=True)
    return LocustStats(requests=requests, failures=failures, total=total)
