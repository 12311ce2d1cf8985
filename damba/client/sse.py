"""A parser for server-sent events, as the HTML standard defines the format."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass
class Message:
    """One dispatched server-sent event."""

    event: str = "message"
    data: str = ""
    # The id field of this message, or None if it had none.
    id: str | None = None
    # The reconnection time the server asked for, in milliseconds.
    retry: int | None = None


def parse(lines: Iterable[str]) -> Iterator[Message]:
    """Yield the messages in ``lines``, which contain no line endings.

    A blank line ends a message, and a line starting with ``:`` is a
    comment. A message with no data and no retry field is dropped, as
    browsers drop it.
    """
    event, data, message_id, retry = "", [], None, None
    for line in lines:
        if not line:
            if data or retry is not None:
                yield Message(event or "message", "\n".join(data), message_id, retry)
            event, data, message_id, retry = "", [], None, None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            message_id = value
        elif name == "retry" and value.isdigit():
            retry = int(value)
