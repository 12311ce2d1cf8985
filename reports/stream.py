"""Read the event stream in pages, so the reader keeps one page at a time in memory.

The read stops at the entry that was last when it began: events appended
while the report runs are left for the next report.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import redis
from tqdm import tqdm

# Entries one XRANGE call returns. 10000 entries of Damba events are a few MB.
PAGE_SIZE = 10000

# The entries of a page: (stream id, {field: value}), as redis-py decodes them.
Page = list[tuple[str, dict[str, str]]]

STORE_ERRORS = (redis.ConnectionError, redis.TimeoutError)


class ReportError(Exception):
    """Raised when the report cannot be built; the message states why and what to do."""


@dataclass(frozen=True)
class StreamInfo:
    """The stream's key, its length and its last entry id when reading began."""

    key: str
    length: int
    last_id: str


def unreachable(error: Exception) -> ReportError:
    return ReportError(
        f"Redis is unreachable ({error}); start it, or set DAMBA_REDIS_URL to the "
        f"server with the event stream."
    )


def inspect_stream(client: redis.Redis, key: str) -> StreamInfo:
    """Return the stream's length and last id, or raise if it is missing or empty."""
    try:
        kind = client.type(key)
        if kind == "stream":
            length = client.xlen(key)
            last = client.xrevrange(key, "+", "-", count=1)
    except STORE_ERRORS as error:
        raise unreachable(error) from error

    if kind == "none" or (kind == "stream" and length == 0):
        raise ReportError(
            f"The event stream {key} is empty or missing; run `damba serve` and some "
            f"load first, or set DAMBA_KEY_PREFIX to the prefix the service used."
        )
    if kind != "stream":
        raise ReportError(
            f"The key {key} is a Redis {kind}, not a stream; set DAMBA_KEY_PREFIX "
            f"to the prefix the service used."
        )
    return StreamInfo(key=key, length=length, last_id=last[0][0])


def read_pages(
    client: redis.Redis,
    info: StreamInfo,
    page_size: int = PAGE_SIZE,
    progress: bool | None = None,
) -> Iterator[Page]:
    """Yield the stream's entries up to ``info.last_id``, ``page_size`` at a time.

    ``progress`` shows a progress bar on standard error: True always, False
    never, None only on a terminal and only when there is more than one page.
    """
    if progress is None and info.length <= page_size:
        progress = False
    low = "-"
    with tqdm(
        total=info.length, unit=" events", unit_scale=True, desc="Reading events",
        disable=None if progress is None else not progress, leave=False,
    ) as bar:
        while True:
            try:
                entries = client.xrange(info.key, low, info.last_id, count=page_size)
            except STORE_ERRORS as error:
                raise unreachable(error) from error
            if not entries:
                return
            bar.update(len(entries))
            yield entries
            if entries[-1][0] == info.last_id:
                return
            low = f"({entries[-1][0]}"
